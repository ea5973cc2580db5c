"""Finding tickets and contacts from what an operator types: one function per list.

A phone number in any spelling finds its contact; `#123` or `123` a ticket number;
anything else a name or words of the texts. Each function returns a condition for the
list's own query, so filters, order and paging stay with the caller.
"""
from __future__ import annotations

from sqlalchemy import or_, select

from gateway.db.models import Contact, Message, Ticket
from gateway.sms.phone import normalise

MAX_ID = 2**31 - 1  # what an INTEGER id column holds on every database


def _number(q: str) -> int | None:
    digits = q.strip().lstrip("#")
    if digits.isascii() and digits.isdigit() and 0 < int(digits) <= MAX_ID:
        return int(digits)
    return None


def _contact_ids(q: str):
    return select(Contact.id).where(Contact.name.contains(q, autoescape=True))


def tickets_matching(q: str, country: str):
    """The condition on Ticket for the queue's search box."""
    phone = normalise(q, country)
    if phone:
        return Ticket.contact_id.in_(select(Contact.id).where(Contact.phone == phone))
    conditions = [
        Ticket.subject.contains(q, autoescape=True),
        Ticket.contact_id.in_(_contact_ids(q)),
        Ticket.id.in_(select(Message.ticket_id).where(Message.text.contains(q, autoescape=True))),
    ]
    number = _number(q)  # a ticket number, as the customer quotes it
    if number is not None:
        conditions.append(Ticket.id == number)
    return or_(*conditions)


def contacts_matching(q: str, country: str):
    """The condition on Contact for the contact list's search box."""
    phone = normalise(q, country)
    if phone:
        return Contact.phone == phone
    return Contact.id.in_(_contact_ids(q))
