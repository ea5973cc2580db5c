"""Rule 7: one text never holds up another. A text that cannot be read or filed is kept
as it came, marked for a person, deleted from the SIM only once stored, and the texts
behind it go on in the same poll. Real store, real Gammu dummy driver, SQLite and
MariaDB."""
from __future__ import annotations

import datetime as dt
import logging
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from twisted.internet import task

from gateway.daemon.database import Database
from gateway.daemon.inbound import InboundPoller, MultipartSweeper
from gateway.db.models import Message, MessagePart, Payment, ReplyTemplate, Ticket, utcnow
from gateway.desk import intake, replies
from gateway.modem import simulator as sim
from gateway.modem.translate import raw_part
from gateway.modem.worker import ModemWorker
from gateway.sms.parts import RawPart

NOW = 1_795_000_000


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


def inbound(sessionmaker):
    with sessionmaker() as s:
        return s.scalars(select(Message).where(Message.direction == "in")
                         .order_by(Message.id)).all()


def sim_files(modem_dir):
    return sorted(os.listdir(modem_dir / "sms" / "1"))


def poll_once(worker, db, config, clock):
    poller = InboundPoller(worker, db, config, clock)
    poller.startService()
    clock.advance(0)
    poller.stopService()
    return poller


@pytest.fixture
def explode_on_boom(monkeypatch):
    """Filing a text that says BOOM raises, as a bug in a handler would."""
    real = intake.receive

    def receive(session, message, config):
        if "BOOM" in message.text:
            raise RuntimeError("a handler crashed on this text")
        return real(session, message, config)
    monkeypatch.setattr(intake, "receive", receive)


def test_a_text_that_cannot_be_filed_is_kept_and_the_rest_go_on_in_the_same_poll(
        worker, db, config, clock, modem_config, modem_dir, sessionmaker, explode_on_boom):
    senders = [f"08121000{i:04d}" for i in range(12)]
    for i, sender in enumerate(senders):
        sim.inject(modem_config, sender, "BOOM sekali" if i in (3, 8) else f"KOMPLAIN no {i}")
    poller = poll_once(worker, db, config, clock)
    assert poller.failures == 0
    assert sim_files(modem_dir) == []  # every text is stored, so every one may go
    texts = inbound(sessionmaker)
    assert len(texts) == 12
    marked = [m for m in texts if m.attention]
    assert sorted(m.text for m in marked) == ["BOOM sekali", "BOOM sekali"]
    for message in marked:
        assert "RuntimeError" in message.attention and "a handler crashed" in message.attention
        assert message.ticket_id is None and message.contact_id is None
    filed = [m for m in texts if not m.attention]
    assert all(m.ticket_id is not None for m in filed)
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 10
        # each stored part carries its dedupe key: a re-read is recognised, not refiled
        assert s.scalar(select(func.count()).select_from(MessagePart)
                        .where(MessagePart.dedupe_key.is_not(None))) == 12


def test_a_quarantined_text_read_again_is_only_deleted(worker, db, config, clock,
                                                       modem_config, modem_dir, sessionmaker,
                                                       explode_on_boom):
    sim.inject(modem_config, "081234567890", "BOOM")
    first = worker.read_inbox()
    parts = []
    first.addCallback(lambda r: parts.extend(r[0]))
    results = []
    db.inbox.store("modem1", parts, config, dt.datetime(2026, 12, 1)).addCallback(results.append)
    db.inbox.store("modem1", parts, config, dt.datetime(2026, 12, 1)).addCallback(results.append)
    assert len(inbound(sessionmaker)) == 1
    assert results[1].deletable == [parts[0].location] and results[1].messages == []


def test_an_amount_no_column_holds_is_read_as_out_of_range(worker, db, config, clock,
                                                           modem_config, sessionmaker):
    sim.inject(modem_config, "081234567890", "udh tf 10000000000000 jt ke bri")
    sim.inject(modem_config, "081234567891", "KOMPLAIN pulsa belum masuk")
    poll_once(worker, db, config, clock)
    payment_text, complaint = inbound(sessionmaker)
    assert payment_text.intent == "payment" and payment_text.attention is None
    assert complaint.ticket_id is not None
    with sessionmaker() as s:
        [payment] = s.scalars(select(Payment)).all()
        assert payment.amount == 0 and payment.order_id is None  # a person checks it


