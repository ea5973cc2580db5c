"""In a real headless Chromium: a new text appears on the dashboard without a reload, and
sales confirm a payment. The screenshots of /, /messages/inbox and /payments for the
README are taken here."""
from __future__ import annotations

from conftest import PASSWORD
from helpers import screenshot
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from test_web_shop import arrange

from gateway.db.models import Message, Order, Payment, utcnow


def log_in(browser, live_server, name):
    browser.get(live_server + "/login")
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    WebDriverWait(browser, 10).until(EC.presence_of_element_located((By.CSS_SELECTOR,
                                                                     "header .who")))


def figure(browser, key) -> str:
    return browser.find_element(By.CSS_SELECTOR, f'[data-k="{key}"]').text


def test_a_new_text_appears_on_the_dashboard_without_a_reload(live_server, browser, db,
                                                               make_user, make_ticket):
    make_user("ani", "operator")
    make_ticket(phone="+6281111111111", text="Pulsa belum masuk", kind="complaint")
    log_in(browser, live_server, "ani")
    browser.get(live_server + "/")
    assert figure(browser, "waiting") == "1" and figure(browser, "tickets.question.hour") == "0"
    # Anything the page holds in memory would be lost by a reload.
    browser.execute_script("window.notReloaded = true;")

    # The text arrives as intake files it: a contact, a new ticket, the inbound message.
    make_ticket(phone="+6282222222222", text="Halo, mau tanya harga XL25", kind="question")
    db.add(Message(direction="in", number="TELKOMSEL", text="Sisa pulsa Rp 5.000",
                   status="received", attention="no ticket could be opened",
                   created_at=utcnow()))
    db.commit()
    WebDriverWait(browser, 5).until(
        lambda b: figure(b, "waiting") == "2" and figure(b, "attention") == "1",
        message="the dashboard did not show the new text within 5 s")
    assert figure(browser, "tickets.question.hour") == "1"
    assert figure(browser, "tickets.all.all") == "2"
    assert browser.execute_script("return window.notReloaded === true;")
    screenshot(browser, "dashboard")

    browser.get(live_server + "/messages/inbox")
    assert "Sisa pulsa Rp 5.000" in browser.find_element(By.CSS_SELECTOR, "table.inbox").text
    screenshot(browser, "inbox")


def test_sales_confirm_a_payment_in_the_browser(live_server, browser, db, make_user, queued):
    make_user("sari", "sales")
    shop = arrange(db)
    log_in(browser, live_server, "sari")
    browser.get(live_server + "/payments")
    row = browser.find_element(By.ID, f"p{shop.payment_id}")
    assert "Budi Santoso" in row.text and "Rp 51.0" in row.text
    screenshot(browser, "payments")

    row.find_element(By.CSS_SELECTOR, "button.confirm").click()
    flash = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".flash.ok")))
    order = db.get(Order, shop.order_id)
    assert order.number in flash.text
    db.expire_all()
    assert db.get(Payment, shop.payment_id).status == "confirmed"
    assert db.get(Order, shop.order_id).status == "paid"
    [sms] = db.scalars(select(Message).where(Message.direction == "out")).all()
    assert queued == [sms.id]
