"""Contacts and tickets: what a whole inbound text does to the helpdesk.

Runs inside the transaction that stores the text (rule 2 of the design), so a text and
everything it causes are committed together or not at all.
"""
from __future__ import annotations

from sqlalchemy import select

from gateway import replies
from gateway.db.models import (OPEN_TICKET_STATUSES, Contact, Message, Ticket, TicketEvent,
                               utcnow)
from gateway.outbox_store import queue_message
from gateway.phone import is_reachable


def contact_for(session, phone: str) -> Contact:
    """The contact with this normalised number, created on first contact."""
    contact = session.scalar(select(Contact).where(Contact.phone == phone))
    if contact is None:
        contact = Contact(phone=phone, created_at=utcnow())
        session.add(contact)
        session.flush()
    return contact


def open_ticket_for(session, contact_id: int) -> Ticket | None:
    return session.scalar(
        select(Ticket).where(Ticket.contact_id == contact_id,
                             Ticket.status.in_(OPEN_TICKET_STATUSES))
        .order_by(Ticket.id.desc()).limit(1))


def receive(session, message: Message, language: str) -> None:
    """File an inbound text: on the sender's open ticket, or on a new one with an ack."""
    contact = contact_for(session, message.number)
    message.contact_id = contact.id
    ticket = open_ticket_for(session, contact.id)
    if ticket is not None:
        message.intent = "reply"
        message.ticket_id = ticket.id
        if ticket.status == "pending":  # waiting on the customer, who has now answered
            ticket.status = "open"
        ticket.updated_at = utcnow()
        session.flush()
        session.add(TicketEvent(ticket_id=ticket.id, kind="message_in", message_id=message.id))
        return

    message.intent = "other"
    ticket = Ticket(kind="question", status="new", contact_id=contact.id,
                    subject=" ".join(message.text.split())[:200], created_at=utcnow())
    session.add(ticket)
    session.flush()
    message.ticket_id = ticket.id
    session.add(TicketEvent(ticket_id=ticket.id, kind="created", message_id=message.id))
    # An alphanumeric sender or a short code cannot receive an answer.
    if is_reachable(message.number):
        ack = replies.render("ack_new_ticket", contact.language or language, session,
                             ticket_number=ticket.number)
        queue_message(session, message.number, ack, ticket_id=ticket.id,
                      contact_id=contact.id, modem=message.modem)
