"""The outbox is the messages table: rows go queued -> sending -> sent | failed.

These functions run inside a DBPool transaction (or a Flask request's session) and
return plain data. The dispatcher that drives them lives in gateway/outbox.py.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from gateway.db.models import Message, MessagePart, Ticket, utcnow

MAX_TEXT = 1530  # 10 GSM-7 parts of 153 characters; longer texts are refused up front


class OutboxError(ValueError):
    """A text that cannot be queued, with a sentence for the person who wrote it."""


@dataclass(frozen=True)
class Outgoing:
    id: int
    number: str
    text: str
    modem: str | None  # preferred modem (the one the customer wrote to), or None


def queue_message(session, number: str, text: str, *, ticket_id=None, user_id=None,
                  contact_id=None, modem=None) -> Message:
    """Add a text to the outbox; the dispatcher picks it up within a poll."""
    if not text or not text.strip():
        raise OutboxError("the text is empty")
    if len(text) > MAX_TEXT:
        raise OutboxError(f"the text is {len(text)} characters; at most {MAX_TEXT} fit in one SMS "
                          "conversation")
    message = Message(direction="out", number=number, text=text, status="queued",
                      ticket_id=ticket_id, user_id=user_id, contact_id=contact_id, modem=modem,
                      created_at=utcnow())
    session.add(message)
    if ticket_id is not None and user_id is not None:
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None and ticket.first_response_at is None:
            ticket.first_response_at = message.created_at
    session.flush()
    return message


def claim(session, node: str, now: dt.datetime, limit: int = 20) -> list[Outgoing]:
    """Mark up to `limit` due rows `sending` for this node and return them.

    FOR UPDATE SKIP LOCKED lets several gateway hosts share one MariaDB without sending a
    row twice; SQLite ignores it and has only one writer anyway.
    """
    rows = session.scalars(
        select(Message)
        .where(Message.direction == "out", Message.status == "queued",
               or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now))
        .order_by(Message.id).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.status = "sending"
        row.claimed_by = node
        row.attempts += 1
    return [Outgoing(r.id, r.number, r.text, r.modem) for r in rows]


def release(session, message_id: int, reason: str) -> None:
    """Give a claimed text back untried (no modem could take it): no attempt is spent."""
    message = session.get(Message, message_id)
    message.status, message.claimed_by = "queued", None
    message.attempts = max(0, message.attempts - 1)
    message.last_error = reason[:255]


def mark_sent(session, message_id: int, modem: str, references: list[int], now) -> None:
    message = session.get(Message, message_id)
    message.status = "sent"
    message.modem = modem
    message.sent_at = now
    message.last_error = None
    for number, reference in enumerate(references, 1):
        session.add(MessagePart(message_id=message_id, modem=modem, part_number=number,
                                part_count=len(references), reference=reference,
                                payload=b"", received_at=now))


def mark_retry(session, message_id: int, error: str, now, max_attempts: int) -> str:
    """A failure that may pass: queue again with backoff, or fail after the last attempt."""
    message = session.get(Message, message_id)
    message.last_error = error[:255]
    if message.attempts >= max_attempts:
        message.status = "failed"
    else:
        message.status = "queued"
        message.next_attempt_at = now + backoff(message.attempts)
    return message.status


def mark_failed(session, message_id: int, error: str, status: str = "failed",
                modem: str | None = None) -> None:
    """A failure that will not pass (or, with status='unknown', one we cannot judge)."""
    message = session.get(Message, message_id)
    message.status = status
    message.last_error = error[:255]
    if modem:
        message.modem = modem


def backoff(attempt: int) -> dt.timedelta:
    """10 s, 20 s, 40 s ... capped at 10 minutes."""
    return dt.timedelta(seconds=min(600, 10 * 2 ** max(0, attempt - 1)))


def mark_unknown_after_restart(session, node: str) -> int:
    """Rows this node left `sending` when it died: the modem may or may not have sent them.

    They become `unknown` and are never resent unless an operator says so.
    """
    result = session.execute(
        update(Message)
        .where(Message.direction == "out", Message.status == "sending",
               Message.claimed_by == node)
        .values(status="unknown",
                last_error="the gateway stopped while sending; it may or may not have left"))
    return result.rowcount
