"""Storing what a modem read, in one transaction, before anything is deleted from the SIM.

Every part gets a dedupe key, so a part read again after a crash or a failed delete is
recognised and only deleted. Parts of a multipart text wait in message_parts until the
last one arrives or their timeout passes; then they become one message.

A text that cannot be read or filed (a reader error, a template that raises, a
constraint that fails) is kept by `quarantine` as it came, with no contact, ticket or
reply, and `Message.attention` saying why, so a person looks and the texts behind it go
on. The daemon's inbox component decides when to call it (gateway.daemon.database).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from gateway.db.models import Message, MessagePart, StatusReport, utcnow
from gateway.db.transaction import batch
from gateway.desk import contacts, intake
from gateway.sms.parts import RawPart
from gateway.sms.phone import normalise

log = logging.getLogger(__name__)

GAP = " [...] "  # stands for the parts that never came


@dataclass(frozen=True)
class StoreResult:
    deletable: list[int]  # SIM locations whose content is now safe in the database
    messages: list[int]   # ids of the whole messages this batch completed


def store_batch(session, modem: str, parts: list[RawPart], config,
                now: dt.datetime | None = None) -> StoreResult:
    """Store parts read from `modem`; file every text they complete (`config` gives the
    region for numbers, the reply language and the order settings)."""
    with batch(session):
        return _store_batch(session, modem, parts, config, now or utcnow())


def _store_batch(session, modem, parts, config, now) -> StoreResult:
    keys = {p.dedupe_key: p for p in parts}
    known = set(session.scalars(select(MessagePart.dedupe_key)
                                .where(MessagePart.dedupe_key.in_(list(keys)))))
    completed, groups, completed_ids = [], [], []
    contacts.prefetch(session, {normalise(p.sender, config.country) or _no_nul(p.sender)
                               for k, p in keys.items() if k not in known})
    intake.defer_replies(session)
    for key, part in keys.items():
        if key in known:
            continue  # stored before a crash or a failed delete: only delete it again
        if part.unreadable:
            completed_ids.extend(quarantine(session, modem, part.unreadable, now,
                                            [part]).messages)
            continue
        if part.status_report:
            _store_report(session, modem, part, key, config.country, now)
            continue
        stored = MessagePart(dedupe_key=key, modem=modem, sender=_no_nul(part.sender),
                             part_number=part.part_number, part_count=part.part_count,
                             payload=part.text.encode("utf-16-be", "surrogatepass"),
                             coding=part.coding, smsc_time=part.smsc_time, received_at=now)
        if part.multipart:
            stored.group_key = _group_key(modem, part)
            session.add(stored)
            if stored.group_key not in groups:
                groups.append(stored.group_key)
        else:
            completed.append(_file(session, modem, [stored], 1, config, now))
    session.flush()
    for group in groups:
        waiting = _waiting_parts(session, group)
        count = waiting[0].part_count
        if len({p.part_number for p in waiting}) >= count:
            completed.append(_file(session, modem, waiting, count, config, now))
    session.flush()  # the batch's rows in a few statements: every new ticket has its number
    intake.send_replies(session)
    session.flush()
    return StoreResult(deletable=[p.location for p in parts],
                       messages=completed_ids + [message.id for message in completed])


def finish_expired(session, config, now: dt.datetime | None = None,
                   groups: list[str] | None = None) -> list[int]:
    """File multipart texts whose missing parts did not come in time, marked incomplete
    (only those of `groups` when given)."""
    now = now or utcnow()
    filed = []
    for group, modem in expired_groups(session, config, now):
        if groups is None or group in groups:
            waiting = _waiting_parts(session, group)
            filed.append(_file(session, modem, waiting, waiting[0].part_count, config, now))
    session.flush()
    return [message.id for message in filed]


def expired_groups(session, config, now) -> list[tuple[str, str]]:
    """(group key, modem) of the multipart texts whose timeout has passed."""
    cutoff = now - dt.timedelta(seconds=config.multipart_timeout)
    return [tuple(row) for row in session.execute(
        select(MessagePart.group_key, MessagePart.modem)
        .where(MessagePart.message_id.is_(None), MessagePart.group_key.is_not(None))
        .group_by(MessagePart.group_key, MessagePart.modem)
        .having(func.min(MessagePart.received_at) <= cutoff))]


def quarantine(session, modem: str, reason: str, now: dt.datetime,
               parts: list[RawPart] = (), group: str | None = None) -> StoreResult:
    """Keep `parts` (and the waiting parts of their multipart text, or of `group`) as one
    text as it came, marked for a person: no contact, ticket or reply, nothing read from
    it. Every field is cut to fit its column, so this stores what filing could not."""
    new = [p for p in parts if not session.scalar(
        select(MessagePart.id).where(MessagePart.dedupe_key == p.dedupe_key))]
    rows = [MessagePart(dedupe_key=p.dedupe_key, modem=_fit(modem, 64),
                        sender=_fit(p.sender, 32), part_number=p.part_number,
                        part_count=p.part_count,
                        payload=p.text.encode("utf-16-be", "surrogatepass"),
                        coding=_fit(p.coding or "", 32), smsc_time=p.smsc_time,
                        received_at=now) for p in new]
    groups = {group} if group else {_group_key(modem, p) for p in new if p.multipart}
    for key in groups:
        rows.extend(_waiting_parts(session, key))
    if not rows:
        return StoreResult(deletable=[p.location for p in parts], messages=[])
    count = max(row.part_count or 1 for row in rows)
    text, missing = _joined(rows, count)
    first = new[0] if new else None
    sender = first.sender if first else rows[0].sender or ""
    if first is not None and first.status_report:
        text = f"(delivery report {first.report_reference}: {first.report_status})"
    message = Message(direction="in", number=_fit(sender, 32), text=_fit(text, 16_000),
                      status="received", incomplete=missing, modem=_fit(modem, 64),
                      smsc_time=rows[0].smsc_time, created_at=now,
                      attention=_fit(reason, 255) or "could not be filed")
    message.parts.extend(rows)
    session.add(message)
    session.flush()
    return StoreResult(deletable=[p.location for p in parts], messages=[message.id])


def _fit(value: str | None, length: int) -> str | None:
    """A string any column of `length` characters takes: no lone surrogates, no NUL."""
    if value is None:
        return None
    return _no_nul(value.encode("utf-8", "replace").decode("utf-8"))[:length]


def _no_nul(text: str) -> str:
    # PostgreSQL's text cannot hold U+0000; it becomes U+FFFD on every database alike,
    # and the part's payload keeps the bytes as they came.
    return text.replace("\x00", "\ufffd")


def _group_key(modem: str, part: RawPart) -> str:
    fields = [modem, part.sender, str(part.reference), str(part.part_count)]
    return hashlib.sha256("|".join(fields).encode()).hexdigest()


def _waiting_parts(session, group: str) -> list[MessagePart]:
    return list(session.scalars(
        select(MessagePart).where(MessagePart.group_key == group, MessagePart.message_id.is_(None))
        .order_by(MessagePart.part_number, MessagePart.id)))


def _joined(parts: list[MessagePart], count: int) -> tuple[str, bool]:
    """The text of parts 1..count, and whether some are missing (shown as GAP)."""
    by_number = {}
    for part in parts:
        by_number.setdefault(part.part_number, part)  # a repeated part number: first wins
    chunks, missing, gap_open = [], False, False
    for number in range(1, count + 1):
        if number in by_number:
            chunks.append(by_number[number].payload)
            gap_open = False
        else:
            missing = True
            if not gap_open:  # several missing parts in a row show as one gap
                chunks.append(GAP.encode("utf-16-be"))
            gap_open = True
    # Joined as UTF-16 so an emoji split between two parts becomes whole again; a half
    # that cannot be paired, or a NUL, becomes U+FFFD rather than making the text
    # unstorable.
    text = _no_nul(b"".join(chunks).decode("utf-16-be", "replace")).strip() or "(empty SMS)"
    return text, missing


def _file(session, modem, parts, count, config, now) -> Message:
    """Join parts into one inbound message and let the helpdesk act on it.

    Nothing is flushed here: the message, its parts, contact and ticket go to the
    database together, each row written once rather than written and then updated."""
    text, missing = _joined(parts, count)
    first = parts[0]
    number = normalise(first.sender, config.country) or first.sender
    message = Message(direction="in", number=number, text=text, status="received",
                      incomplete=missing, modem=modem, smsc_time=first.smsc_time,
                      created_at=now)
    message.parts.extend(parts)
    intake.receive(session, message, config)
    return message


REPORT_WINDOW = dt.timedelta(days=3)  # references repeat every 256 texts: only recent ones


def _store_report(session, modem, part, key, region, now):
    """Keep a delivery report and move the text it is about to delivered or failed.

    Matched by modem, message reference and number among recent texts; a report that
    matches nothing is kept for a person, never taken for a customer's text.
    """
    session.add(MessagePart(dedupe_key=key, modem=modem, sender=part.sender, payload=b"",
                            coding="status_report", smsc_time=part.smsc_time, received_at=now))
    number = normalise(part.sender, region) or part.sender
    report = StatusReport(modem=modem, reference=part.report_reference or 0, number=number,
                          status=part.report_status or "unknown", received_at=now)
    session.add(report)
    message = session.scalar(
        select(Message).join(MessagePart, MessagePart.message_id == Message.id)
        .where(MessagePart.modem == modem, MessagePart.reference == part.report_reference,
               Message.direction == "out", Message.number == number,
               Message.sent_at >= now - REPORT_WINDOW)
        .order_by(Message.sent_at.desc()).limit(1))
    if message is None:
        log.info("delivery report from %s (reference %s) matches no text", number,
                 part.report_reference)
        return
    report.message_id = message.id
    if report.status == "failed":
        message.status, message.last_error = "failed", "the network reported it undeliverable"
    elif report.status == "delivered":
        session.flush()
        delivered = session.scalar(select(func.count(func.distinct(StatusReport.reference)))
                                   .where(StatusReport.message_id == message.id,
                                          StatusReport.status == "delivered"))
        if delivered >= len(message.parts) and message.status == "sent":
            message.status, message.delivered_at = "delivered", now
