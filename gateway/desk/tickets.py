"""Working a ticket: status, assignee, priority, internal notes, merging, the SLA clock,
and the canned responses and SLA targets an admin keeps.

Every change writes a timeline event (TicketEvent) and an audit row in the caller's
session; the caller commits. Errors are TicketError with a sentence for the operator.

Internal notes are TicketEvent rows of kind "note" (the text in `detail`): a note belongs
on the ticket's timeline with its author and time, like a status change, and keeping it
out of `messages` means no code path that sends texts can ever pick one up.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import select, update

from gateway.db.models import (
    TICKET_KINDS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    Call,
    CannedResponse,
    Message,
    Order,
    SlaTarget,
    Ticket,
    TicketEvent,
    User,
    utcnow,
)
from gateway.desk.users import audit

PRIORITIES = TICKET_PRIORITIES
CLOSED = ("resolved", "closed")
MAX_NOTE = 4000
MAX_TITLE = 100
MAX_CANNED = 1530  # what the outbox takes in one text (gateway.desk.outbox.MAX_TEXT)
MAX_MINUTES = 60 * 24 * 365  # a year; more is a typo, not a target


class TicketError(ValueError):
    """A change that cannot be made, with a sentence saying why."""


def _event(session, ticket: Ticket, kind: str, actor_id, detail=None) -> TicketEvent:
    event = TicketEvent(ticket_id=ticket.id, kind=kind, user_id=actor_id,
                        detail=None if detail is None else
                        detail if isinstance(detail, str) else json.dumps(detail,
                                                                          ensure_ascii=False),
                        created_at=utcnow())
    session.add(event)
    return event


def set_status(session, ticket: Ticket, status: str, actor_id) -> bool:
    """Move the ticket to `status`; False when it is there already."""
    if status not in TICKET_STATUSES:
        raise TicketError(f"unknown status {status!r}; choose one of "
                          f"{', '.join(TICKET_STATUSES)}")
    if ticket.merged_into_id is not None and status not in CLOSED:
        raise TicketError(f"ticket {ticket.id} was merged into ticket "
                          f"{ticket.merged_into_id}; work on that one")
    if status == ticket.status:
        return False
    old, ticket.status = ticket.status, status
    if status in CLOSED:
        ticket.closed_at = ticket.closed_at or utcnow()
        ticket.waiting_since = None  # a text that reopens it starts a new wait
    else:
        ticket.closed_at = None
    detail = {"from": old, "to": status}
    _event(session, ticket, "status", actor_id, detail)
    audit(session, actor_id, "ticket.status", "ticket", ticket.id, detail)
    return True


def assign(session, ticket: Ticket, assignee: User | None, actor_id) -> bool:
    """Give the ticket to `assignee` (None: to nobody); False when nothing changes."""
    if assignee is not None and not assignee.active:
        raise TicketError(f"the user {assignee.name!r} is disabled; choose another")
    if assignee is not None and assignee.role == "viewer":
        raise TicketError(f"the user {assignee.name!r} is a viewer and cannot answer tickets")
    new_id = assignee.id if assignee is not None else None
    if new_id == ticket.assignee_id:
        return False
    old = ticket.assignee.name if ticket.assignee is not None else None
    ticket.assignee_id = new_id
    ticket.assignee = assignee
    detail = {"from": old, "to": assignee.name if assignee is not None else None}
    _event(session, ticket, "assign", actor_id, detail)
    audit(session, actor_id, "ticket.assign", "ticket", ticket.id, detail)
    return True


def find_assignee(session, name_or_id) -> User:
    """The user a ticket can be given to, by name (str) or id (int)."""
    if isinstance(name_or_id, int):
        user = session.get(User, name_or_id)
    else:
        user = session.scalar(select(User).where(User.name == str(name_or_id).strip()))
    if user is None:
        raise TicketError(f"there is no user {name_or_id!r}")
    return user


def claim(session, ticket: Ticket, actor: User) -> bool:
    """Take an unassigned ticket; False when it is the actor's already.

    Two operators who click Claim on the same row at once must not both think it is
    theirs: the update only lands while the ticket has nobody, and the loser is told.
    """
    if ticket.assignee_id == actor.id:
        return False
    taken = session.execute(update(Ticket).where(Ticket.id == ticket.id,
                                                 Ticket.assignee_id.is_(None))
                            .values(assignee_id=actor.id)
                            .execution_options(synchronize_session=False)).rowcount
    if not taken:
        session.refresh(ticket)
        if ticket.assignee_id == actor.id:
            return False
        raise TicketError(f"ticket {ticket.id} is {ticket.assignee.name}'s already; "
                          "assign it instead if it should move")
    session.refresh(ticket)
    detail = {"from": None, "to": actor.name}
    _event(session, ticket, "assign", actor.id, detail)
    audit(session, actor.id, "ticket.assign", "ticket", ticket.id, detail)
    return True


def set_priority(session, ticket: Ticket, priority: str, actor_id) -> bool:
    if priority not in PRIORITIES:
        raise TicketError(f"unknown priority {priority!r}; choose one of "
                          f"{', '.join(PRIORITIES)}")
    if priority == ticket.priority:
        return False
    detail = {"from": ticket.priority, "to": priority}
    ticket.priority = priority
    _event(session, ticket, "priority", actor_id, detail)
    audit(session, actor_id, "ticket.priority", "ticket", ticket.id, detail)
    return True


def add_note(session, ticket: Ticket, text: str, actor_id) -> TicketEvent:
    """An internal note on the ticket's timeline; never sent to the customer."""
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise TicketError("the note is empty")
    if len(text) > MAX_NOTE:
        raise TicketError(f"the note is {len(text)} characters; at most {MAX_NOTE} fit")
    event = _event(session, ticket, "note", actor_id, text)
    session.flush()
    audit(session, actor_id, "ticket.note", "ticket", ticket.id, {"event_id": event.id})
    return event


