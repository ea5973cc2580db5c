"""The outbox is the messages table: rows go queued -> sending -> sent | failed.

These functions run inside a daemon transaction (or a Flask request's session) and
return plain data. The dispatcher that drives them lives in gateway/daemon/outbox.py.
"""
from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import bindparam, case, insert, or_, select, update

from gateway.db.models import GatewayNode, Message, MessagePart, Ticket, utcnow

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
                  contact_id=None, modem=None, flush=True) -> Message:
    """Add a text to the outbox; the dispatcher picks it up within a poll. flush=False
    leaves the row to the caller's next flush (a batch of texts writes them together)."""
    if not text or not text.strip():
        raise OutboxError("the text is empty")
    if len(text) > MAX_TEXT:
        raise OutboxError(f"the text is {len(text)} characters; at most {MAX_TEXT} fit in one SMS "
                          "conversation")
    message = Message(direction="out", number=number, text=text, status="queued",
                      ticket_id=ticket_id, user_id=user_id, contact_id=contact_id, modem=modem,
                      created_at=utcnow())
    session.add(message)
    if ticket_id is not None and user_id is not None:  # a person's answer
        ticket = session.get(Ticket, ticket_id)
        if ticket is not None:
            ticket.waiting_since = None
            if ticket.first_response_at is None:
                ticket.first_response_at = message.created_at
    if flush:
        session.flush()
    return message


# Built once: claim and finish run once per text sent, and building the statements each
# time costs more than running them on SQLite.
_DUE = (select(Message.id, Message.number, Message.text, Message.modem, Message.priority)
        .where(Message.direction == "out", Message.status == "queued",
               or_(Message.next_attempt_at.is_(None),
                   Message.next_attempt_at <= bindparam("now")))
        .order_by(Message.priority, Message.id).limit(bindparam("limit"))
        .with_for_update(skip_locked=True))
_TAKE = (update(Message)
         .where(Message.id.in_(bindparam("ids", expanding=True)), Message.status == "queued")
         .values(status="sending", claimed_by=bindparam("node"), claimed_at=bindparam("now"),
                 attempts=Message.attempts + 1)
         .execution_options(synchronize_session=False))
WINDOW = 4  # with peers: due rows read per text asked for and per live host


def spread(rows, slot: int, peers: int, limit: int) -> list:
    """Which of the due `rows` (in outbox order) this host, number `slot` of `peers` live
    ones, tries to take: the lowest priority first; within it the rows whose id falls to
    this host (id % peers == slot), then the others', starting at a point of its own.
    Hosts reading the same queue so try different rows, so a claim rarely meets another
    host's: on Galera such a meeting is a certification conflict at COMMIT, and with
    every host going for the first rows they would never stop."""
    if peers <= 1:
        return list(rows[:limit])
    chosen: list = []
    for _priority, group in itertools.groupby(rows, key=lambda r: r.priority):
        group = list(group)
        mine = [r for r in group if r.id % peers == slot]
        others = [r for r in group if r.id % peers != slot]
        start = slot * len(others) // peers
        chosen += mine + others[start:] + others[:start]
        if len(chosen) >= limit:
            break
    return chosen[:limit]


def claim(session, node: str, now: dt.datetime, limit: int = 20, slot: int = 0,
          peers: int = 1) -> list[Outgoing]:
    """Mark up to `limit` due rows `sending` for this node and return them.

    The guarantee is the conditional UPDATE (only rows still `queued` change) and its row
    count: only rows it changed are returned. It holds on one MariaDB, PostgreSQL and
    SQLite (one writer) and on Galera, where a row lock holds on one node only: there
    two nodes may both count a row as theirs, and the second to commit gets a
    certification conflict and runs again (gateway.db.transaction). FOR UPDATE SKIP
    LOCKED only saves waits between hosts on one server. `slot` and `peers` (from
    `beat`) spread the hosts over the queue.
    """
    window = limit * peers * WINDOW if peers > 1 else limit
    rows = session.execute(_DUE, {"now": now, "limit": window}).all()
    if not rows:
        return []
    rows = spread(rows, slot, peers, limit)
    ids = [row.id for row in rows]
    taken = session.execute(_TAKE, {"ids": ids, "node": node, "now": now}).rowcount
    if taken < len(rows):  # another host took some first: hand out only what is ours
        mine = set(session.scalars(select(Message.id).where(
            Message.id.in_(ids), Message.status == "sending", Message.claimed_by == node)))
        rows = [row for row in rows if row.id in mine]
    return [Outgoing(r.id, r.number, r.text, r.modem) for r in rows]


