"""The outbox against misbehaving modems, through the real AT driver and the simulator."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from twisted.internet import task

from gateway.config import ModemConfig
from gateway.daemon.database import Database
from gateway.daemon.outbox import OutboxDispatcher
from gateway.db.models import Message
from gateway.modem.worker import ModemWorker
from tests.modem_sim import ModemSimulator


@pytest.fixture
def sims(tmp_path):
    with ModemSimulator(link=str(tmp_path / "a")) as a, \
            ModemSimulator(link=str(tmp_path / "b")) as b:
        yield a, b


def worker(sim, name, clock):
    return ModemWorker(ModemConfig(name, sim.gammu_config("proxyat")), clock, threaded=False,
                       call_timeout=2.0)


def queue(sessionmaker, texts):
    with sessionmaker.begin() as s:
        for number, text, modem in texts:
            s.add(Message(direction="out", number=number, text=text, status="queued",
                          modem=modem))


def outbox(sessionmaker):
    with sessionmaker() as s:
        return {m.text: m for m in s.scalars(select(Message).order_by(Message.id))}


def test_one_bad_number_fails_alone(sims, sessionmaker, config):
    sim, _ = sims
    sim.fail_numbers = {"+6285700000000": 21}  # +CMS ERROR: 21, short message rejected
    clock = task.Clock()
    modem = worker(sim, "a", clock)
    queue(sessionmaker, [("+6281111111111", "satu", None), ("+6285700000000", "ditolak", None),
                         ("+6282222222222", "tiga", None)])
    dispatcher = OutboxDispatcher([modem], Database(sessionmaker), config, clock,
                                  node="test")
    try:
        dispatcher.dispatch()
        texts = outbox(sessionmaker)
        assert texts["satu"].status == texts["tiga"].status == "sent"
        assert texts["ditolak"].status == "queued" and texts["ditolak"].attempts == 1
        assert texts["ditolak"].next_attempt_at is not None  # retried later, with backoff
        assert "ERR_UNKNOWN" in texts["ditolak"].last_error
        assert len(sim.sent_references) == 2 and modem.connected  # the network took two
    finally:
        modem._disconnect()


def test_modem_hanging_mid_send_leaves_unknown_and_the_other_modem_takes_over(
        sims, sessionmaker, config):
    a, b = sims
    clock = task.Clock()
    hung, healthy = worker(a, "a", clock), worker(b, "b", clock)
    queue(sessionmaker, [("+6281111111111", "pertama", "a")])
    dispatcher = OutboxDispatcher([hung, healthy], Database(sessionmaker), config, clock,
                                  node="test")
    try:
        assert hung.status().result["imei"] == a.imei  # connected, then it stops answering
        a.hang()
        dispatcher.dispatch()  # the watchdog aborts the hung SendSMS after 2 s
        first = outbox(sessionmaker)["pertama"]
        # It may or may not have left: never sent twice, a person decides (rule 4).
        assert first.status == "unknown" and "stopped answering" in first.last_error
        assert not hung.connected

        queue(sessionmaker, [("+6281111111111", f"berikut {i}", "a") for i in range(3)])
        dispatcher.dispatch()
        texts = outbox(sessionmaker)
        assert all(texts[f"berikut {i}"].status == "sent" for i in range(3))
        assert all(texts[f"berikut {i}"].modem == "b" for i in range(3))
        assert len(b.sent_references) == 3
    finally:
        a.resume()
        hung._disconnect()
        healthy._disconnect()
