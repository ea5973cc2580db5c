"""A real browser (Chromium, headless) logs in, opens a ticket and replies.

No skip: on a machine without Chromium this test fails and says what to install;
`make test` installs it first (tests/system-deps.sh).
"""
from __future__ import annotations

import os
import threading

import pytest
from conftest import PASSWORD
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from werkzeug.serving import make_server

from gateway.db.models import Message

# Where the browser and its driver are, in the order tests/system-deps.sh looks:
# HELPDESK_CHROMIUM and HELPDESK_CHROMEDRIVER, Debian's chromium and chromium-driver,
# Ubuntu's chromium snap (which carries its driver).
CANDIDATES = [("/usr/bin/chromium", "/usr/bin/chromedriver"),
              ("/snap/bin/chromium", "/snap/bin/chromium.chromedriver")]


def find_chromium() -> tuple[str, str]:
    chosen = os.environ.get("HELPDESK_CHROMIUM"), os.environ.get("HELPDESK_CHROMEDRIVER")
    candidates = [chosen] if any(chosen) else CANDIDATES
    for browser, driver in candidates:
        if all(path and os.access(path, os.X_OK) for path in (browser, driver)):
            return browser, driver
    pytest.fail("Chromium and its driver are missing ("
                + ", ".join(f"{b} + {d}" for b, d in candidates) + "): run "
                "`sh tests/system-deps.sh test` (as root or with sudo it installs them; "
                "`make test` runs it first)", pytrace=False)


@pytest.fixture
def live_server(app):
    """The app on a free port of 127.0.0.1, served from a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path):
    chromium, chromedriver = find_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking"):
        options.add_argument(arg)
    if not chromium.startswith("/snap/"):  # a snap has a /tmp of its own and makes its profile
        options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    # An explicit driver path, so selenium-manager never tries to download one.
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


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