@pytest.mark.parametrize("text", ["CEK 99999999999999999999", "STATUS 4294967296",
                                  "BAYAR 99999999999999999999 150rb",
                                  "PESAN XL25 99999999999999999999"])
def test_numbers_past_any_id_or_quantity_are_answered_not_fatal(text, worker, db, config,
                                                                 clock, modem_config,
                                                                 modem_dir, sessionmaker):
    sim.inject(modem_config, "081234567890", text)
    poll_once(worker, db, config, clock)
    [message] = inbound(sessionmaker)
    assert message.attention is None and sim_files(modem_dir) == []
    with sessionmaker() as s:
        replies_queued = s.scalar(select(func.count()).select_from(Message)
                                  .where(Message.direction == "out"))
    assert replies_queued >= 1  # the customer hears something, never silence


def test_an_admin_template_that_raises_falls_back_to_the_builtin_logged_once(
        worker, db, config, clock, modem_config, sessionmaker, caplog, monkeypatch):
    monkeypatch.setattr(replies, "_told", set())  # once per process: this test's own
    with sessionmaker.begin() as s:
        s.add(ReplyTemplate(name="complaint_ack", language="id",
                            body="Tiket {{ ticket_number }} {{ 1 / 0 }}"))
    for i in range(3):
        sim.inject(modem_config, f"08123456789{i}", "KOMPLAIN pulsa belum masuk")
    with caplog.at_level(logging.ERROR, logger=replies.__name__):
        poll_once(worker, db, config, clock)
    assert [m.attention for m in inbound(sessionmaker)] == [None, None, None]
    with sessionmaker() as s:
        acks = s.scalars(select(Message.text).where(Message.direction == "out")).all()
    builtin = replies.render("complaint_ack", "id", ticket_number="X").split("X")[0]
    assert len(acks) == 3 and all(a.startswith(builtin) for a in acks)
    told = [r for r in caplog.records if "complaint_ack" in r.getMessage()]
    assert len(told) == 1 and "ZeroDivisionError" in told[0].getMessage()


def test_a_data_sms_is_kept_for_a_person_not_read(db, config, sessionmaker):
    part = raw_part({"Location": 7, "Number": "+6281234567890", "Text": b"\x01\x02\xff",
                     "Coding": "8bit", "DateTime": dt.datetime(2026, 12, 1, 9, 0)})
    assert part.unreadable
    results = []
    db.inbox.store("modem1", [part], config, dt.datetime(2026, 12, 1)).addCallback(
        results.append)
    [message] = inbound(sessionmaker)
    assert message.attention.startswith("a data SMS") and "0102ff" in message.text
    assert results[0].deletable == [7]


def test_a_gammu_record_of_the_wrong_shape_is_kept_for_a_person(db, config, sessionmaker):
    part = raw_part({"Location": 3, "Number": "+6281234567890", "Text": "halo",
                     "UDH": {"Type": "ConcatenatedMessages", "AllParts": "two"}})
    assert part.unreadable and "TypeError" in part.unreadable
    db.inbox.store("modem1", [part], config, dt.datetime(2026, 12, 1))
    [message] = inbound(sessionmaker)
    assert message.attention and message.text == "'halo'"


def test_a_sender_too_long_for_the_column_is_kept(db, config, sessionmaker):
    """MariaDB refuses a 40-character number (SQLite keeps it): either way it is kept."""
    part = RawPart(location=1, sender="+62" + "8" * 40, text="halo", smsc_time=None)
    ok = RawPart(location=2, sender="+6281234567890", text="KOMPLAIN x", smsc_time=None)
    results = []
    db.inbox.store("modem1", [part, ok], config, dt.datetime(2026, 12, 1)).addCallback(
        results.append)
    assert sorted(results[0].deletable) == [1, 2]
    assert sorted(m.text for m in inbound(sessionmaker)) == ["KOMPLAIN x", "halo"]


