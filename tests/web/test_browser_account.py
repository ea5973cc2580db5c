"""A real browser: an admin logs in, switches the UI to English on /account, and the
screens read English from the next page on; screenshots of /account and /users."""
from __future__ import annotations

from conftest import PASSWORD
from flask_babel import force_locale, gettext
from helpers import screenshot
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from gateway.desk import users


def in_indonesian(app, text: str) -> str:
    with app.test_request_context(), force_locale("id"):
        return gettext(text)


def test_switch_to_english_and_screens(app, live_server, browser, db, make_user):
    make_user("boss", "admin")
    make_user("ani", "operator")
    users.create_token(db, "erp", "ani")
    db.commit()
    wait = WebDriverWait(browser, 10)

    browser.get(f"{live_server}/login?next=/account")
    browser.find_element(By.NAME, "name").send_keys("boss")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    wait.until(lambda b: b.current_url.endswith("/account"))
    # The new URL can show before its page is parsed: wait for the heading itself.
    heading = wait.until(lambda b: b.find_element(By.TAG_NAME, "h1")).text
    assert heading == in_indonesian(app, "Account")  # the shop's default language
    assert Select(browser.find_element(By.NAME, "language")).first_selected_option \
        .get_attribute("value") == "id"

    Select(browser.find_element(By.NAME, "language")).select_by_value("en")
    browser.find_element(By.ID, "save-language").click()
    wait.until(lambda b: "The language is changed." in b.page_source)
    body = browser.find_element(By.TAG_NAME, "body").text
    for english in ("Account", "Change password", "Current password", "Save language"):
        assert english in body, english
    assert Select(browser.find_element(By.NAME, "language")).first_selected_option \
        .get_attribute("value") == "en"
    screenshot(browser, "account")

    browser.find_element(By.LINK_TEXT, "Users").click()  # the nav link, in English too
    wait.until(lambda b: b.current_url.endswith("/users"))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "Add a user" in body and "Reset password" in body and "ani" in body
    screenshot(browser, "users")
