"""A real browser (Chromium, headless) logs in, opens a ticket and replies.

No skip: on a machine without Chromium this test fails and says what to install;
`make test` installs it first (tests/system-deps.sh).
"""
from __future__ import annotations

from conftest import PASSWORD
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from gateway.db.models import Message


def test_operator_replies_to_a_ticket_in_a_real_browser(live_server, browser, db,
                                                        make_user, make_ticket, queued):
    make_user("ani", "operator")
    ticket = make_ticket(text="Paket saya belum datang <b>tolong</b>")

    browser.get(live_server + "/")
    assert "/login" in browser.current_url
    browser.find_element(By.NAME, "name").send_keys("ani")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                     "table.tickets")))

    browser.find_element(By.LINK_TEXT, f"#{ticket.number}").click()
    conversation = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".conversation")))
    assert "Paket saya belum datang <b>tolong</b>" in conversation.text  # shown as text

    reply = "Mohon maaf, paket dikirim hari ini."
    browser.find_element(By.NAME, "text").send_keys(reply)
    browser.find_element(By.CSS_SELECTOR, "form.reply button[type=submit]").click()
    WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".msg.out")))

    shown = browser.find_element(By.CSS_SELECTOR, ".msg.out").text
    assert reply in shown and "queued" in shown
    db.expire_all()
    out = db.scalar(select(Message).where(Message.direction == "out"))
    assert (out.text, out.ticket_id, out.status, out.number) == (
        reply, ticket.id, "queued", "+6281234567890")
    assert queued == [out.id]