def test_a_multipart_text_that_cannot_be_filed_after_its_timeout_is_kept(
        worker, db, config, clock, modem_config, modem_dir, sessionmaker, explode_on_boom):
    paths = sim.inject(modem_config, "081234567890", "BOOM " + "panjang sekali " * 20)
    os.unlink(paths[1])  # its second part never comes
    other = sim.inject(modem_config, "081234567891", "panjang juga " * 20)
    os.unlink(other[1])
    poll_once(worker, db, config, clock)
    assert inbound(sessionmaker) == []  # both wait for their last parts
    clock.advance(config.multipart_timeout + 1)
    sweeper = MultipartSweeper(db, config, clock)
    sweeper.startService()
    clock.advance(sweeper.every)
    sweeper.stopService()
    texts = {m.text.split()[0]: m for m in inbound(sessionmaker)}
    assert texts["BOOM"].attention and texts["BOOM"].incomplete
    assert texts["panjang"].attention is None and texts["panjang"].ticket_id is not None


senders = st.one_of(st.sampled_from(["+6281234567890", "081234567891", "TELKOMSEL",
                                     "3636", "", "+628" + "1" * 30]),
                    st.text(max_size=40))
texts = st.one_of(st.text(max_size=400),
                  st.sampled_from(["udh tf 10000000000000 jt ke bri", "BAYAR 1 1 1",
                                   "CEK 99999999999999999999", "PESAN XL25 0", "REG " + "x" * 500,
                                   "\x00", "STOP", "GARANSI", "\ud83d", "BOOM"]))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(st.tuples(senders, texts, st.booleans()), min_size=1, max_size=12))
def test_any_batch_of_texts_is_all_stored_and_all_deletable(batch, db, config, sessionmaker,
                                                            explode_on_boom):
    before = len(inbound(sessionmaker))
    when = dt.datetime(2026, 12, 1, 8, 0)
    parts = [RawPart(location=i + 1, sender=sender, text=text,
                     smsc_time=when + dt.timedelta(seconds=i) if timed else None)
             for i, (sender, text, timed) in enumerate(batch)]
    results = []
    db.inbox.store("modem1", parts, config, dt.datetime(2026, 12, 1)).addCallback(
        results.append)
    [result] = results
    assert sorted(result.deletable) == [p.location for p in parts]  # nothing left behind
    distinct = {p.dedupe_key for p in parts}
    with sessionmaker() as s:
        stored = s.scalar(select(func.count()).select_from(MessagePart)
                          .where(MessagePart.dedupe_key.in_(distinct)))
    assert stored == len(distinct)  # every text is in the database, once
    assert len(inbound(sessionmaker)) - before <= len(distinct)


def test_a_corrupt_record_on_the_sim_does_not_hide_the_texts_behind_it(
        db, config, clock, sessionmaker, tmp_path):
    """libGammu's AT driver ends GetNextSMS at a PDU it cannot decode (ERR_CORRUPTED)."""
    from gateway.config import ModemConfig
    from tests.modem_sim import ModemSimulator

    with ModemSimulator(link=str(tmp_path / "modem")) as modem:
        modem.deliver("+6281234567890", "KOMPLAIN satu")
        modem.store_pdu("0791261801000000040C9126181432547600006211")  # cut short
        modem.deliver("+6281234567891", "KOMPLAIN dua")
        worker = ModemWorker(ModemConfig("modem1", modem.gammu_config("proxyat")), clock,
                             threaded=False)
        try:
            poller = poll_once(worker, db, config, clock)
        finally:
            worker._disconnect()
        left_on_sim = dict(modem.sim)
    assert poller.failures == 0
    texts = {m.text: m for m in inbound(sessionmaker)}
    assert texts["KOMPLAIN satu"].ticket_id and texts["KOMPLAIN dua"].ticket_id
    [note] = [m for m in texts.values() if m.attention]
    assert "ERR_CORRUPTED" in note.text and "location 2" in note.text
    assert left_on_sim == {}


# -- outbound -------------------------------------------------------------------------

