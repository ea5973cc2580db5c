"""Telephone calls on the contact's timeline: the database side of FastAGI and AMI.

Every function here runs inside one transaction of the daemon's Database (or the stdio
AGI script's), or for `lookup_caller` on a reader connection, and returns plain data. The
FastAGI protocol (gateway/voice/fastagi.py), the stdio script (gateway/voice/stdio_agi.py)
and click-to-call (gateway/voice/ami.py) are thin layers around them.

What a caller gets, case by case (tests/voice/test_agi.py holds each one):

- known number, open ticket: that ticket; the operator is the ticket's assignee, or else
  the contact's owner.
- known number, no open ticket, or an unknown number: a new `call` ticket (assigned to
  the contact's owner, if any); an unknown number also gets a new contact.
- withheld number (Asterisk's `unknown`, `anonymous`, empty, or anything that is not a
  phone number): a call row with number `anonymous`, no contact, no ticket, no SMS.
- a number in any Indonesian form (0812..., 62812..., +62 812..., 0062812..., 812...):
  normalised to E.164 before the lookup.
- two contacts for one caller (legacy rows stored as 0812... or 62812... beside the
  E.164 row: phone is unique only as written): the contact with the newest open ticket
  wins; without open tickets the E.164 row wins, and among legacy rows the oldest.

An incoming call is answered in two steps, so that a caller never waits behind a write:
`lookup_caller` reads (one statement, on a connection of its own) what the dialplan is
told, and `incoming_call` files the call row, contact and ticket right after the answer
(and again, idempotently, from the hangup handler if that write was lost). The answer
therefore names the open ticket and the known contact, not what the filing makes.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import phonenumbers
from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import aliased

from gateway.db.models import OPEN_TICKET_STATUSES, Call, Contact, Ticket, TicketEvent, User
from gateway.desk import replies
from gateway.desk.contacts import contact_for, open_ticket_for
from gateway.desk.outbox import queue_message
from gateway.sms.phone import is_reachable, normalise

WITHHELD = "anonymous"
# A caller who rings five times in a row out of hours gets one text, not five.
MISSED_SMS_QUIET = dt.timedelta(minutes=30)


class CallFailed(Exception):
    """A call could not be placed; the message is a sentence for the operator."""


@dataclass(frozen=True)
class CallerInfo:
    """What the dialplan is told about an incoming call (plain data, leaves the session).

    From `lookup_caller` (before anything is written) call_id is None, and contact_id and
    ticket_number are None where the filing will make them (a new caller, no open ticket).
    """
    call_id: int | None
    number: str  # E.164, or 'anonymous'
    contact_id: int | None
    name: str | None
    ticket_number: str | None
    operator: str | None  # user name of the operator to ring first
    operator_dial: str | None  # Dial() string of their softphone, e.g. PJSIP/101
    new: bool  # first contact ever (or withheld: we cannot know)


@dataclass(frozen=True)
class CallEnd:
    call_id: int | None
    disposition: str | None
    sms_id: int | None  # the missed-call text queued, if one was


@dataclass(frozen=True)
class Originate:
    """Everything click-to-call needs to ask Asterisk for the call."""
    call_id: int
    uniqueid: str
    number: str
    operator_dial: str
    caller_id: str


def dial_string(extension: str | None) -> str | None:
    """A user's softphone as Dial() wants it: '101' -> 'PJSIP/101'; 'SIP/7' stays."""
    if not extension:
        return None
    return extension if "/" in extension else f"PJSIP/{extension}"


def extension_of(channel: str | None) -> str | None:
    """'PJSIP/101-0000002a' or 'PJSIP/101' -> '101': the endpoint behind a channel."""
    if not channel:
        return None
    _tech, sep, rest = channel.partition("/")
    if not sep:
        rest = channel
    rest = rest.split("@", 1)[0]
    if "-" in rest:
        head, _, tail = rest.rpartition("-")
        if tail and all(c in "0123456789abcdef" for c in tail.lower()):
            rest = head
    return rest or None


def number_forms(e164: str) -> list[str]:
    """The ways one number may be stored in legacy rows: E.164 first."""
    forms = [e164]
    try:
        parsed = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return forms
    national = str(parsed.national_number)
    forms += [f"{parsed.country_code}{national}", f"0{national}", national,
              f"00{parsed.country_code}{national}"]
    return forms


