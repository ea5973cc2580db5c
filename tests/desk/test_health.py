"""Modem colours, the on-call alerts, `helpdesk check` and /metrics."""
from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select

from gateway.db.models import Message, Modem
from gateway.db.transaction import in_transaction
from gateway.desk import check, health

NOW = dt.datetime(2026, 11, 23, 9, 0, 0)


def test_colours_follow_the_thresholds(config):
    recent = NOW - dt.timedelta(seconds=30)
    assert health.colour("up", 80, recent, NOW, config) == "green"
    assert health.colour("up", 25, recent, NOW, config) == "yellow"
    assert health.colour("up", 5, recent, NOW, config) == "red"
    assert health.colour("down", 80, recent, NOW, config) == "red"
    assert health.colour("up", 80, NOW - dt.timedelta(minutes=5), NOW, config) == "red"
    assert health.colour("unknown", None, None, NOW, config) == "red"


def set_modem(sessionmaker, **values):
    with sessionmaker.begin() as s:
        modem = s.scalar(select(Modem).where(Modem.name == "modem1"))
        if modem is None:
            modem = Modem(name="modem1")
            s.add(modem)
        for key, value in values.items():
            setattr(modem, key, value)


def alert_texts(sessionmaker):
    with sessionmaker() as s:
        return [(m.number, m.text) for m in s.scalars(
            select(Message).where(Message.direction == "out").order_by(Message.id))]


def test_alert_once_when_a_modem_turns_red_and_once_when_it_recovers(sessionmaker, config):
    config = dataclasses.replace(config, alert_numbers=("0811111111", "+62822222222"))
    alerted = set()

    def run():
        nonlocal alerted
        sent, alerted = in_transaction(sessionmaker, health.send_alerts, config, NOW, alerted)
        return sent

    set_modem(sessionmaker, status="up", signal_percent=80, last_seen=NOW)
    assert run() == 0
    set_modem(sessionmaker, status="down")
    assert run() == 1
    assert run() == 0  # still red: not told again
    texts = alert_texts(sessionmaker)
    assert [n for n, _ in texts] == ["+62811111111", "+62822222222"]
    assert "modem1" in texts[0][1] and "tidak menjawab" in texts[0][1]
    set_modem(sessionmaker, status="up", last_seen=NOW)
    assert run() == 1
    assert "kembali normal" in alert_texts(sessionmaker)[-1][1]


def test_alert_when_the_outbox_backs_up(sessionmaker, config):
    config = dataclasses.replace(config, alert_numbers=("0811111111",), alert_backlog=5)
    set_modem(sessionmaker, status="up", signal_percent=80, last_seen=NOW)
    with sessionmaker.begin() as s:
        s.add_all([Message(direction="out", number="+628123", text=f"t{i}", status="queued")
                   for i in range(5)])
    assert in_transaction(sessionmaker, health.send_alerts, config, NOW, set()) == (1, {"backlog"})
    assert "outbox" in alert_texts(sessionmaker)[-1][1]


def test_check_exit_codes(config):
    modem = {"name": "modem1", "signal_percent": 70}
    assert check.evaluate([{**modem, "health": "green"}], 0, config)[1] == check.OK
    assert check.evaluate([{**modem, "health": "yellow"}], 0, config)[1] == check.WARNING
    line, code = check.evaluate([{**modem, "health": "red"}], 0, config)
    assert code == check.CRITICAL and line.startswith("HELPDESK CRITICAL - modem1 red |")
    assert "modem1_signal=70%;30:;10:;0;100" in line
    two = [{**modem, "health": "red"}, {**modem, "name": "modem2", "health": "green"}]
    assert check.evaluate(two, 0, config)[1] == check.WARNING
    assert check.evaluate([{**modem, "health": "green"}], 500, config)[1] == check.WARNING
    assert check.evaluate([], 0, config)[1] == check.UNKNOWN


def test_metrics_in_prometheus_text_format(client, db):
    db.add(Modem(name="modem1", status="up", signal_percent=64, battery_percent=90,
                 sent_count=12, received_count=30, failed_count=1,
                 last_seen=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    db.add(Message(direction="out", number="+628123", text="x", status="queued"))
    db.commit()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    body = response.get_data(as_text=True)
    assert 'helpdesk_modem_up{modem="modem1"} 1.0' in body
    assert 'helpdesk_modem_health{modem="modem1"} 0.0' in body
    assert 'helpdesk_modem_signal_percent{modem="modem1"} 64.0' in body
    assert 'helpdesk_modem_texts{modem="modem1",outcome="sent"} 12.0' in body
    assert "helpdesk_outbox_queued 1.0" in body
