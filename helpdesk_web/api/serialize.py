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
