"""Each modem as the operators, the API and Prometheus see it: /modems, /api/v1/modems,
/metrics; a SIM whose credit is under the floor is yellow and alerts the on-call numbers
once; a full SIM is shown."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from gateway.db.models import Message, Modem, utcnow
from gateway.db.transaction import in_transaction
from gateway.desk import health


@pytest.fixture
def config(config):
    """The UI in English here, whatever the catalogue holds: assertions read English."""
    return dataclasses.replace(config, web_language="en")


@pytest.fixture
def floored(config):
    modem = dataclasses.replace(config.modems[0], ussd_balance="*888#", balance_floor=10_000)
    return dataclasses.replace(config, modems=(modem,), alert_numbers=("0811111111",))


def record(sessionmaker, readings, error=None):
    in_transaction(sessionmaker, health.record, "modem1", readings, error, utcnow(), {})


READINGS = {"signal_percent": 80, "battery_percent": 90, "operator": "TELKOMSEL",
            "network": "HomeNetwork", "imei": "356938035643809", "sim_used": 30,
            "sim_size": 30}


def test_low_credit_turns_the_modem_yellow_and_alerts_once(sessionmaker, floored):
    record(sessionmaker, READINGS)
    record(sessionmaker, {"balance": 4_500, "balance_expiry": dt.date(2027, 2, 28),
                          "balance_text": "Sisa pulsa Rp4.500 aktif s.d. 28-02-2027",
                          "balance_at": utcnow()})
    with sessionmaker() as s:
        [modem] = health.modem_colours(s, floored, utcnow()).values()
    assert modem["health"] == "yellow" and modem["low_balance"] and modem["sim_full"]
    sent, alerted = in_transaction(sessionmaker, health.send_alerts, floored, utcnow(), set())
    assert sent == 1 and "balance:modem1" in alerted
    again, alerted = in_transaction(sessionmaker, health.send_alerts, floored, utcnow(), alerted)
    assert again == 0  # told once
    with sessionmaker() as s:
        [text] = s.scalars(select(Message.text).where(Message.direction == "out")).all()
    assert "Rp 4.500" in text and "Rp 10.000" in text
    record(sessionmaker, {"balance": 50_000, "balance_at": utcnow()})
    _, alerted = in_transaction(sessionmaker, health.send_alerts, floored, utcnow(), alerted)
    assert "balance:modem1" not in alerted  # topped up: the next fall is told again


def test_an_answer_longer_than_its_column_is_cut_not_fatal(sessionmaker):
    record(sessionmaker, {**READINGS, "balance_text": "x" * 400, "operator": "y" * 300})
    with sessionmaker() as s:
        modem = s.scalar(select(Modem).where(Modem.name == "modem1"))
    assert len(modem.balance_text) == 255 and len(modem.operator) == 64


def test_modems_page_shows_every_reading_escaped(auth, client, make_app, sessionmaker,
                                                 floored):
    record(sessionmaker, {**READINGS, "operator": "<script>x</script>",
                          "balance": 4_500, "balance_at": utcnow()})
    app = make_app(TESTING=True)
    app.extensions["helpdesk"] = dataclasses.replace(app.extensions["helpdesk"],
                                                     config=floored)
    client = app.test_client()
    auth.client = client
    auth.login(role="viewer")
    page = client.get("/modems").get_data(as_text=True)
    assert "356938035643809" in page and "Rp 4.500" in page and "30 / 30" in page
    assert "full: being emptied" in page and "light yellow" in page
    assert "<script>x" not in page and "&lt;script&gt;" in page


def test_modems_page_needs_a_login(client):
    assert client.get("/modems").status_code in (302, 401)


def test_api_lists_modems_with_credit_and_storage(make_app, api_headers, sessionmaker,
                                                  floored):
    record(sessionmaker, {**READINGS, "balance": 4_500, "balance_expiry": dt.date(2027, 2, 28),
                          "balance_at": utcnow()})
    app = make_app(TESTING=True)
    app.extensions["helpdesk"] = dataclasses.replace(app.extensions["helpdesk"],
                                                     config=floored)
    response = app.test_client().get("/api/v1/modems", headers=api_headers)
    assert response.status_code == 200
    [modem] = response.get_json()["items"]
    assert modem["name"] == "modem1" and modem["health"] == "yellow"
    assert modem["balance"] == 4500 and modem["balance_expiry"] == "2027-02-28"
    assert modem["sim_used"] == 30 and modem["sim_full"] is True
    assert modem["imei"] == "356938035643809" and modem["last_seen"].endswith("+00:00")


def test_api_modems_needs_a_token(client):
    assert client.get("/api/v1/modems").status_code == 401


def test_metrics_has_credit_and_storage_gauges(make_app, sessionmaker, floored):
    record(sessionmaker, {**READINGS, "balance": 4_500, "balance_at": utcnow()})
    app = make_app(TESTING=True)
    app.extensions["helpdesk"] = dataclasses.replace(app.extensions["helpdesk"],
                                                     config=floored)
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'helpdesk_modem_balance_rupiah{modem="modem1"} 4500.0' in text
    assert 'helpdesk_modem_balance_floor_rupiah{modem="modem1"} 10000.0' in text
    assert 'helpdesk_modem_sim_used{modem="modem1"} 30.0' in text
    assert 'helpdesk_modem_health{modem="modem1"} 1.0' in text
