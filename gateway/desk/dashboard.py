"""The day at a glance: a handful of aggregate counts, each answered from an index.

The dashboard polls this every few seconds from every operator's screen, so no query
here reads a row it does not count: open tickets come from (status, kind, created_at,
first_response_at), the outbox from (direction, status, ...), marked texts from
(attention), today's orders from (created_at), waiting payments from (status, id).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select

from gateway.db.models import (
    OPEN_TICKET_STATUSES,
    TICKET_KINDS,
    Message,
    Order,
    Payment,
    Ticket,
)
from gateway.desk import health
from gateway.desk.outbox import OUTBOX_STATES
from gateway.desk.payments import UNVERIFIED

# Age bands of an open ticket, youngest first: (key, the age it is younger than).
AGE_BANDS = (("hour", dt.timedelta(hours=1)), ("day", dt.timedelta(days=1)),
             ("week", dt.timedelta(days=7)), ("older", None))


@dataclass
class Summary:
    """Plain data for the page and its JSON twin."""
    tickets: dict[str, dict[str, int]]  # kind -> band -> open tickets; "all" sums them
    open_total: int
    waiting: int  # open tickets no person has answered yet
    oldest_waiting: dt.datetime | None
    orders_today: int
    orders_today_total: int
    payments_waiting: int
    payments_waiting_total: int
    outbox: dict[str, int]
    attention: int
    modems: list[dict] = field(default_factory=list)


def summary(session, config, now: dt.datetime) -> Summary:
    """Every figure of the dashboard at `now` (naive UTC)."""
    tickets, total, waiting, oldest = _open_tickets(session, now)
    orders_today, orders_total = session.execute(
        select(func.count(), func.coalesce(func.sum(Order.total), 0))
        .where(Order.created_at >= start_of_day(now, config.timezone))).one()
    payments, payments_total = session.execute(
        select(func.count(), func.coalesce(func.sum(Payment.amount), 0))
        .where(Payment.status == UNVERIFIED)).one()
    outbox = dict.fromkeys(OUTBOX_STATES, 0)
    outbox.update(session.execute(
        select(Message.status, func.count()).where(Message.direction == "out",
                                                   Message.status.in_(OUTBOX_STATES))
        .group_by(Message.status)).all())
    return Summary(tickets, total, waiting, oldest, orders_today, int(orders_total),
                   payments, int(payments_total), outbox, health.attention_count(session),
                   list(health.modem_colours(session, config, now).values()))


def _open_tickets(session, now):
    # Counts of tickets younger than each band's limit; a band is the difference of two.
    limits = [(key, now - age) for key, age in AGE_BANDS if age is not None]
    unanswered = Ticket.first_response_at.is_(None)
    rows = session.execute(
        select(Ticket.kind, func.count(),
               *[func.sum(case((Ticket.created_at >= since, 1), else_=0)) for _, since in limits],
               func.sum(case((unanswered, 1), else_=0)),
               func.min(case((unanswered, Ticket.created_at))))
        .where(Ticket.status.in_(OPEN_TICKET_STATUSES)).group_by(Ticket.kind)).all()
    kinds = [*TICKET_KINDS, *sorted({row[0] for row in rows} - set(TICKET_KINDS))]
    tickets = {kind: dict.fromkeys([key for key, _ in AGE_BANDS] + ["all"], 0)
               for kind in [*kinds, "all"]}
    waiting, oldest = 0, None
    for kind, count, *younger, unanswered_count, first in rows:
        younger = [int(n or 0) for n in younger]
        bands = dict(zip([key for key, _ in AGE_BANDS],
                         [b - a for a, b in zip([0, *younger], [*younger, count])]))
        for key, n in [*bands.items(), ("all", count)]:
            tickets[kind][key] += n
            tickets["all"][key] += n
        waiting += int(unanswered_count or 0)
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return tickets, tickets["all"]["all"], waiting, oldest


def start_of_day(now: dt.datetime, timezone: str) -> dt.datetime:
    """Midnight of `now`'s day in the shop's time zone, as naive UTC."""
    local = now.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(dt.UTC).replace(tzinfo=None)
