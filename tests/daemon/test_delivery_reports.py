"""Delivery reports through the real AT driver: requested when configured, matched to the
text they are about, and never taken for a customer's text."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from twisted.internet import task

from gateway.config import ModemConfig
from gateway.daemon.database import Database
from gateway.daemon.inbound import InboundPoller
from gateway.daemon.outbox import OutboxDispatcher
from gateway.db.models import Message, StatusReport
from gateway.modem.worker import ModemWorker
from tests.modem_sim import ModemSimulator, status_report_requested

CUSTOMER = "+6285712345678"


@pytest.fixture
def sim(tmp_path):
    with ModemSimulator(link=str(tmp_path / "modem")) as simulator:
        yield simulator


@pytest.fixture
def gateway(sim, sessionmaker, config):
    """Poller and dispatcher on one simulated modem, driven by a Clock."""
    clock = task.Clock()
    clock.advance(1_795_000_000)
    config = dataclasses.replace(config, delivery_reports=True)
    worker = ModemWorker(ModemConfig("modem1", sim.gammu_config("proxyat")), clock,
                         threaded=False)
    db = Database(sessionmaker)
    poller = InboundPoller(worker, db, config, clock)
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test")
    yield poller, dispatcher, clock
    worker._disconnect()


def send(sessionmaker, dispatcher, text):
    with sessionmaker.begin() as s:
        message = Message(direction="out", number=CUSTOMER, text=text, status="queued")
        s.add(message)
    dispatcher.dispatch()
    with sessionmaker() as s:
        return s.get(Message, message.id)


def reports(sessionmaker):
    with sessionmaker() as s:
        return s.scalars(select(StatusReport).order_by(StatusReport.id)).all()


def test_report_requested_and_matched_to_delivered(sim, gateway, sessionmaker):
    poller, dispatcher, _ = gateway
    message = send(sessionmaker, dispatcher, "Pesanan Anda sudah dikirim")
    assert message.status == "sent"
    assert status_report_requested(sim.sent[-1])
    reference = sim.sent_references[-1]

    sim.deliver_status_report(reference, CUSTOMER, delivered=True, store=True)
    poller.poll()
    with sessionmaker() as s:
        message = s.get(Message, message.id)
        assert message.status == "delivered" and message.delivered_at is not None
        assert s.scalars(select(Message).where(Message.direction == "in")).all() == []
    [report] = reports(sessionmaker)
    assert report.message_id == message.id and report.status == "delivered"
    assert sim.sim == {}  # the report was deleted from the SIM once stored


def test_long_text_is_delivered_only_when_every_part_is(sim, gateway, sessionmaker):
    poller, dispatcher, _ = gateway
    message = send(sessionmaker, dispatcher, "Rincian pesanan: " + "voucher XL 25K, " * 12)
    assert len(sim.sent) == 2
    first, second = sim.sent_references
    sim.deliver_status_report(first, CUSTOMER, delivered=True, store=True)
    poller.poll()
    with sessionmaker() as s:
        assert s.get(Message, message.id).status == "sent"
    sim.deliver_status_report(second, CUSTOMER, delivered=True, store=True)
    poller.poll()
    with sessionmaker() as s:
        assert s.get(Message, message.id).status == "delivered"


def test_failed_report_marks_the_text_failed(sim, gateway, sessionmaker):
    poller, dispatcher, _ = gateway
    message = send(sessionmaker, dispatcher, "Promo akhir pekan")
    sim.deliver_status_report(sim.sent_references[-1], CUSTOMER, delivered=False, store=True)
    poller.poll()
    with sessionmaker() as s:
        message = s.get(Message, message.id)
    assert message.status == "failed" and "undeliverable" in message.last_error


def test_unmatched_report_is_kept_and_is_not_a_customer_text(sim, gateway, sessionmaker):
    poller, _, _ = gateway
    sim.deliver_status_report(77, "+6281199999999", delivered=True, store=True)
    poller.poll()
    [report] = reports(sessionmaker)
    assert report.message_id is None and report.reference == 77
    assert report.number == "+6281199999999"
    with sessionmaker() as s:
        assert s.scalars(select(Message)).all() == []