@dataclass(frozen=True)
class Beat:
    """What a host learns when it beats: its place among the live hosts, and the texts
    it marked `unknown` for hosts found dead."""
    slot: int
    peers: int
    taken_over: dict[str, int]  # dead host -> texts it left `sending`, now unknown
    released: int = 0  # this host's lost claims, queued again


def beat(session, node: str, now: dt.datetime, lease: float,
         held: Iterable[int] = ()) -> Beat:
    """This host is alive (its row in gateway_nodes says when); hosts silent for longer
    than their lease are dead: what they left `sending` may or may not have gone out,
    so it becomes `unknown` (rule 4: never sent twice), and their share of the queue
    goes to the living. Queued texts need no hand-over: any host claims them.

    `held` are the texts this host's dispatcher has in hand (claimed and not yet
    recorded). A text `sending` under this host's name for longer than a lease that is
    not among them was claimed by a transaction whose answer never came back (the
    connection broke after the COMMIT): no modem was handed it, so it is queued again."""
    row = session.get(GatewayNode, node)
    if row is None:
        session.add(GatewayNode(name=node, started_at=now, seen_at=now, lease=lease))
    else:
        row.seen_at, row.lease = now, lease
    session.flush()
    nodes = session.execute(select(GatewayNode.name, GatewayNode.seen_at, GatewayNode.lease)).all()
    alive = sorted(n.name for n in nodes
                   if n.name == node or n.seen_at >= now - dt.timedelta(seconds=n.lease))
    taken = {}
    for n in nodes:
        if n.name in alive:
            continue
        count = session.execute(
            update(Message)
            .where(Message.direction == "out", Message.status == "sending",
                   Message.claimed_by == n.name)
            .values(status="unknown",
                    last_error=f"gateway host {n.name[:80]} stopped answering while sending; "
                               "it may or may not have left")
            .execution_options(synchronize_session=False)).rowcount
        if count:
            taken[n.name] = count
    released = session.execute(
        update(Message)
        .where(Message.direction == "out", Message.status == "sending",
               Message.claimed_by == node, Message.id.not_in(list(held)),
               Message.claimed_at < now - dt.timedelta(seconds=lease))
        .values(status="queued", claimed_by=None,
                last_error="claimed, but the database's answer was lost; it never reached "
                           "a modem, so it was queued again",
                attempts=case((Message.attempts > 0, Message.attempts - 1), else_=0))
        .execution_options(synchronize_session=False)).rowcount
    return Beat(alive.index(node), len(alive), taken, released)


def _set(session, ids: list[int], expect: str | None = None, **values) -> int:
    """UPDATE the rows `ids` (still in status `expect`, if given); how many changed."""
    query = update(Message).where(Message.id.in_(ids))
    if expect is not None:
        query = query.where(Message.status == expect)
    return session.execute(query.values(**values).execution_options(
        synchronize_session=False)).rowcount


def release(session, message_id: int, reason: str) -> None:
    """Give a claimed text back untried (no modem could take it): no attempt is spent."""
    _set(session, [message_id], status="queued", claimed_by=None, last_error=reason[:255],
         attempts=case((Message.attempts > 0, Message.attempts - 1), else_=0))


_SENT = (update(Message).where(Message.id == bindparam("message_id"))
         .values(status="sent", modem=bindparam("by"), sent_at=bindparam("at"),
                 last_error=None)
         .execution_options(synchronize_session=False))