def _queue_out(sessionmaker, texts):
    with sessionmaker.begin() as s:
        rows = [Message(direction="out", number=number, text=text, status="queued")
                for number, text in texts]
        s.add_all(rows)
    return [row.id for row in rows]


def _out(sessionmaker):
    with sessionmaker() as s:
        return {m.text: m for m in s.scalars(select(Message).where(Message.direction == "out"))}


def test_a_text_gammu_cannot_encode_fails_alone(worker, db, config, clock, sessionmaker,
                                                monkeypatch):
    from gateway.daemon.outbox import OutboxDispatcher
    from gateway.modem import worker as worker_module

    real = worker_module.encode

    def encode(text):
        if text == "rusak":
            raise ValueError("no GSM-7 or UCS-2 form")
        return real(text)
    monkeypatch.setattr(worker_module, "encode", encode)
    _queue_out(sessionmaker, [("+6281111111111", "satu"), ("+6281111111112", "rusak"),
                              ("+6281111111113", "tiga")])
    OutboxDispatcher([worker], db, config, clock, node="test").dispatch()
    texts = _out(sessionmaker)
    assert texts["satu"].status == texts["tiga"].status == "sent"
    assert texts["rusak"].status == "failed"  # never tried, so never `unknown`
    assert "cannot be encoded" in texts["rusak"].last_error


def test_an_outcome_that_cannot_be_recorded_is_logged_and_written_again(
        worker, db, config, clock, sessionmaker, monkeypatch, caplog):
    from gateway.daemon.outbox import OutboxDispatcher
    from gateway.desk import outbox

    first, second = _queue_out(sessionmaker, [("+6281111111111", "satu"),
                                              ("+6281111111112", "dua")])
    real = outbox.mark_sent

    def mark_sent(session, message_id, *args):
        if message_id == first:
            raise RuntimeError("the row went missing")
        return real(session, message_id, *args)
    monkeypatch.setattr(outbox, "mark_sent", mark_sent)
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test")
    with caplog.at_level(logging.ERROR):
        dispatcher.dispatch()
    texts = _out(sessionmaker)
    assert texts["satu"].status == "sending" and texts["dua"].status == "sent"
    [record] = [r for r in caplog.records if f"text {first} " in r.getMessage()]
    assert "recording that failed" in record.getMessage()
    assert "the row went missing" in caplog.text  # with its traceback

    assert dispatcher.in_hand == {first}  # sent, not yet recorded: no lost claim
    # The next round fails again, and the text stays `sending`, never sent twice ...
    dispatcher.step()
    assert _out(sessionmaker)["satu"].status == "sending" and first in dispatcher.unrecorded
    # ... until the database takes the write: the modem's answer is recorded at last.
    monkeypatch.setattr(outbox, "mark_sent", real)
    dispatcher.step()
    satu = _out(sessionmaker)["satu"]
    assert satu.status == "sent" and satu.attempts == 1 and not dispatcher.unrecorded
    assert dispatcher.in_hand == set()


def test_a_claim_whose_answer_was_lost_goes_back_to_the_queue_after_a_lease(
        worker, db, config, clock, sessionmaker):
    """The claim's COMMIT went through, its answer did not: the row says this host is
    sending it, the dispatcher never had it. Its beat queues it again; it is sent once."""
    from gateway.daemon.outbox import OutboxDispatcher

    [lost] = _queue_out(sessionmaker, [("+6281111111111", "hilang")])
    with sessionmaker.begin() as s:
        s.get(Message, lost).status, s.get(Message, lost).claimed_by = "sending", "test"
        s.get(Message, lost).claimed_at, s.get(Message, lost).attempts = utcnow(clock), 1
    dispatcher = OutboxDispatcher([worker], db, config, clock, node="test")
    dispatcher.beat()
    assert _out(sessionmaker)["hilang"].status == "sending"  # within the lease: maybe ours
    clock.advance(dispatcher.lease + 1)
    dispatcher.beat()
    assert _out(sessionmaker)["hilang"].status == "queued"
    dispatcher.dispatch()
    again = _out(sessionmaker)["hilang"]
    assert (again.status, again.attempts) == ("sent", 1)
