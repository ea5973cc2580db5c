"""Working a ticket in gateway.desk.tickets: status, assignee, priority, notes, merge, the
SLA clock, canned responses and the queue's order; every change on the timeline and in
the audit log. SQLite and MariaDB."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from gateway.db.models import (
    AuditLog,
    Call,
    CannedResponse,
    Contact,
    Message,
    Order,
    Ticket,
    TicketEvent,
    utcnow,
)
from gateway.desk import tickets
from gateway.desk.users import create_user

PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 11, 23, 9, 0, 0)


@pytest.fixture
def people(db):
    ani = create_user(db, "ani", "operator", PASSWORD)
    budi = create_user(db, "budi", "supervisor", PASSWORD)
    lihat = create_user(db, "lihat", "viewer", PASSWORD)
    db.commit()
    return ani, budi, lihat


def _ticket(db, phone="+6281234567890", texts=("Halo",), status="new", kind="question",
            created_at=T0) -> Ticket:
    contact = db.scalar(select(Contact).where(Contact.phone == phone))
    if contact is None:
        contact = Contact(phone=phone)
        db.add(contact)
        db.flush()
    ticket = Ticket(kind=kind, status=status, contact_id=contact.id, created_at=created_at)
    db.add(ticket)
    db.flush()
    for text in texts:
        m = Message(direction="in", number=phone, text=text, status="received",
                    contact_id=contact.id, ticket_id=ticket.id, created_at=created_at)
        db.add(m)
        db.flush()
        db.add(TicketEvent(ticket_id=ticket.id, kind="message_in", message_id=m.id))
    db.commit()
    return ticket


def _audits(db, action):
    return db.scalars(select(AuditLog).where(AuditLog.action == action)).all()


def test_assign_claim_and_unassign_are_on_the_timeline_and_audited(db, people):
    ani, budi, _ = people
    ticket = _ticket(db)
    assert tickets.claim(db, ticket, ani) is True
    assert tickets.claim(db, ticket, ani) is False  # nothing changes, nothing recorded
    with pytest.raises(tickets.TicketError, match="is ani's already"):
        tickets.claim(db, ticket, budi)  # a claim never takes a ticket from a colleague
    assert tickets.assign(db, ticket, budi, ani.id) is True
    assert tickets.assign(db, ticket, None, budi.id) is True
    db.commit()
    assert db.get(Ticket, ticket.id).assignee_id is None
    details = [json.loads(e.detail) for e in db.scalars(
        select(TicketEvent).where(TicketEvent.kind == "assign").order_by(TicketEvent.id))]
    assert details == [{"from": None, "to": "ani"}, {"from": "ani", "to": "budi"},
                       {"from": "budi", "to": None}]
    assert [a.user_id for a in _audits(db, "ticket.assign")] == [ani.id, ani.id, budi.id]


def test_a_claim_lost_to_a_colleague_says_so(db, people, sessionmaker):
    ani, budi, _ = people
    ticket = _ticket(db)
    with sessionmaker() as other:  # budi's request, at the same moment
        tickets.claim(other, other.get(Ticket, ticket.id), other.get(type(budi), budi.id))
        other.commit()
    with pytest.raises(tickets.TicketError, match="is budi's already"):
        tickets.claim(db, ticket, ani)
    assert len(_audits(db, "ticket.assign")) == 1


def test_a_viewer_or_disabled_user_cannot_be_given_a_ticket(db, people):
    ani, _, lihat = people
    ticket = _ticket(db)
    with pytest.raises(tickets.TicketError, match="viewer"):
        tickets.assign(db, ticket, lihat, ani.id)
    ani.active = False
    with pytest.raises(tickets.TicketError, match="disabled"):
        tickets.assign(db, ticket, ani, ani.id)
    with pytest.raises(tickets.TicketError, match="no user 'nobody'"):
        tickets.find_assignee(db, "nobody")


def test_status_and_priority_changes_refuse_unknown_values(db, people):
    ani = people[0]
    ticket = _ticket(db)
    assert tickets.set_priority(db, ticket, "urgent", ani.id)
    assert tickets.set_status(db, ticket, "resolved", ani.id)
    assert ticket.closed_at is not None
    assert tickets.set_status(db, ticket, "open", ani.id) and ticket.closed_at is None
    for bad in ("", "URGENT", "asap"):
        with pytest.raises(tickets.TicketError, match="unknown priority"):
            tickets.set_priority(db, ticket, bad, ani.id)
    with pytest.raises(tickets.TicketError, match="unknown status"):
        tickets.set_status(db, ticket, "done", ani.id)
    db.commit()
    assert db.get(Ticket, ticket.id).priority == "urgent"
    assert len(_audits(db, "ticket.priority")) == 1
    assert len(_audits(db, "ticket.status")) == 2


def test_new_ticket_has_normal_priority(db):
    assert _ticket(db).priority == "normal"


def test_note_is_an_event_never_a_message(db, people):
    ani = people[0]
    ticket = _ticket(db)
    note = tickets.add_note(db, ticket, "  Pelanggan <b>galak</b>,\r\nhati-hati  ", ani.id)
    db.commit()
    assert (note.kind, note.detail, note.user_id) == (
        "note", "Pelanggan <b>galak</b>,\nhati-hati", ani.id)
    assert db.scalar(select(func.count()).select_from(Message)
                     .where(Message.direction == "out")) == 0
    assert json.loads(_audits(db, "ticket.note")[0].detail) == {"event_id": note.id}
    for text, complaint in (("   ", "empty"), ("x" * 4001, "at most 4000")):
        with pytest.raises(tickets.TicketError, match=complaint):
            tickets.add_note(db, ticket, text, ani.id)


def test_merge_moves_texts_events_orders_and_calls_and_closes_with_a_pointer(db, people):
    ani = people[0]
    target = _ticket(db, texts=("Pesanan saya mana?",))
    source = _ticket(db, texts=("Halo?", "Halo lagi"), status="open")
    order = Order(contact_id=source.contact_id, ticket_id=source.id, total=51037)
    call = Call(number=source.contact.phone, ticket_id=source.id, started_at=T0)
    db.add_all([order, call])
    tickets.add_note(db, source, "catatan", ani.id)
    source.first_response_at = T0 + dt.timedelta(minutes=3)
    db.commit()

    result = tickets.merge(db, source, target.id, ani.id)
    db.commit()
    assert result.id == target.id
    source, target = db.get(Ticket, source.id), db.get(Ticket, target.id)
    assert (source.status, source.merged_into_id) == ("closed", target.id)
    assert source.closed_at is not None
    texts = db.scalars(select(Message.text).where(Message.ticket_id == target.id)
                       .order_by(Message.id)).all()
    assert texts == ["Pesanan saya mana?", "Halo?", "Halo lagi"]
    assert db.scalar(select(func.count()).select_from(Message)
                     .where(Message.ticket_id == source.id)) == 0
    assert db.get(Order, order.id).ticket_id == target.id
    assert db.get(Call, call.id).ticket_id == target.id
    assert target.first_response_at == T0 + dt.timedelta(minutes=3)
    assert db.scalar(select(TicketEvent.ticket_id).where(TicketEvent.kind == "note")) \
        == target.id
    # The source keeps only the record of the merge itself.
    assert [e.kind for e in db.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == source.id).order_by(TicketEvent.id))] == ["status", "merged"]
    [row] = _audits(db, "ticket.merge")
    assert (row.target_id, json.loads(row.detail)["into"]) == (source.id, target.id)
    assert json.loads(row.detail)["messages"] == 2


def test_merge_refuses_itself_missing_closed_and_merged_tickets(db, people):
    ani = people[0]
    a, b = _ticket(db), _ticket(db, phone="+6285711112222")
    closed = _ticket(db, status="closed")
    with pytest.raises(tickets.TicketError, match="into itself"):
        tickets.merge(db, a, a.id, ani.id)
    with pytest.raises(tickets.TicketError, match="no ticket 99999"):
        tickets.merge(db, a, 99999, ani.id)
    with pytest.raises(tickets.TicketError, match="is closed"):
        tickets.merge(db, a, closed.id, ani.id)
    tickets.merge(db, b, a.id, ani.id)
    db.commit()
    b = db.get(Ticket, b.id)
    with pytest.raises(tickets.TicketError, match="merged into ticket"):
        tickets.merge(db, a, b.id, ani.id)  # b is gone into a
    with pytest.raises(tickets.TicketError, match="already"):
        tickets.merge(db, b, closed.id, ani.id)
    with pytest.raises(tickets.TicketError, match="merged into"):
        tickets.set_status(db, b, "open", ani.id)


def test_merge_into_a_resolved_ticket_reopens_it(db, people):
    target = _ticket(db, status="resolved")
    source = _ticket(db)
    tickets.merge(db, source, target.id, people[0].id)
    db.commit()
    assert db.get(Ticket, target.id).status == "open"


def test_sla_clock_running_overdue_met_and_late(db, people):
    tickets.set_sla_target(db, "complaint", "30", "240", people[0].id)
    db.commit()
    target = tickets.sla_targets(db)["complaint"]
    ticket = _ticket(db, kind="complaint")

    clock = tickets.sla_clock(ticket, target, now=T0 + dt.timedelta(minutes=10))
    assert clock.first_response.due == T0 + dt.timedelta(minutes=30)
    assert (clock.first_response.state, clock.first_response.minutes) == ("running", 20)
    assert (clock.resolution.state, clock.resolution.minutes) == ("running", 230)
    clock = tickets.sla_clock(ticket, target, now=T0 + dt.timedelta(minutes=45))
    assert (clock.first_response.state, clock.first_response.minutes) == ("overdue", 15)
    assert clock.next is clock.first_response
    ticket.first_response_at = T0 + dt.timedelta(minutes=40)
    clock = tickets.sla_clock(ticket, target, now=T0 + dt.timedelta(minutes=45))
    assert clock.first_response.state == "late" and clock.next is clock.resolution

    ticket.first_response_at = T0 + dt.timedelta(minutes=25)
    ticket.status, ticket.closed_at = "resolved", T0 + dt.timedelta(minutes=300)
    clock = tickets.sla_clock(ticket, target, now=T0 + dt.timedelta(days=2))
    assert (clock.first_response.state, clock.first_response.minutes) == ("met", 5)
    assert (clock.resolution.state, clock.resolution.minutes) == ("late", 60)
    assert tickets.sla_clock(ticket, None) == tickets.SlaClock(None, None)


@pytest.mark.parametrize("first, resolve, complaint", [
    ("abc", "", "whole number"), ("0", "", "from 1"), ("", "-5", "from 1"),
    ("", "99999999", "from 1"),
])
def test_sla_target_refuses_bad_minutes(db, people, first, resolve, complaint):
    with pytest.raises(tickets.TicketError, match=complaint):
        tickets.set_sla_target(db, "order", first, resolve, people[0].id)
    with pytest.raises(tickets.TicketError, match="unknown ticket kind"):
        tickets.set_sla_target(db, "nonsense", "5", "5", people[0].id)


def test_sla_target_saved_once_is_audited_once(db, people):
    for _ in range(2):
        tickets.set_sla_target(db, "order", "15", "", people[0].id)
    db.commit()
    assert tickets.sla_targets(db)["order"].resolution_minutes is None
    assert len(_audits(db, "sla.set")) == 1


def test_canned_responses_saved_changed_and_deleted_with_audit(db, people):
    ani = people[0]
    row = tickets.save_canned(db, None, " Salam ", "Halo kak,\r\nada yang bisa dibantu?", ani.id)
    tickets.save_canned(db, row.id, "Salam", "Halo kak!", ani.id)
    db.commit()
    assert [(c.title, c.body) for c in tickets.canned_responses(db)] == [("Salam", "Halo kak!")]
    for title, body, complaint in (("", "x", "both"), ("x", " ", "both"),
                                   ("x" * 101, "x", "at most 100"),
                                   ("x", "x" * 1531, "at most 1530")):
        with pytest.raises(tickets.TicketError, match=complaint):
            tickets.save_canned(db, None, title, body, ani.id)
    tickets.delete_canned(db, row.id, ani.id)
    db.commit()
    assert db.scalar(select(func.count()).select_from(CannedResponse)) == 0
    assert [a.action for a in db.scalars(select(AuditLog).where(
        AuditLog.target_type == "canned_response").order_by(AuditLog.id))] == [
        "canned.save", "canned.save", "canned.delete"]


def test_queue_order_puts_waiting_customers_and_urgent_tickets_first(db):
    now = utcnow()
    hours = dt.timedelta(hours=1)
    rows = [Ticket(id=1, priority="urgent", created_at=now - 9 * hours),  # answered
            Ticket(id=2, priority="normal", created_at=now, waiting_since=now - 3 * hours),
            Ticket(id=3, priority="normal", created_at=now, waiting_since=now - hours / 12),
            Ticket(id=4, priority="urgent", created_at=now, waiting_since=now - hours / 60),
            Ticket(id=5, priority="low", created_at=now - 9 * hours, waiting_since=now),
            Ticket(id=6, priority="normal", created_at=now - 9 * hours)]  # answered
    for row in rows:
        row.queue_order()
    order = sorted(rows, key=lambda t: (t.queue_rank, t.queue_since, t.id))
    assert [t.id for t in order] == [4, 2, 3, 5, 1, 6]
