"""Rows as the plain dicts of the public JSON API (the README lists its fields)."""
from __future__ import annotations

import datetime as dt

from gateway.db.models import Call, Contact, Message, Order, Payment, Ticket


def iso(value: dt.datetime | None) -> str | None:
    """Naive UTC from the database -> '2026-11-23T09:00:00+00:00'; None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.isoformat()


def message_dict(m: Message) -> dict:
    return {
        "id": m.id,
        "direction": m.direction,
        "number": m.number,
        "text": m.text,
        "status": m.status,
        "intent": m.intent,
        "incomplete": bool(m.incomplete),
        "ticket_id": m.ticket_id,
        "contact_id": m.contact_id,
        "modem": m.modem,
        "created_at": iso(m.created_at),
    }


def contact_dict(c: Contact) -> dict:
    return {"id": c.id, "phone": c.phone, "name": c.name, "opted_out": bool(c.opted_out)}


def contact_detail_dict(c: Contact, timeline) -> dict:
    """One contact with its CRM fields and a page of its timeline (gateway.desk.crm)."""
    return {
        **contact_dict(c),
        "organisation": c.organisation,
        "type": c.type,
        "tags": [t.name for t in c.tags],
        "notes": c.notes,
        "blocked": bool(c.blocked),
        "language": c.language,
        "created_at": iso(c.created_at),
        "timeline": [timeline_entry_dict(e) for e in timeline.entries],
        "timeline_next": timeline.next,
    }


def timeline_entry_dict(e) -> dict:
    """{"type", "id", "at"} and what the kind adds: a text's direction and text, a
    ticket's number and status, an order's total, a payment's amount."""
    r = e.row
    entry = {"type": e.type, "id": e.id, "at": iso(e.at)}
    if e.type == "message":
        entry.update(direction=r.direction, text=r.text, status=r.status, intent=r.intent,
                     ticket_id=r.ticket_id)
    elif e.type == "call":
        entry.update(direction=r.direction, answered_at=iso(r.answered_at),
                     ended_at=iso(r.ended_at), disposition=r.disposition,
                     ticket_id=r.ticket_id)
    elif e.type == "ticket":
        entry.update(number=r.number, kind=r.kind, status=r.status, subject=r.subject)
    elif e.type == "order":
        entry.update(number=r.number, total=r.total, status=r.status)
    elif e.type == "payment":
        entry.update(amount=r.amount, bank=r.bank, status=r.status, order_id=r.order_id)
    return entry


def ticket_dict(t: Ticket) -> dict:
    return {
        "id": t.id,
        "number": t.number,
        "kind": t.kind,
        "status": t.status,
        "subject": t.subject,
        "contact": {"id": t.contact.id, "phone": t.contact.phone, "name": t.contact.name},
        "assignee": t.assignee.name if t.assignee is not None else None,
        "created_at": iso(t.created_at),
        "first_response_at": iso(t.first_response_at),
        "priority": t.priority,
        # since when the customer waits for a person's answer; null when nobody waits
        "waiting_since": iso(t.waiting_since),
    }


def order_dict(o: Order) -> dict:
    return {
        "id": o.id,
        "number": o.number,
        "contact_id": o.contact_id,
        "items": [{"code": i.code, "quantity": i.quantity, "unit_price": i.unit_price}
                  for i in o.items],
        "total": o.total,
        "status": o.status,
        "created_at": iso(o.created_at),
    }


def payment_dict(p: Payment) -> dict:
    return {
        "id": p.id,
        "contact_id": p.contact_id,
        "order_id": p.order_id,
        "amount": p.amount,
        "bank": p.bank,
        "payer_name": p.payer_name,
        "status": p.status,
        "created_at": iso(p.created_at),
    }


def call_dict(c: Call) -> dict:
    return {
        "id": c.id,
        "number": c.number,
        "contact_id": c.contact_id,
        "ticket_id": c.ticket_id,
        "started_at": iso(c.started_at),
        "answered_at": iso(c.answered_at),
        "ended_at": iso(c.ended_at),
        "operator": c.operator.name if c.operator is not None else None,
        "disposition": c.disposition,
    }