def mark_sent(session, message_id: int, modem: str, references: list[int], now) -> None:
    session.execute(_SENT, {"message_id": message_id, "by": modem, "at": now})
    if references:
        session.execute(insert(MessagePart), [
            dict(message_id=message_id, modem=modem, part_number=number,
                 part_count=len(references), reference=reference, payload=b"",
                 received_at=now) for number, reference in enumerate(references, 1)])


def mark_retry(session, message_id: int, error: str, now, max_attempts: int) -> str:
    """A failure that may pass: queue again with backoff, or fail after the last attempt."""
    attempts = session.scalar(select(Message.attempts).where(Message.id == message_id))
    if attempts >= max_attempts:
        _set(session, [message_id], status="failed", last_error=error[:255])
        return "failed"
    _set(session, [message_id], status="queued", last_error=error[:255],
         next_attempt_at=now + backoff(attempts))
    return "queued"


def mark_failed(session, message_id: int, error: str, status: str = "failed",
                modem: str | None = None) -> None:
    """A failure that will not pass (or, with status='unknown', one we cannot judge)."""
    values = dict(status=status, last_error=error[:255])
    if modem:
        values["modem"] = modem
    _set(session, [message_id], **values)


@dataclass(frozen=True)
class Outcome:
    """What became of one send: `kind` is sent, failed, unknown, retry (an error that may
    pass) or release (never tried: back to the queue, no attempt spent)."""
    message_id: int
    kind: str
    modem: str | None = None
    error: str = ""
    references: tuple[int, ...] = ()


def finish(session, outcome: Outcome, now, max_attempts: int, node: str,
           claim_next: int, slot: int = 0, peers: int = 1) -> tuple[str, list[Outgoing]]:
    """Record `outcome` and, in the same transaction, claim up to `claim_next` texts
    for the modem that is free again: (the text's status now, the texts claimed)."""
    if outcome.kind == "sent":
        mark_sent(session, outcome.message_id, outcome.modem, list(outcome.references), now)
        status = "sent"
    elif outcome.kind == "retry":
        status = mark_retry(session, outcome.message_id, outcome.error, now, max_attempts)
    elif outcome.kind == "release":
        release(session, outcome.message_id, outcome.error)
        status = "queued"
    else:
        mark_failed(session, outcome.message_id, outcome.error, outcome.kind, outcome.modem)
        status = outcome.kind
    claimed = claim(session, node, now, claim_next, slot, peers) if claim_next else []
    return status, claimed


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


OUTBOX_STATES = ("queued", "sending", "failed", "unknown")  # not sent, as far as we know
RETRYABLE = ("failed", "unknown")


class RetryRefused(ValueError):
    """Why an operator's retry of a text was not done, as a sentence."""


@dataclass(frozen=True)
class Requeued:
    message: Message
    previous: str  # failed or unknown
    last_error: str | None


def requeue(session, message_id: int, *, sent_maybe_ok: bool = False) -> Requeued:
    """An operator sends a `failed` or `unknown` text again: back to `queued` with a fresh
    set of attempts. The caller audits it (users.audit; users sits beside the outbox in
    the domain's layers) and commits.

    An `unknown` text may have reached the customer already, so it is requeued only when
    the operator accepts a second copy (`sent_maybe_ok`). The UPDATE is conditional on
    the status read, so a double click or two operators at once requeue it once and the
    second hears why not.
    """
    message = session.get(Message, message_id)
    if message is None or message.direction != "out":
        raise LookupError(f"there is no outbound text {message_id}")
    status, error = message.status, message.last_error
    if status not in RETRYABLE:
        raise RetryRefused(f"the text to {message.number} is {status}; only a failed or "
                           "unknown text can be sent again")
    if status == "unknown" and not sent_maybe_ok:
        raise RetryRefused(f"the text to {message.number} may have been sent already; tick "
                           "the box to send it again anyway")
    changed = _set(session, [message.id], expect=status, status="queued", attempts=0,
                   next_attempt_at=None, claimed_by=None)
    if changed != 1:
        raise RetryRefused(f"the text to {message.number} was sent again by someone else "
                           "meanwhile")
    session.refresh(message)
    return Requeued(message, status, error)