def _find_contact_row(session, e164: str):
    """(id, phone, name, owner_id) of the caller's contact, or None (Core: no ORM objects
    on the hot path; see the module docstring for two contacts)."""
    rows = session.execute(
        select(Contact.id, Contact.phone, Contact.name, Contact.owner_id)
        .where(Contact.phone.in_(number_forms(e164)))).all()
    if len(rows) <= 1:
        return rows[0] if rows else None
    newest_open = session.scalar(
        select(Ticket.contact_id).where(Ticket.contact_id.in_([r.id for r in rows]),
                                        Ticket.status.in_(OPEN_TICKET_STATUSES))
        .order_by(Ticket.id.desc()).limit(1))
    if newest_open is not None:
        return next(row for row in rows if row.id == newest_open)
    return min(rows, key=lambda row: (row.phone != e164, row.id))


def find_contact(session, e164: str) -> Contact | None:
    """The contact for a normalised number (see the module docstring for two contacts)."""
    row = _find_contact_row(session, e164)
    return session.get(Contact, row.id) if row is not None else None


def _operator(session, ticket: Ticket | None, contact: Contact | None) -> User | None:
    for user_id in (ticket.assignee_id if ticket else None,
                    contact.owner_id if contact else None):
        if user_id is not None:
            user = session.get(User, user_id)
            if user is not None and user.active:
                return user
    return None


def _operator_row(session, *user_ids):
    for user_id in user_ids:
        if user_id is not None:
            row = session.execute(select(User.name, User.extension)
                                  .where(User.id == user_id, User.active.is_(True))).first()
            if row is not None:
                return row
    return None


# The caller lookup as one statement, built once (SQLAlchemy caches its compiled form;
# SQLite and MySQL see the same SQL text every time): each contact stored under one of
# the number's five forms, its newest open ticket, and the ticket's assignee and the
# contact's owner where they are active users.
NUMBER_FORMS = 5
_assignee, _owner, _open = aliased(User), aliased(User), aliased(Ticket)
_newest_open = (select(func.max(_open.id))
                .where(_open.contact_id == Contact.id, _open.status.in_(OPEN_TICKET_STATUSES))
                .correlate(Contact).scalar_subquery())
CALLER_LOOKUP = (
    select(Contact.id, Contact.phone, Contact.name, Ticket.id.label("ticket_id"),
           _assignee.name.label("assignee"), _assignee.extension.label("assignee_extension"),
           _owner.name.label("owner"), _owner.extension.label("owner_extension"))
    .select_from(Contact)
    .outerjoin(Ticket, Ticket.id == _newest_open)
    .outerjoin(_assignee, (_assignee.id == Ticket.assignee_id) & _assignee.active.is_(True))
    .outerjoin(_owner, (_owner.id == Contact.owner_id) & _owner.active.is_(True))
    .where(Contact.phone.in_([bindparam(f"form{i}") for i in range(NUMBER_FORMS)])))


def lookup_caller(connection, raw_number: str | None, region: str) -> CallerInfo:
    """What the dialplan is told about a caller, read in one statement and written nowhere.

    `connection`: a Connection or Session. The same rules as `incoming_call`, which files
    the call afterwards: the operator is the open ticket's assignee, else the contact's
    owner; among two contacts for one number the one with the newest open ticket wins.
    """
    number = normalise(raw_number or "", region)
    if number is None:
        return CallerInfo(None, WITHHELD, None, None, None, None, None, True)
    forms = number_forms(number)
    forms += [forms[0]] * (NUMBER_FORMS - len(forms))
    rows = connection.execute(CALLER_LOOKUP,
                              {f"form{i}": form for i, form in enumerate(forms)}).all()
    if not rows:
        return CallerInfo(None, number, None, None, None, None, None, True)
    with_open = [r for r in rows if r.ticket_id is not None]
    row = (max(with_open, key=lambda r: r.ticket_id) if with_open
           else min(rows, key=lambda r: (r.phone != number, r.id)))
    if row.assignee is not None:
        operator, extension = row.assignee, row.assignee_extension
    else:
        operator, extension = row.owner, row.owner_extension
    return CallerInfo(None, number, row.id, row.name,
                      str(row.ticket_id) if row.ticket_id is not None else None,
                      operator, dial_string(extension) if operator else None, False)


