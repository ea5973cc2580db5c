"""Storing parts: dedupe, multipart reassembly in the database, timeouts, contacts, tickets."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import func, select

from gateway.db.models import CLOSED_RANK, Contact, Message, MessagePart, Ticket
from gateway.db.transaction import in_transaction
from gateway.desk.inbox import RawPart, finish_expired, quarantine, store_batch

T0 = dt.datetime(2026, 11, 23, 9, 0, 0)


def part(text, sender="+6281234567890", location=1, ref=None, number=1, count=1, when=T0):
    return RawPart(location=location, sender=sender, text=text, smsc_time=when,
                   reference=ref, part_number=number, part_count=count)


@pytest.fixture
def store(sessionmaker, config):
    def store(parts, now=T0):
        return in_transaction(sessionmaker, store_batch, "modem1", parts, config, now)
    return store


def inbound(sessionmaker):
    with sessionmaker() as s:
        return s.scalars(select(Message).where(Message.direction == "in")
                         .order_by(Message.id)).all()


def outbound(sessionmaker):
    with sessionmaker() as s:
        return s.scalars(select(Message).where(Message.direction == "out")
                         .order_by(Message.id)).all()


def test_complaint_opens_ticket_and_queues_ack(sessionmaker, store):
    result = store([part("KOMPLAIN pulsa belum masuk", sender="081234567890")])
    assert result.deletable == [1]
    [message] = inbound(sessionmaker)
    assert message.number == "+6281234567890"
    assert message.text == "KOMPLAIN pulsa belum masuk"
    with sessionmaker() as s:
        ticket = s.get(Ticket, message.ticket_id)
        assert ticket.kind == "complaint" and ticket.status == "new"
        assert s.get(Contact, message.contact_id).phone == "+6281234567890"
    [ack] = outbound(sessionmaker)
    assert ack.status == "queued" and ack.number == "+6281234567890"
    assert ack.ticket_id == message.ticket_id
    assert f"nomor tiket {message.ticket_id}" in ack.text


def test_every_form_of_a_number_is_one_contact_and_one_ticket(sessionmaker, store):
    forms = ["081234567890", "6281234567890", "+62 812-3456-7890", "006281234567890"]
    store([part(f"halo {i}", sender=n, location=i)
                         for i, n in enumerate(forms)])
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 1
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
    intents = [m.intent for m in inbound(sessionmaker)]
    assert intents == ["other", "reply", "reply", "reply"]
    assert len(outbound(sessionmaker)) == 1  # one acknowledgement, not four


def test_english_acknowledgement_when_configured(sessionmaker, config):
    english = dataclasses.replace(config, language="en")
    in_transaction(sessionmaker, store_batch, "modem1", [part("hello")], english, T0)
    [ack] = outbound(sessionmaker)
    assert ack.text.startswith("Thank you")


def test_reading_the_same_part_again_stores_nothing_new(sessionmaker, store):
    store([part("halo")])
    again = store([part("halo", location=7)])
    assert again.deletable == [7] and again.messages == []
    assert len(inbound(sessionmaker)) == 1
    assert len(outbound(sessionmaker)) == 1


def test_a_carrier_text_is_kept_for_the_inbox_without_ticket_or_reply(sessionmaker, store):
    store([part("Sisa pulsa Anda Rp 5.000", sender="TELKOMSEL"),
           part("KOMPLAIN info promo", sender="3636", location=2)])
    carrier, short_code = inbound(sessionmaker)
    for message in carrier, short_code:
        assert message.ticket_id is None and message.contact_id is None
    assert carrier.number == "TELKOMSEL" and carrier.text == "Sisa pulsa Anda Rp 5.000"
    assert outbound(sessionmaker) == []
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0


def test_multipart_in_any_order_across_polls(sessionmaker, store):
    texts = ["satu ", "dua ", "tiga"]
    store([part(texts[2], ref=9, number=3, count=3, location=3)])
    assert inbound(sessionmaker) == []  # waits in the database, not on the SIM
    result = store([part(texts[0], ref=9, number=1, count=3, location=1)])
    assert result.deletable == [1] and inbound(sessionmaker) == []
    store([part(texts[1], ref=9, number=2, count=3, location=2)])
    [message] = inbound(sessionmaker)
    assert message.text == "satu dua tiga" and not message.incomplete
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(MessagePart)
                        .where(MessagePart.message_id == message.id)) == 3


def test_two_interleaved_multipart_texts_from_two_senders(sessionmaker, store):
    a, b = "+6281111111111", "+6282222222222"
    store([
        part("A1 ", sender=a, ref=5, number=1, count=2, location=1),
        part("B2", sender=b, ref=5, number=2, count=2, location=2),
        part("A2", sender=a, ref=5, number=2, count=2, location=3),
        part("B1 ", sender=b, ref=5, number=1, count=2, location=4),
    ])
    texts = {m.number: m.text for m in inbound(sessionmaker)}
    assert texts == {a: "A1 A2", b: "B1 B2"}


def test_emoji_at_a_part_boundary_is_intact(sessionmaker, store):
    store([part("terima kasih 🙏", ref=1, number=1, count=2, location=1),
                         part("😀 sampai jumpa", ref=1, number=2, count=2, location=2)])
    [message] = inbound(sessionmaker)
    assert message.text == "terima kasih 🙏😀 sampai jumpa"


def test_emoji_split_in_half_between_parts_is_joined(sessionmaker, store):
    high, low = "\ud83d", "\ude00"  # 😀 as a UTF-16 surrogate pair cut by the sender
    store([part("abc" + high, ref=2, number=1, count=2, location=1),
                         part(low + "xyz", ref=2, number=2, count=2, location=2)])
    [message] = inbound(sessionmaker)
    assert message.text == "abc😀xyz"


def test_missing_part_is_kept_after_timeout_and_marked(sessionmaker, store, config):
    store([part("awal", ref=3, number=1, count=3, location=1),
                         part("akhir", ref=3, number=3, count=3, location=3)])
    early = in_transaction(sessionmaker, finish_expired, config,
                           T0 + dt.timedelta(seconds=599))
    assert early == [] and inbound(sessionmaker) == []
    filed = in_transaction(sessionmaker, finish_expired, config,
                           T0 + dt.timedelta(seconds=601))
    [message] = inbound(sessionmaker)
    assert filed == [message.id]
    assert message.incomplete
    assert message.text == "awal [...] akhir"
    assert message.ticket_id is not None  # still reaches a person


def test_gsm7_ucs2_and_long_texts_stored_unchanged(sessionmaker, store):
    texts = ["harga €5 {ok} [tanya] ~ ^ \\ |", "Ñandú ΩΔ 你好 مرحبا", "x" * 1600]
    store([part(t, sender=f"+62812000000{i}", location=i)
                         for i, t in enumerate(texts)])
    assert [m.text for m in inbound(sessionmaker)] == texts


def test_a_batch_is_filed_with_the_same_statements_whatever_its_size(store, statements,
                                                                     sessionmaker):
    """Set-based filing: one query each for the batch's contacts, tickets and orders, and
    its contacts, tickets, texts, parts, events and acknowledgements written together at
    the end, not flushed text by text: each table's rows in one INSERT, on SQLite too
    (which cannot return the ids of several rows in their order without the insert
    sentinel of models.BatchInserted)."""
    def batch(first, size):
        return [part(f"paket data belum masuk {i}", sender=f"+6281300{i:06d}", location=i)
                for i in range(first, first + size)]
    store(batch(0, 1))  # the catalogue and templates are read once the same way after
    with statements() as small:
        store(batch(100, 5))
    with statements() as large:
        store(batch(200, 40))
    assert len(large) == len(small), "\n".join(large)
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 46
    assert len(outbound(sessionmaker)) == 46
    assert all(f"nomor tiket {m.ticket_id}" in m.text for m in outbound(sessionmaker))


def test_a_nul_in_a_text_or_sender_is_stored_as_a_replacement_mark(sessionmaker, store):
    """PostgreSQL's text cannot hold U+0000: on every database it becomes U+FFFD in the
    text columns, and the part's payload keeps the bytes as they came."""
    store([part("KOMPLAIN \x00 pulsa", location=1),
           part("awal\x00", sender="+6281111111111", ref=4, number=1, count=2, location=2),
           part("\x00akhir", sender="+6281111111111", ref=4, number=2, count=2, location=3),
           part("halo", sender="TELKOM\x00SEL", location=4)])
    texts = {m.number: m.text for m in inbound(sessionmaker)}
    assert texts == {"+6281234567890": "KOMPLAIN \ufffd pulsa",
                     "+6281111111111": "awal\ufffd\ufffdakhir", "TELKOM\ufffdSEL": "halo"}
    with sessionmaker() as s:
        payloads = set(s.scalars(select(MessagePart.payload)))
    assert "KOMPLAIN \x00 pulsa".encode("utf-16-be") in payloads
    assert "\x00akhir".encode("utf-16-be") in payloads


