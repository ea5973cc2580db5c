"""A real browser (Chromium, headless) finds a contact by its number as a person types it,
opens it and reads its timeline; the README's screenshots of both pages come from here."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import PASSWORD
from helpers import screenshot
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from gateway.db.models import Contact, Message, Order, Payment
from gateway.desk import crm


@pytest.fixture
def config(config):
    return dataclasses.replace(config, web_language="en")


def test_find_a_contact_by_number_and_read_its_timeline(live_server, browser, db, make_user,
                                                        make_ticket):
    make_user("ani", "sales")
    ticket = make_ticket(text="PESAN KP01 2 <b>cepat</b>", kind="order", name="Budi Santoso")
    contact = db.get(Contact, ticket.contact_id)
    crm.update_contact(db, contact, None, organisation="Toko Maju", type="reseller",
                       tags="vip grosir", notes="Bayar tiap Jumat.")
    order = Order(contact_id=contact.id, ticket_id=ticket.id, total=51_037, status="paid")
    db.add(order)
    db.flush()
    db.add(Payment(contact_id=contact.id, order_id=order.id, amount=51_037, bank="BCA",
                   payer_name="Budi", status="confirmed"))
    db.add(Message(direction="out", number=contact.phone, text="Terima kasih, pembayaran "
                   "diterima.", status="sent", contact_id=contact.id, ticket_id=ticket.id))
    for i, phone in enumerate(("+6281299999999", "+6285711112222")):
        other = Contact(phone=phone, name=("Ani Wijaya", "Citra Dealer")[i],
                        type=("customer", "dealer")[i])
        db.add(other)
    db.commit()

    browser.get(live_server + "/contacts")
    browser.find_element(By.NAME, "name").send_keys("ani")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    table = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "table.contacts")))
    assert "Citra Dealer" in table.text and "Budi Santoso" in table.text
    screenshot(browser, "contacts")

    search = browser.find_element(By.NAME, "q")
    search.send_keys("0812-3456-7890")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 10).until(EC.url_contains("q=0812-3456-7890"))
    rows = browser.find_elements(By.CSS_SELECTOR, "table.contacts tbody tr")
    assert len(rows) == 1 and "Budi Santoso" in rows[0].text and "vip" in rows[0].text

    browser.find_element(By.LINK_TEXT, "+6281234567890").click()
    timeline = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".timeline")))
    text = timeline.text
    assert "PESAN KP01 2 <b>cepat</b>" in text  # shown as text, not markup
    assert "Terima kasih, pembayaran diterima." in text
    assert f"Ticket #{ticket.number}" in text and f"Order {order.number}" in text
    assert "Rp 51.037" in text and "BCA" in text
    assert browser.find_element(By.NAME, "organisation").get_attribute("value") == "Toko Maju"
    assert browser.find_element(By.NAME, "tags").get_attribute("value") == "grosir vip"
    screenshot(browser, "contact")

    browser.find_element(By.CSS_SELECTOR, f".timeline a[href='/tickets/{ticket.id}']").click()
    WebDriverWait(browser, 10).until(EC.url_contains(f"/tickets/{ticket.id}"))