def incoming_call(session, uniqueid: str, raw_number: str | None, region: str,
                  now: dt.datetime) -> CallerInfo:
    """Look the caller up, file the call on their ticket (or a new one) and say who to ring.

    Idempotent per Asterisk uniqueid: a second lookup of the same channel returns the
    first answer. Written in Core SQL, a handful of indexed statements, because callers
    hear every millisecond of it.
    """
    if uniqueid:
        call = session.scalar(select(Call).where(Call.uniqueid == uniqueid))
        if call is not None:
            return _caller_info(session, call, new=False)
    number = normalise(raw_number or "", region)
    if number is None:
        call_id = session.execute(insert(Call).values(
            uniqueid=uniqueid or None, number=WITHHELD, direction="in",
            started_at=now)).inserted_primary_key[0]
        return CallerInfo(call_id, WITHHELD, None, None, None, None, None, True)

    row = _find_contact_row(session, number)
    new = row is None
    if new:
        contact = contact_for(session, number)
        contact_id, name, owner_id = contact.id, contact.name, contact.owner_id
    else:
        contact_id, name, owner_id = row.id, row.name, row.owner_id
    ticket = session.execute(
        select(Ticket.id, Ticket.assignee_id)
        .where(Ticket.contact_id == contact_id, Ticket.status.in_(OPEN_TICKET_STATUSES))
        .order_by(Ticket.id.desc()).limit(1)).first()
    if ticket is not None:
        ticket_id, assignee_id = ticket.id, ticket.assignee_id
    else:
        assignee_id = owner_id
        ticket_id = session.execute(insert(Ticket).values(
            kind="call", status="new", contact_id=contact_id, assignee_id=owner_id,
            subject=f"Panggilan telepon dari {name or number}"[:200],
            created_at=now, updated_at=now, queue_since=now)).inserted_primary_key[0]
        session.execute(insert(TicketEvent).values(ticket_id=ticket_id, kind="created",
                                                   created_at=now, detail="telephone call"))
    call_id = session.execute(insert(Call).values(
        uniqueid=uniqueid or None, number=number, direction="in", contact_id=contact_id,
        ticket_id=ticket_id, started_at=now)).inserted_primary_key[0]
    session.execute(insert(TicketEvent).values(ticket_id=ticket_id, kind="call_in",
                                               created_at=now,
                                               detail=f"call {call_id} from {number}"))
    operator = _operator_row(session, assignee_id, owner_id)
    return CallerInfo(call_id, number, contact_id, name, str(ticket_id),
                      operator.name if operator else None,
                      dial_string(operator.extension) if operator else None, new)


def _caller_info(session, call: Call, new: bool) -> CallerInfo:
    contact = session.get(Contact, call.contact_id) if call.contact_id else None
    ticket = session.get(Ticket, call.ticket_id) if call.ticket_id else None
    operator = _operator(session, ticket, contact)
    return CallerInfo(call.id, call.number, call.contact_id, contact.name if contact else None,
                      ticket.number if ticket else None,
                      operator.name if operator else None,
                      dial_string(operator.extension) if operator else None, new)


def _user_by_extension(session, extension: str | None) -> User | None:
    if not extension:
        return None
    return session.scalar(
        select(User).where(User.extension.in_([extension, f"PJSIP/{extension}"]))
        .order_by(User.id).limit(1))


def call_answered(session, uniqueid: str, operator_channel: str | None,
                  now: dt.datetime) -> str | None:
    """An operator picked up: answer time and operator on the call; returns their name."""
    call = session.scalar(select(Call).where(Call.uniqueid == uniqueid))
    if call is None:
        return None
    if call.answered_at is None:
        call.answered_at = now
    if call.operator_id is None:
        user = _user_by_extension(session, extension_of(operator_channel))
        if user is not None:
            call.operator_id = user.id
    user = session.get(User, call.operator_id) if call.operator_id else None
    if call.ticket_id is not None:
        ticket = session.get(Ticket, call.ticket_id)
        if ticket.assignee_id is None and user is not None:
            ticket.assignee_id = user.id
        if ticket.status == "new":
            ticket.status = "open"
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        session.add(TicketEvent(ticket_id=ticket.id, kind="call_answered", created_at=now,
                                user_id=user.id if user else None,
                                detail=f"call {call.id} answered"
                                + (f" by {user.name}" if user else "")))
    return user.name if user else None


