"""The inbound poller and the outbox dispatcher on the real Gammu dummy driver, with
time driven by twisted.internet.task.Clock instead of sleeps."""
from __future__ import annotations

import os

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from twisted.internet import defer, task

from gateway.daemon.database import Database
from gateway.daemon.inbound import InboundPoller, MultipartSweeper
from gateway.daemon.outbox import OutboxDispatcher
from gateway.db.models import Message, MessagePart, Ticket
from gateway.modem import simulator as sim
from gateway.modem.worker import ModemWorker

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
    return Database(sessionmaker)


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


class DownDB(Database):
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


def dummy_worker(tmp_path, clock, name, **options):
    from gateway.config import ModemConfig

    device = tmp_path / name
    device.mkdir()
    config = ModemConfig(name, {"Device": str(device), "Connection": "none", "Model": "dummy"},
                         **options)
    return ModemWorker(config, clock, threaded=False)


def dead_worker(tmp_path, clock):
    from gateway.config import ModemConfig

    return ModemWorker(ModemConfig("dead", {"Device": str(tmp_path / "no-such-tty"),
                                            "Connection": "at115200"}),
                       clock, threaded=False, reconnect_delay=(60, 60))


def test_texts_of_a_dead_modem_are_taken_by_the_other(config, clock, sessionmaker, db,
                                                      tmp_path):
    dead, alive = dead_worker(tmp_path, clock), dummy_worker(tmp_path, clock, "alive")
    with sessionmaker.begin() as s:
        s.add(Message(direction="out", number="+6281111111111", text="balasan",
                      status="queued", modem="dead"))  # the customer wrote to the dead one
    dispatcher = OutboxDispatcher([dead, alive], db, config, clock, node="test")
    dispatcher.startService()
    clock.advance(0)
    clock.advance(dispatcher.interval)
    [message] = messages(sessionmaker, "out")
    assert message.status == "sent" and message.modem == "alive"
    assert message.attempts == 1  # the dead modem's refusal cost no attempt
    dispatcher.stopService()


def test_with_every_modem_down_texts_wait_queued_without_spending_attempts(
        config, clock, sessionmaker, db, tmp_path):
    dead = dead_worker(tmp_path, clock)
    queue(sessionmaker, "+6281111111111", "halo")
    dispatcher = OutboxDispatcher([dead], db, config, clock, node="test")
    dispatcher.startService()
    for _ in range(20):
        clock.advance(30)
    [message] = messages(sessionmaker, "out")
    assert message.status == "queued" and message.attempts == 0
    assert "down" in message.last_error
    dispatcher.stopService()


def test_prefix_rules_route_numbers_to_their_sim(config, clock, sessionmaker, db, tmp_path):
    telkomsel = dummy_worker(tmp_path, clock, "telkomsel",
                             prefixes=("0811", "0812", "0813", "0821", "0822", "0823",
                                       "0851", "0852", "0853"))
    other = dummy_worker(tmp_path, clock, "xl")
    for number in ("+628121111111", "+628177777777", "+628521111111", "+628561111111"):
        queue(sessionmaker, number, "promo")
    dispatcher = OutboxDispatcher([telkomsel, other], db, config, clock, node="test")
    dispatcher.startService()
    clock.advance(0)
    routed = {m.number: m.modem for m in messages(sessionmaker, "out")}
    assert routed["+628121111111"] == routed["+628521111111"] == "telkomsel"
    assert {routed["+628177777777"], routed["+628561111111"]} <= {"telkomsel", "xl"}
    assert {m.status for m in messages(sessionmaker, "out")} == {"sent"}
    dispatcher.stopService()


def test_two_modems_share_the_load(config, clock, sessionmaker, db, tmp_path):
    one, two = dummy_worker(tmp_path, clock, "one"), dummy_worker(tmp_path, clock, "two")
    for i in range(20):
        queue(sessionmaker, "+6281111111111", f"teks {i}")
    dispatcher = OutboxDispatcher([one, two], db, config, clock, node="test")
    dispatcher.startService()
    clock.advance(0)
    used = [m.modem for m in messages(sessionmaker, "out")]
    assert used.count("one") == used.count("two") == 10
    dispatcher.stopService()


def test_send_rate_spaces_a_modems_texts(config, clock, sessionmaker, db, tmp_path):
    slow = dummy_worker(tmp_path, clock, "slow", send_rate=6)  # one text every 10 s
    for i in range(10):
        queue(sessionmaker, "+6281111111111", f"teks {i}")
    dispatcher = OutboxDispatcher([slow], db, config, clock, node="test", interval=1)
    dispatcher.startService()
    sent_by = {}
    for second in range(0, 31):
        clock.advance(0 if second == 0 else 1)
        sent_by[second] = sum(m.status == "sent" for m in messages(sessionmaker, "out"))
    assert sent_by[0] == 1 and sent_by[9] == 1 and sent_by[10] == 2 and sent_by[30] == 4
    assert {m.status for m in messages(sessionmaker, "out")} == {"sent", "queued"}
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
    for i in range(55):
        queue(sessionmaker, "+6281111111111", f"teks {i}")
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test", interval=5)
    dispatcher.startService()
    clock.advance(0)
    clock.advance(0)
    assert {m.status for m in messages(sessionmaker, "out")} == {"sent"}
    dispatcher.stopService()


def test_reply_goes_out_and_ticket_conversation_is_whole(worker, db, config, clock,
                                                         modem_config, sessionmaker):
    from gateway.desk.outbox import queue_message

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