def merge(session, source: Ticket, target_id: int, actor_id) -> Ticket:
    """Move the source ticket's texts, events, orders and calls into the target ticket,
    close the source with a pointer to the target; the target."""
    if target_id == source.id:
        raise TicketError("a ticket cannot be merged into itself")
    if source.merged_into_id is not None:
        raise TicketError(f"ticket {source.id} was merged into ticket "
                          f"{source.merged_into_id} already")
    target = session.get(Ticket, target_id)
    if target is None:
        raise TicketError(f"there is no ticket {target_id}")
    if target.merged_into_id is not None:
        raise TicketError(f"ticket {target.id} was merged into ticket "
                          f"{target.merged_into_id}; merge into that one")
    if target.status == "closed":
        raise TicketError(f"ticket {target.id} is closed; reopen it or choose another")
    moved = {}
    for model in (Message, TicketEvent, Order, Call):
        result = session.execute(update(model).where(model.ticket_id == source.id)
                                 .values(ticket_id=target.id)
                                 .execution_options(synchronize_session=False))
        moved[model.__tablename__] = result.rowcount
    if source.first_response_at is not None and (
            target.first_response_at is None
            or source.first_response_at < target.first_response_at):
        target.first_response_at = source.first_response_at
    if source.waiting_since is not None and source.status not in CLOSED and (
            target.waiting_since is None or source.waiting_since < target.waiting_since):
        target.waiting_since = source.waiting_since
    if target.status in CLOSED:  # a resolved ticket that gets more texts is open again
        set_status(session, target, "open", actor_id)
    source.merged_into_id = target.id
    if source.status != "closed":
        old, source.status = source.status, "closed"
        source.closed_at = source.closed_at or utcnow()
        _event(session, source, "status", actor_id, {"from": old, "to": "closed"})
    _event(session, source, "merged", actor_id, {"into": target.id})
    _event(session, target, "merged", actor_id, {"from": source.id, **moved})
    audit(session, actor_id, "ticket.merge", "ticket", source.id,
          {"into": target.id, **moved})
    session.flush()
    session.expire_all()  # the bulk updates bypassed the identity map
    return target


# -- the SLA clock ---------------------------------------------------------------------