def test_quarantine_keeps_a_text_with_a_nul(sessionmaker):
    raw = part("\x00" * 3 + "\ud83d", sender="+62812\x00")
    result = in_transaction(sessionmaker, quarantine, "modem1", "reader \x00 failed", T0, [raw])
    [message] = inbound(sessionmaker)
    assert result.messages == [message.id]
    assert message.text == "\ufffd" * 4 and message.number == "+62812\ufffd"
    assert message.attention == "reader \ufffd failed"


def test_a_ticket_waits_from_the_customers_first_unanswered_text_until_a_person_answers(
        sessionmaker, store):
    from gateway.desk import tickets
    from gateway.desk.outbox import queue_message
    from gateway.desk.users import create_user

    def ticket():
        with sessionmaker() as s:
            return s.scalars(select(Ticket)).one()

    store([part("KOMPLAIN pulsa belum masuk")])
    [first] = inbound(sessionmaker)
    assert len(outbound(sessionmaker)) == 1  # the acknowledgement is no answer
    assert ticket().waiting_since == first.created_at
    assert (ticket().queue_rank, ticket().queue_since) == (2, first.created_at)
    store([part("halo? masih belum", location=2, when=T0 + dt.timedelta(minutes=5))],
          now=T0 + dt.timedelta(minutes=5))
    assert ticket().waiting_since == first.created_at  # still waiting since the first
    with sessionmaker.begin() as s:
        ani = create_user(s, "ani", "operator", "ani-password-1")
        row = s.get(Ticket, first.ticket_id)
        queue_message(s, "+6281234567890", "Sedang kami cek, Kak", ticket_id=row.id,
                      user_id=ani.id)
    assert ticket().waiting_since is None
    assert (ticket().queue_rank, ticket().queue_since) == (6, ticket().created_at)
    store([part("terima kasih, sudah masuk", location=3, when=T0 + dt.timedelta(minutes=9))],
          now=T0 + dt.timedelta(minutes=9))
    third = inbound(sessionmaker)[-1]
    assert third.ticket_id == first.ticket_id and ticket().waiting_since == third.created_at
    with sessionmaker.begin() as s:
        tickets.set_status(s, s.get(Ticket, first.ticket_id), "resolved", None)
    assert ticket().waiting_since is None and ticket().queue_rank == 14  # after every open one
    with sessionmaker.begin() as s:  # opened again: back among the open ones
        tickets.set_status(s, s.get(Ticket, first.ticket_id), "open", None)
    assert ticket().queue_rank == 6 and ticket().queue_rank < CLOSED_RANK


