"""Who wrote: a contact per normalised number, and the ticket still open for them.

Inside a batch (gateway.db.transaction.batch) the lookups come from tables `prefetch`
filled for all the batch's senders at once.
"""
from __future__ import annotations

from sqlalchemy import select

from gateway.db.models import OPEN_TICKET_STATUSES, Contact, Ticket, utcnow
from gateway.db.transaction import batch_map
from gateway.desk import orders


def contact_for(session, phone: str, write: bool = True) -> Contact:
    """The contact with this normalised number, created on first contact; with
    write=False a new one is written later, with the text that brought it."""
    known = batch_map(session, "contacts")
    if known is not None and phone in known:
        contact = known[phone]
    else:
        contact = session.scalar(select(Contact).where(Contact.phone == phone))
    if contact is None:
        contact = Contact(phone=phone, created_at=utcnow())
        session.add(contact)
        if write:
            session.flush()
    if known is not None:
        known[phone] = contact
    return contact


def open_ticket_for(session, contact_id: int | None, phone: str | None = None) -> Ticket | None:
    """The contact's newest open ticket; within a batch by `phone`, so that a ticket
    opened earlier in the batch, not yet written, is found."""
    known = batch_map(session, "open_tickets")
    if known is not None and phone in known:
        return known[phone]
    if contact_id is None:
        return None  # a contact not yet written has no tickets
    return session.scalar(
        select(Ticket).where(Ticket.contact_id == contact_id,
                             Ticket.status.in_(OPEN_TICKET_STATUSES))
        .order_by(Ticket.id.desc()).limit(1))


def prefetch(session, phones: set[str]) -> None:
    """Fill a batch's lookup tables for these senders with three queries in all, instead
    of three per text: their contacts, open tickets and open orders."""
    contacts = {phone: None for phone in phones}
    contacts.update({c.phone: c for c in session.scalars(
        select(Contact).where(Contact.phone.in_(phones)))})
    ids = {c.id: phone for phone, c in contacts.items() if c is not None}
    open_tickets = dict.fromkeys(phones)
    for ticket in session.scalars(select(Ticket).where(
            Ticket.contact_id.in_(ids), Ticket.status.in_(OPEN_TICKET_STATUSES))
            .order_by(Ticket.id)):
        open_tickets[ids[ticket.contact_id]] = ticket  # the newest wins
    cache = session.info["batch"]
    cache["contacts"], cache["open_tickets"] = contacts, open_tickets
    cache["open_orders"] = orders.prefetch_open_orders(session, list(ids))