def call_ended(session, uniqueid: str, raw_number: str | None, hours: str | None,
               queue_status: str | None, dial_status: str | None, cause: str | None,
               region: str, language: str, now: dt.datetime) -> CallEnd:
    """Close the call row; a missed or out-of-hours caller gets one SMS and the ticket says so.

    Runs from the dialplan's hangup handler. Without a row (the lookup failed or never
    ran) the call is filed now, so no call is lost from the timeline.
    """
    call = session.scalar(select(Call).where(Call.uniqueid == uniqueid)) if uniqueid else None
    if call is None:
        if not uniqueid:
            return CallEnd(None, None, None)
        incoming_call(session, uniqueid, raw_number, region, now)
        call = session.scalar(select(Call).where(Call.uniqueid == uniqueid))
    if call.ended_at is not None:  # reported twice: keep the first
        return CallEnd(call.id, call.disposition, None)
    call.ended_at = now
    detail = ", ".join(f"{k} {v}" for k, v in (("queue", queue_status), ("dial", dial_status),
                                                ("cause", cause)) if v)
    if call.answered_at is not None:
        call.disposition = "answered"
    elif call.direction == "out":
        call.disposition = {"BUSY": "busy", "CHANUNAVAIL": "failed",
                            "CONGESTION": "failed"}.get(dial_status or "", "no_answer")
    elif (hours or "").lower() == "closed":
        call.disposition = "out_of_hours"
    else:
        call.disposition = "missed"
    sms_id = None
    if call.ticket_id is not None:
        ticket = session.get(Ticket, call.ticket_id)
        ticket.updated_at = now
        event = TicketEvent(ticket_id=ticket.id, kind="call_end", created_at=now,
                            detail=f"call {call.id} {call.disposition}"
                            + (f" ({detail})" if detail else ""))
        if call.disposition in ("missed", "out_of_hours"):
            event.kind = "call_missed"
            sms_id = _missed_call_sms(session, call, ticket, language, now)
            event.message_id = sms_id
            event.detail += ("; SMS sent: we will call back" if sms_id
                             else "; no SMS (one was sent recently)")
        session.add(event)
    return CallEnd(call.id, call.disposition, sms_id)


def _missed_call_sms(session, call: Call, ticket: Ticket, language: str,
                     now: dt.datetime) -> int | None:
    if not is_reachable(call.number):
        return None
    recent = session.scalar(
        select(TicketEvent.id).where(TicketEvent.ticket_id == ticket.id,
                                     TicketEvent.kind == "call_missed",
                                     TicketEvent.message_id.is_not(None),
                                     TicketEvent.created_at > now - MISSED_SMS_QUIET).limit(1))
    if recent is not None:
        return None
    contact = session.get(Contact, call.contact_id)
    template = "missed_call_closed" if call.disposition == "out_of_hours" else "missed_call"
    text = replies.render(template, (contact.language if contact else None) or language,
                          session, ticket_number=ticket.number)
    return queue_message(session, call.number, text, ticket_id=ticket.id,
                         contact_id=call.contact_id).id


def click_to_call(session, user_id: int, raw_number: str, region: str, uniqueid: str,
                  now: dt.datetime) -> Originate:
    """File an operator's outgoing call and say what to originate; ValueError if impossible."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise ValueError("that user does not exist or is disabled")
    operator_dial = dial_string(user.extension)
    if operator_dial is None:
        raise ValueError(f"user {user.name!r} has no softphone extension; set one first")
    number = normalise(raw_number, region)
    if number is None:
        raise ValueError(f"{raw_number!r} is not a phone number")
    contact = find_contact(session, number) or contact_for(session, number)
    ticket = open_ticket_for(session, contact.id)
    call = Call(uniqueid=uniqueid, number=number, direction="out", contact_id=contact.id,
                ticket_id=ticket.id if ticket else None, operator_id=user.id, started_at=now)
    session.add(call)
    session.flush()
    if ticket is not None:
        session.add(TicketEvent(ticket_id=ticket.id, kind="call_out", user_id=user.id,
                                created_at=now, detail=f"call {call.id} to {number}"))
    name = (contact.name or number).replace('"', "'")
    return Originate(call.id, uniqueid, number, operator_dial, f'"{name}" <{number}>')


def originate_failed(session, call_id: int, reason: str, now: dt.datetime) -> None:
    """The operator's softphone did not take the call: close the row."""
    call = session.get(Call, call_id)
    if call is None or call.ended_at is not None:
        return
    call.ended_at = now
    call.disposition = reason[:32]
