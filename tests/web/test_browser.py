"""A real browser (Chromium, headless): an operator logs in, answers a ticket from the
keyboard (queue, j, Enter, r, type, submit), picks a canned response, and the reply
box's SMS counter agrees with the outbox's encoder. Screenshots of the queue and the
ticket page go to docs/screenshots/.

No skip: on a machine without Chromium this test fails and says what to install;
`make test` installs it first (tests/system-deps.sh).
"""
from __future__ import annotations

import dataclasses

import pytest
from conftest import PASSWORD
from helpers import screenshot
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from gateway.db.models import CannedResponse, Message, User
from gateway.desk import tickets
from gateway.sms.encoding import part_count

# What an Indonesian shop types, and what makes GSM-7 awkward: the extension table (€ ^
# [ ] { } ~ | \ cost two), characters outside it (emoji, ç, backtick) that switch the
# whole text to UCS-2, surrogate pairs that Gammu never splits, and the part boundaries.
COUNTED = [
    "", "Halo", "a" * 160, "a" * 161, "a" * 306, "a" * 307, "a" * 459, "a" * 460,
    "€" * 80, "€" * 81, "^" * 80, "^" * 81, "a" * 152 + "€" + "a" * 152,
    "a" * 151 + "€" + "a" * 153, "[harga] {promo} ~50% | \\ diskon",
    "Pesanan kakak sudah kami kirim hari ini, nomor resi JNE 1234567890. Terima kasih!",
    "Mohon maaf atas keterlambatan pengiriman. Paket akan tiba besok pagi ya kak, "
    "silakan hubungi kami kembali jika ada kendala. Salam hangat dari Toko Maju Jaya!",
    "Terima kasih 🙏", "😀" * 35, "😀" * 36, "x" * 66 + "😀" + "x" * 66,
    "x" * 67 + "😀" + "x" * 65, "ç" * 70, "ç" * 71, "`", "é ü ñ ß Ä Ö Ü à è ì ò ù",
    "Harga Rp 51.037\nTransfer ke BCA\n", "ā" * 134, "ā" * 135, "ΔΦΓΛΩΠΨΣΘΞ¡¿£¥§" * 12,
]


@pytest.fixture
def config(config):
    return dataclasses.replace(config, web_language="en")


def user_id(db, name) -> int:
    return db.scalar(select(User.id).where(User.name == name))


def _log_in(browser, live_server, name):
    browser.get(live_server + "/tickets")
    assert "/login" in browser.current_url
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(browser, 10).until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, "table.tickets")))


def _keys(browser, *keys):
    ActionChains(browser).send_keys(*keys).perform()


def test_operator_answers_a_ticket_from_the_keyboard(live_server, browser, db, make_user,
                                                     make_ticket, queued):
    make_user("ani", "operator")
    ticket = make_ticket(text="Paket saya belum datang <b>tolong</b>", name="Budi",
                         kind="complaint")
    later = make_ticket(phone="+6281211112222", name="Sari", kind="order",
                        text="PESAN KP01 2")
    tickets.add_note(db, ticket, "Pelanggan lama; kirim ulang lewat JNE jika hilang.",
                     user_id(db, "ani"))
    db.commit()
    _log_in(browser, live_server, "ani")

    rows = browser.find_elements(By.CSS_SELECTOR, "table.queue tbody tr")
    assert [r.find_element(By.TAG_NAME, "a").text for r in rows] == \
        [f"#{ticket.number}", f"#{later.number}"]  # both wait; the longest wait first
    # Typing in the search box is typing, not a shortcut.
    _keys(browser, "/")
    assert browser.switch_to.active_element.get_attribute("name") == "q"
    _keys(browser, "j")
    assert browser.find_element(By.NAME, "q").get_attribute("value") == "j"
    assert not browser.find_elements(By.CSS_SELECTOR, "tr.selected")
    _keys(browser, Keys.BACKSPACE, Keys.ESCAPE)

    _keys(browser, "j")
    screenshot(browser, "tickets")
    _keys(browser, "j", "k")
    selected = browser.find_element(By.CSS_SELECTOR, "tr.selected")
    assert selected.find_element(By.TAG_NAME, "a").text == f"#{ticket.number}"
    _keys(browser, Keys.ENTER)
    conversation = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".conversation")))
    assert browser.current_url.endswith(f"/tickets/{ticket.id}")
    assert "Paket saya belum datang <b>tolong</b>" in conversation.text  # shown as text

    _keys(browser, "r")
    box = browser.switch_to.active_element
    assert box.get_attribute("name") == "text"
    reply = "Mohon maaf, paket dikirim hari ini €"
    _keys(browser, reply)
    counter = browser.find_element(By.ID, "sms-counter").text
    assert counter == f"{len(reply)} characters · 1 SMS (GSM-7)"
    _keys(browser, Keys.TAB, Keys.ENTER)  # to the send button, and press it
    WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".msg.out")))
    screenshot(browser, "ticket")

    shown = browser.find_element(By.CSS_SELECTOR, ".msg.out").text
    assert reply in shown and "queued" in shown and "ani" in shown
    db.expire_all()
    out = db.scalar(select(Message).where(Message.direction == "out"))
    assert (out.text, out.ticket_id, out.status, out.number) == (
        reply, ticket.id, "queued", "+6281234567890")
    assert queued == [out.id]


def test_canned_response_and_the_sms_counter_match_the_outbox(live_server, browser, db,
                                                              make_user, make_ticket):
    make_user("ani", "operator")
    ticket = make_ticket()
    db.add(CannedResponse(title="Resi", body="Paket sudah dikirim 🙏 <b>resi</b> di bawah"))
    db.commit()
    _log_in(browser, live_server, "ani")
    browser.get(f"{live_server}/tickets/{ticket.id}")

    counted = browser.execute_script(
        "return arguments[0].map(function (t) { return window.smsParts(t).parts; });",
        COUNTED)
    assert counted == [part_count(text) for text in COUNTED]

    Select(browser.find_element(By.ID, "canned")).select_by_visible_text("Resi")
    box = browser.find_element(By.ID, "reply-text")
    assert box.get_attribute("value") == "Paket sudah dikirim 🙏 <b>resi</b> di bawah"
    assert browser.find_element(By.ID, "sms-counter").text == \
        "42 characters · 1 SMS (UCS-2)"
    box.send_keys(" " + "x" * 30)  # past 70 UTF-16 units: two parts
    assert browser.find_element(By.ID, "sms-counter").text.endswith("2 SMS (UCS-2)")