@dataclass(frozen=True)
class Clock:
    """One SLA target for one ticket: when it is due and where it stands."""
    due: dt.datetime
    done_at: dt.datetime | None
    now: dt.datetime

    @property
    def state(self) -> str:
        """met, late (done after due), running or overdue."""
        if self.done_at is not None:
            return "met" if self.done_at <= self.due else "late"
        return "running" if self.now <= self.due else "overdue"

    @property
    def minutes(self) -> int:
        """Minutes left (running), over (overdue), or by which it was met or missed."""
        end = self.done_at or self.now
        return int(abs((self.due - end).total_seconds()) // 60)


@dataclass(frozen=True)
class SlaClock:
    first_response: Clock | None
    resolution: Clock | None

    @property
    def next(self) -> Clock | None:
        """The clock still ticking, the first response's before the resolution's."""
        for clock in (self.first_response, self.resolution):
            if clock is not None and clock.done_at is None:
                return clock
        return None


def sla_targets(session) -> dict[str, SlaTarget]:
    return {t.kind: t for t in session.scalars(select(SlaTarget))}


def sla_clock(ticket: Ticket, target: SlaTarget | None, now: dt.datetime | None = None
              ) -> SlaClock:
    """The ticket's clocks against its kind's targets (None where no target is set)."""
    now = now or utcnow()

    def clock(minutes, done_at):
        if not minutes:
            return None
        return Clock(ticket.created_at + dt.timedelta(minutes=minutes), done_at, now)

    if target is None:
        return SlaClock(None, None)
    return SlaClock(clock(target.first_response_minutes, ticket.first_response_at),
                    clock(target.resolution_minutes,
                          ticket.closed_at if ticket.status in CLOSED else None))


def _minutes(value, what: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise TicketError(f"{what} must be a whole number of minutes, not {value!r}") from None
    if not 1 <= number <= MAX_MINUTES:
        raise TicketError(f"{what} must be from 1 to {MAX_MINUTES} minutes, not {number}")
    return number


def set_sla_target(session, kind: str, first_response, resolution, actor_id
                   ) -> SlaTarget | None:
    """Set (or with both empty, clear) the targets of one ticket kind, in minutes."""
    if kind not in TICKET_KINDS:
        raise TicketError(f"unknown ticket kind {kind!r}; choose one of "
                          f"{', '.join(TICKET_KINDS)}")
    first = _minutes(first_response, "the first response target")
    resolve = _minutes(resolution, "the resolution target")
    row = session.scalar(select(SlaTarget).where(SlaTarget.kind == kind))
    old = None if row is None else [row.first_response_minutes, row.resolution_minutes]
    if old == [first, resolve] or (old is None and first is None and resolve is None):
        return row  # unchanged: no audit row for a form saved as it was
    if row is None:
        row = SlaTarget(kind=kind)
        session.add(row)
    row.first_response_minutes, row.resolution_minutes = first, resolve
    row.updated_at = utcnow()
    session.flush()
    audit(session, actor_id, "sla.set", "sla_target", row.id,
          {"kind": kind, "from": old, "to": [first, resolve]})
    return row


# -- canned responses ------------------------------------------------------------------

def canned_responses(session) -> list[CannedResponse]:
    return list(session.scalars(select(CannedResponse).order_by(CannedResponse.title,
                                                                CannedResponse.id)))


def save_canned(session, canned_id: int | None, title: str, body: str, actor_id
                ) -> CannedResponse:
    """Add (canned_id None) or change a canned response."""
    title = (title or "").strip()
    body = (body or "").replace("\r\n", "\n").strip()
    if not title or not body:
        raise TicketError("a canned response needs both a title and a text")
    if len(title) > MAX_TITLE:
        raise TicketError(f"the title is {len(title)} characters; at most {MAX_TITLE} fit")
    if len(body) > MAX_CANNED:
        raise TicketError(f"the text is {len(body)} characters; at most {MAX_CANNED} fit "
                          "in one SMS conversation")
    if canned_id is None:
        row, old = CannedResponse(created_at=utcnow()), None
        session.add(row)
    else:
        row = session.get(CannedResponse, canned_id)
        if row is None:
            raise TicketError(f"there is no canned response {canned_id}")
        old = {"title": row.title, "body": row.body}
    row.title, row.body, row.updated_at = title, body, utcnow()
    session.flush()
    audit(session, actor_id, "canned.save", "canned_response", row.id,
          {"from": old, "to": {"title": title, "body": body}})
    return row


def delete_canned(session, canned_id: int, actor_id) -> None:
    row = session.get(CannedResponse, canned_id)
    if row is None:
        raise TicketError(f"there is no canned response {canned_id}")
    audit(session, actor_id, "canned.delete", "canned_response", row.id,
          {"title": row.title, "body": row.body})
    session.delete(row)
