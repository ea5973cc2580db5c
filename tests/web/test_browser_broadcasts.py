"""A real browser (Chromium, headless): a supervisor uploads a CSV of numbers, reads the
preview (who is skipped for STOP, the parts and the cost), sends, and pauses the
broadcast on its page."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import PASSWORD
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select

from gateway.db.models import Broadcast, Contact


@pytest.fixture
def config(config):
    return dataclasses.replace(config, web_language="en")


def test_upload_numbers_preview_send_and_pause(live_server, browser, db, make_user, tmp_path):
    make_user("sari", "supervisor")
    db.add(Contact(phone="+6281100000002", name="Sari", opted_out=True))
    db.commit()
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("nomor\n0811 0000 0001\n0811 0000 0002\n0811 0000 0003\n")

    browser.get(live_server + "/broadcasts")
    browser.find_element(By.NAME, "name").send_keys("sari")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    form = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "form.broadcast")))
    form.find_element(By.CSS_SELECTOR, "input[name=kind][value=numbers]").click()
    form.find_element(By.NAME, "file").send_keys(str(numbers))
    form.find_element(By.NAME, "text").send_keys("Promo akhir tahun, diskon 10% 🎉")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    preview = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "section.preview")))
    assert "2 texts to send; 1 skipped (1 opted out, 0 blocked)." in preview.text
    assert "UCS-2; the cost is 2 SMS in all." in preview.text
    preview.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    facts = WebDriverWait(browser, 10).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, "dl.facts")))
    assert "running" in facts.text and "3 numbers" in facts.text
    assert "+6281100000002" in browser.find_element(By.CSS_SELECTOR, "table.skipped").text
    browser.find_element(By.XPATH, "//button[text()='Pause']").click()
    # The old page first, so the wait reads the new one's status, not a node going away.
    WebDriverWait(browser, 10).until(EC.staleness_of(facts))
    WebDriverWait(browser, 10).until(
        EC.text_to_be_present_in_element((By.CSS_SELECTOR, "dd.status"), "paused"))
    db.expire_all()
    made = db.scalar(select(Broadcast))
    assert (made.status, made.total, made.audience) == ("paused", 3, "3 numbers")
