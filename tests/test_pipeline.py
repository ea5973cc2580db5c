"""The inbound poller and the outbox dispatcher on the real Gammu dummy driver, with
time driven by twisted.internet.task.Clock instead of sleeps."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from twisted.internet import defer, task

from gateway import sim
from gateway.db.models import Message, MessagePart, Ticket
from gateway.db.pool import InlineDBPool
from gateway.inbound import InboundPoller, MultipartSweeper
from gateway.modem import ModemWorker
from gateway.outbox import CLAIM_BATCH, OutboxDispatcher

NOW = 1_795_000_000  # a fixed epoch second for the Clock


@pytest.fixture
def clock():
    clock = task.Clock()
    clock.advance(NOW)
    return clock


@pytest.fixture
def worker(modem_config, clock):
    worker = ModemWorker(modem_config, clock, threaded=False)
    yield worker
    worker._disconnect()


@pytest.fixture
def db(sessionmaker):
    return InlineDBPool(sessionmaker)


def sim_files(modem_dir):
    return sorted(os.listdir(modem_dir / "sms" / "1"))


def messages(sessionmaker, direction):
    with sessionmaker() as s:
        return s.scalars(select(Message).where(Message.direction == direction)
                         .order_by(Message.id)).all()


def test_text_on_sim_becomes_ticket_and_leaves_sim(worker, db, config, clock, modem_config,
                                                   modem_dir, sessionmaker):
    sim.inject(modem_config, "081234567890", "KOMPLAIN pulsa belum masuk")
    poller = InboundPoller(worker, db, config, clock)
    poller.startService()
    clock.advance(0)
    [message] = messages(sessionmaker, "in")
    assert message.number == "+6281234567890" and message.modem == "modem1"
    assert message.ticket_id is not None
    assert sim_files(modem_dir) == []  # deleted only after the commit
    [ack] = messages(sessionmaker, "out")
    assert ack.status == "queued"
    poller.stopService()


def test_poll_comes_back_at_once_while_texts_remain(worker, db, config, clock, modem_config,
                                                    modem_dir, sessionmaker):
    for i in range(150):  # more than one read batch
        sim.inject(modem_config, f"0812000{i:05d}", f"pesan nomor {i}")
    poller = InboundPoller(worker, db, config, clock)
    poller.startService()
    reads = []
    real_read = worker.read_inbox
    worker.read_inbox = lambda: real_read().addCallback(lambda r: reads.append(len(r[0])) or r)
    clock.advance(0)  # no time passes, yet both batches are read
    assert reads == [100, 50]
    assert len(messages(sessionmaker, "in")) == 150
    assert sim_files(modem_dir) == []
    assert [c.getTime() - NOW for c in clock.getDelayedCalls()] == [config.poll_interval]
    poller.stopService()


def test_new_text_is_picked_up_within_one_poll_interval(worker, db, config, clock,
                                                        modem_config, sessionmaker):
    poller = InboundPoller(worker, db, config, clock)
    poller.startService()
    clock.advance(0)
    sim.inject(modem_config, "081234567890", "halo")
    clock.advance(config.poll_interval)
    assert len(messages(sessionmaker, "in")) == 1
    poller.stopService()


class DownDB:
    """A database that is unreachable until `up` is set, like MariaDB being restarted."""

    def __init__(self, real):
        self.real, self.up, self.calls = real, False, 0

    def run(self, fn, *args):
        self.calls += 1
        if not self.up:
            return defer.fail(OperationalError("SELECT 1", {}, Exception("server has gone away")))
        return self.real.run(fn, *args)


def test_database_outage_keeps_texts_on_sim_and_retries_with_backoff(
        worker, db, config, clock, modem_config, modem_dir, sessionmaker):
    sim.inject(modem_config, "081234567890", "halo")
    down = DownDB(db)
    poller = InboundPoller(worker, down, config, clock)
    poller.startService()
    clock.advance(0)
    clock.advance(config.poll_interval * 2)
    assert down.calls == 2
    assert sim_files(modem_dir) == ["1"]  # nothing deleted while nothing is stored
    [pending] = clock.getDelayedCalls()
    assert pending.getTime() - clock.seconds() == config.poll_interval * 4  # backing off
    down.up = True
    clock.advance(config.poll_interval * 4)
    assert len(messages(sessionmaker, "in")) == 1
    assert sim_files(modem_dir) == []
    poller.stopService()


def test_incomplete_multipart_filed_by_sweeper_after_timeout(worker, db, config, clock,
                                                             modem_config, modem_dir,
                                                             sessionmaker):
    paths = sim.inject(modem_config, "081234567890", "panjang sekali " * 20)
    assert len(paths) == 2
    os.unlink(paths[1])  # the second part never arrives
    poller = InboundPoller(worker, db, config, clock)
    sweeper = MultipartSweeper(db, config, clock, every=15)
    poller.startService()
    sweeper.startService()
    clock.advance(0)
    assert messages(sessionmaker, "in") == [] and sim_files(modem_dir) == []
    poller.stopService()  # only the sweeper matters from here on
    clock.pump([15] * 39)  # 585 s: not yet
    assert messages(sessionmaker, "in") == []
    clock.pump([15] * 2)  # past the 600 s timeout
    [message] = messages(sessionmaker, "in")
    assert message.incomplete and message.text.endswith("[...]")
    sweeper.stopService()


def queue(sessionmaker, number, text):
    with sessionmaker.begin() as s:
        s.add(Message(direction="out", number=number, text=text, status="queued"))


def test_outbox_sends_through_gammu_and_records_references(worker, db, config, clock,
                                                           sessionmaker):
    queue(sessionmaker, "+6281234567890", "Pesanan Anda sudah dikirim 🚚 " * 6)  # UCS-2, 3 parts
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test")
    dispatcher.startService()
    clock.advance(0)
    [message] = messages(sessionmaker, "out")
    assert message.status == "sent" and message.modem == "modem1"
    with sessionmaker() as s:
        parts = s.scalars(select(MessagePart).where(MessagePart.message_id == message.id)).all()
    assert [p.part_number for p in parts] == [1, 2, 3]
    assert all(p.reference is not None for p in parts)
    dispatcher.stopService()


def test_one_bad_text_does_not_block_the_others(worker, db, config, clock, sessionmaker):
    queue(sessionmaker, "+6281111111111", "satu")
    queue(sessionmaker, "1" * 30, "nomor rusak")  # Gammu refuses it: ERR_INVALIDDATA
    queue(sessionmaker, "+6282222222222", "tiga")
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test")
    dispatcher.startService()
    clock.advance(0)
    statuses = [(m.text, m.status) for m in messages(sessionmaker, "out")]
    assert statuses == [("satu", "sent"), ("nomor rusak", "failed"), ("tiga", "sent")]
    assert "ERR_INVALIDDATA" in messages(sessionmaker, "out")[1].last_error
    dispatcher.stopService()


def test_unreachable_modem_retries_with_backoff_then_fails(config, clock, sessionmaker, db,
                                                           tmp_path):
    from gateway.config import ModemConfig

    dead = ModemWorker(ModemConfig("modem1", {"Device": str(tmp_path / "no-such-tty"),
                                              "Connection": "at115200"}),
                       clock, threaded=False, reconnect_delay=(0, 0))
    queue(sessionmaker, "+6281111111111", "halo")
    dispatcher = OutboxDispatcher([dead], db, config, clock, node="test")
    dispatcher.startService()
    clock.advance(0)
    [message] = messages(sessionmaker, "out")
    assert message.status == "queued" and message.attempts == 1
    assert message.next_attempt_at is not None  # waits before the next try
    dead.last_error = None  # let the dispatcher try the modem again each round
    for _ in range(config.send_attempts * 10):
        clock.advance(600)
        dead.last_error = None
    [message] = messages(sessionmaker, "out")
    assert message.status == "failed" and message.attempts == config.send_attempts
    dispatcher.stopService()


def test_wake_sends_without_waiting_for_the_tick(worker, db, config, clock, sessionmaker):
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test", interval=5)
    dispatcher.startService()
    clock.advance(0)
    queue(sessionmaker, "+6281111111111", "segera")
    dispatcher.wake()
    clock.advance(0)
    assert messages(sessionmaker, "out")[0].status == "sent"
    dispatcher.stopService()


def test_full_batches_are_drained_back_to_back(worker, db, config, clock, sessionmaker):
    for i in range(CLAIM_BATCH + 5):
        queue(sessionmaker, "+6281111111111", f"teks {i}")
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test", interval=5)
    dispatcher.startService()
    clock.advance(0)
    clock.advance(0)
    assert {m.status for m in messages(sessionmaker, "out")} == {"sent"}
    dispatcher.stopService()


def test_reply_goes_out_and_ticket_conversation_is_whole(worker, db, config, clock,
                                                         modem_config, sessionmaker):
    from gateway.outbox_store import queue_message

    sim.inject(modem_config, "081234567890", "KOMPLAIN pulsa belum masuk")
    poller = InboundPoller(worker, db, config, clock)
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test")
    poller.on_stored = lambda _ids: dispatcher.wake()
    dispatcher.startService()
    poller.startService()
    clock.advance(0)
    clock.advance(0)
    [message] = messages(sessionmaker, "in")
    with sessionmaker.begin() as s:
        ticket = s.get(Ticket, message.ticket_id)
        queue_message(s, "+6281234567890", "Sudah kami cek, pulsa masuk 5 menit lagi",
                      ticket_id=ticket.id, user_id=None)
    clock.advance(dispatcher.interval)
    out = messages(sessionmaker, "out")
    assert [m.status for m in out] == ["sent", "sent"]
    assert {m.ticket_id for m in out} == {message.ticket_id}
    poller.stopService()
    dispatcher.stopService()
