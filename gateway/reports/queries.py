"""The report figures over a date range, grouped by day, week or month in the shop's
time zone, aggregated by the database (GROUP BY on a bucket expression, one per dialect).

Times are stored as naive UTC. A range is whole local days, from 00:00 of the first to
00:00 after the last. Buckets are keyed by their first local day, 'YYYY-MM-DD' (a week
starts on Monday). The shift from UTC is the zone's offset at the range's start: exact for
Indonesia's zones, which keep no summer time.

Medians and 90th percentiles are computed in Python from the durations of the range's
rows (one small tuple each, read as a stream): the three databases share no percentile
function. The 90th percentile is the nearest-rank one (the value at rank ceil(0.9 n)).
"""
from __future__ import annotations

import datetime as dt
import math
import statistics
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import and_, case, exists, func, literal_column, select
from sqlalchemy.orm import aliased

from gateway.db.models import (
    Call,
    Message,
    Order,
    OrderItem,
    Payment,
    Ticket,
    User,
    utcnow,
)
from gateway.desk import tickets as desk_tickets

GROUPINGS = ("day", "week", "month")
MAX_DAYS = 3 * 366 + 1  # three years in one report; more is a typo in a year
CLOSED = desk_tickets.CLOSED
UNASSIGNED = "(unassigned)"
NO_MODEM = "(none)"


class ReportError(ValueError):
    """A report that cannot be made as asked, with a sentence saying why."""


@dataclass(frozen=True)
class Range:
    """Whole local days `first`..`last` (both included), grouped by `grouping`."""
    first: dt.date
    last: dt.date
    grouping: str = "day"
    timezone: str = "Asia/Jakarta"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def _utc(self, day: dt.date) -> dt.datetime:
        local = dt.datetime.combine(day, dt.time(), self.zone)
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    @property
    def start(self) -> dt.datetime:
        """Naive UTC of the first day's local midnight (included)."""
        return self._utc(self.first)

    @property
    def end(self) -> dt.datetime:
        """Naive UTC of the local midnight after the last day (excluded)."""
        return self._utc(self.last + dt.timedelta(days=1))

    @property
    def offset_seconds(self) -> int:
        local = dt.datetime.combine(self.first, dt.time(12), self.zone)
        return int(local.utcoffset().total_seconds())

    def holds(self, column):
        return and_(column >= self.start, column < self.end)

    def buckets(self) -> list[str]:
        """Every bucket key of the range, in order, the empty ones too."""
        keys, day = [], self.first
        while day <= self.last:
            key = bucket_of(day, self.grouping)
            if not keys or keys[-1] != key:
                keys.append(key)
            day += dt.timedelta(days=1)
        return keys

    def label(self) -> str:
        return f"{self.first.isoformat()} – {self.last.isoformat()}"


def bucket_of(day: dt.date, grouping: str) -> str:
    """The key of the bucket a local day falls in (what bucket() computes in SQL)."""
    if grouping == "week":
        day -= dt.timedelta(days=day.weekday())
    elif grouping == "month":
        day = day.replace(day=1)
    return day.isoformat()


def parse_range(first: str | None, last: str | None, grouping: str | None = "day",
                timezone: str = "Asia/Jakarta", today: dt.date | None = None) -> Range:
    """A Range from what a person typed (YYYY-MM-DD); without dates the last 7 days."""
    today = today or dt.datetime.now(zoneinfo.ZoneInfo(timezone)).date()
    grouping = (grouping or "day").strip().lower()
    if grouping not in GROUPINGS:
        raise ReportError(f"grouping must be one of {', '.join(GROUPINGS)}, not {grouping!r}")

    def day(text, what, default):
        text = (text or "").strip()
        if not text:
            return default
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise ReportError(f"{what} must be a date written YYYY-MM-DD, not "
                              f"{text[:40]!r}") from None
    last_day = day(last, "the last day (--to)", today)
    first_day = day(first, "the first day (--from)", last_day - dt.timedelta(days=6))
    if first_day > last_day:
        raise ReportError(f"the range starts ({first_day}) after it ends ({last_day})")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ReportError(f"the range is {(last_day - first_day).days + 1} days; "
                          f"at most {MAX_DAYS} fit in one report")
    if first_day.year < 1970 or last_day.year > 9998:
        raise ReportError("the range must lie between 1970 and 9998")
    return Range(first_day, last_day, grouping, timezone)


def bucket(column, period: Range, dialect: str):
    """SQL for the local bucket key ('YYYY-MM-DD') of a naive UTC datetime column."""
    off = int(period.offset_seconds)  # an int: safe to write into the SQL text
    grouping = period.grouping
    # Constants are SQL literals, not parameters: PostgreSQL binds each parameter apart,
    # and would not see the SELECT's expression and the GROUP BY's as the same.
    if dialect == "sqlite":
        shift = _literal(f"{off:+d} seconds")
        if grouping == "week":  # to the next Sunday (or this one), back to its Monday
            return func.date(column, shift, _literal("weekday 0"), _literal("-6 days"))
        return func.strftime(_literal("%Y-%m-01" if grouping == "month" else "%Y-%m-%d"),
                             column, shift)
    if dialect == "postgresql":
        local = column + literal_column(f"INTERVAL '{off} seconds'")
        return func.to_char(func.date_trunc(_literal(grouping), local), _literal("YYYY-MM-DD"))
    if dialect in ("mysql", "mariadb"):
        local = func.date_add(column, literal_column(f"INTERVAL {off} SECOND"))
        if grouping == "week":
            local = func.subdate(func.date(local), func.weekday(local))
            return func.date_format(local, _literal("%Y-%m-%d"))
        return func.date_format(local, _literal("%Y-%m-01" if grouping == "month"
                                                else "%Y-%m-%d"))
    raise ReportError(f"reports do not know the {dialect} database")


def _literal(text: str):
    assert "'" not in text
    return literal_column(f"'{text}'")


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None for an empty one."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


# -- the reports -------------------------------------------------------------------------

@dataclass
class Report:
    """One report's figures: named columns and rows (for tables and exports), and the
    series of its chart over `categories` (bucket keys or names)."""
    name: str
    period: Range
    columns: list[str]
    rows: list[list]
    categories: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    money: tuple[str, ...] = ()       # columns that are rupiah
    minutes: tuple[str, ...] = ()     # columns that are minutes
    chart_unit: str = "count"         # count, rupiah or minutes


def _dialect(session) -> str:
    return session.get_bind().dialect.name


def sms_traffic(session, period: Range) -> Report:
    """Texts in and out per modem and bucket (by when each was stored)."""
    key = bucket(Message.created_at, period, _dialect(session)).label("period")
    counts = session.execute(
        select(key, Message.modem, Message.direction, func.count())
        .where(period.holds(Message.created_at))
        .group_by(key, Message.modem, Message.direction)).all()
    table: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for when, modem, direction, n in counts:
        table[(when, modem or NO_MODEM)][0 if direction == "in" else 1] += n
    cats = period.buckets()
    series = {"in": [0] * len(cats), "out": [0] * len(cats)}
    index = {c: i for i, c in enumerate(cats)}
    for (when, _modem), (n_in, n_out) in table.items():
        if when in index:
            series["in"][index[when]] += n_in
            series["out"][index[when]] += n_out
    rows = [[when, modem, n_in, n_out] for (when, modem), (n_in, n_out) in sorted(table.items())]
    return Report("sms-traffic", period, ["period", "modem", "in", "out"], rows, cats, series)


def ticket_volume(session, period: Range) -> Report:
    """Tickets opened (by created_at) and closed or resolved (by closed_at) per kind and
    bucket. A merged ticket counts as opened, not as closed: its texts live on elsewhere."""
    dialect = _dialect(session)
    opened_key = bucket(Ticket.created_at, period, dialect).label("period")
    closed_key = bucket(Ticket.closed_at, period, dialect).label("period")
    table: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for when, kind, n in session.execute(
            select(opened_key, Ticket.kind, func.count())
            .where(period.holds(Ticket.created_at)).group_by(opened_key, Ticket.kind)):
        table[(when, kind)][0] += n
    for when, kind, n in session.execute(
            select(closed_key, Ticket.kind, func.count())
            .where(period.holds(Ticket.closed_at), Ticket.status.in_(CLOSED),
                   Ticket.merged_into_id.is_(None))
            .group_by(closed_key, Ticket.kind)):
        table[(when, kind)][1] += n
    cats = period.buckets()
    index = {c: i for i, c in enumerate(cats)}
    series = {"opened": [0] * len(cats), "closed": [0] * len(cats)}
    for (when, _kind), (opened, closed) in table.items():
        if when in index:
            series["opened"][index[when]] += opened
            series["closed"][index[when]] += closed
    rows = [[when, kind, o, c] for (when, kind), (o, c) in sorted(table.items())]
    return Report("ticket-volume", period, ["period", "kind", "opened", "closed"], rows,
                  cats, series)


def response_times(session, period: Range, now: dt.datetime | None = None) -> Report:
    """First-response and resolution times per operator (the ticket's assignee) for the
    tickets opened in the range, median and 90th percentile in minutes, and the share of
    those with an SLA target for their kind that met it (tickets.sla_clock; a clock still
    running counts neither way)."""
    now = now or utcnow()
    targets = desk_tickets.sla_targets(session)
    names = dict(session.execute(select(User.id, User.name)).all())
    first: dict[str, list[float]] = defaultdict(list)
    resolved: dict[str, list[float]] = defaultdict(list)
    count: dict[str, int] = defaultdict(int)
    met: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # fr met, fr due, res ...
    rows = session.execute(
        select(Ticket.assignee_id, Ticket.kind, Ticket.status, Ticket.created_at,
               Ticket.first_response_at, Ticket.closed_at)
        .where(period.holds(Ticket.created_at), Ticket.merged_into_id.is_(None))
        .execution_options(yield_per=5000))
    for row in rows:
        who = names.get(row.assignee_id, UNASSIGNED) if row.assignee_id else UNASSIGNED
        count[who] += 1
        if row.first_response_at is not None:
            first[who].append((row.first_response_at - row.created_at).total_seconds())
        if row.status in CLOSED and row.closed_at is not None:
            resolved[who].append((row.closed_at - row.created_at).total_seconds())
        clock = desk_tickets.sla_clock(row, targets.get(row.kind), now)
        for i, part in ((0, clock.first_response), (2, clock.resolution)):
            if part is not None and part.state != "running":
                met[who][i + 1] += 1
                met[who][i] += part.state == "met"
    out = []
    for who in sorted(count, key=lambda w: (w == UNASSIGNED, w.lower())):
        fr, res = sorted(first[who]), sorted(resolved[who])
        m = met[who]
        out.append([who, count[who], _minutes(_median(fr)), _minutes(percentile(fr, 90)),
                    _share(m[0], m[1]), len(res), _minutes(_median(res)),
                    _minutes(percentile(res, 90)), _share(m[2], m[3])])
    columns = ["operator", "tickets", "first_response_median", "first_response_p90",
               "first_response_sla_met_pct", "resolved", "resolution_median", "resolution_p90",
               "resolution_sla_met_pct"]
    cats = [r[0] for r in out]
    series = {"first_response_median": [r[2] or 0 for r in out],
              "resolution_median": [r[6] or 0 for r in out]}
    return Report("response-times", period, columns, out, cats, series,
                  minutes=("first_response_median", "first_response_p90", "resolution_median",
                           "resolution_p90"), chart_unit="minutes")


def _share(part: int, whole: int) -> float | None:
    return None if not whole else round(100 * part / whole, 1)


def sales(session, period: Range) -> Report:
    """Orders placed per product and bucket (cancelled ones left out), the quantity, and
    the revenue of the paid ones (items at their price; the unique code is no revenue)."""
    key = bucket(Order.created_at, period, _dialect(session)).label("period")
    paid = Order.status == "paid"
    result = session.execute(
        select(key, OrderItem.code, func.count(func.distinct(Order.id)),
               func.sum(OrderItem.quantity),
               func.sum(case((paid, OrderItem.quantity * OrderItem.unit_price), else_=0)))
        .join(OrderItem, OrderItem.order_id == Order.id)
        .where(period.holds(Order.created_at), Order.status != "cancelled")
        .group_by(key, OrderItem.code).order_by(key, OrderItem.code)).all()
    rows = [[when, code, int(n), int(qty or 0), int(revenue or 0)]
            for when, code, n, qty, revenue in result]
    cats = period.buckets()
    index = {c: i for i, c in enumerate(cats)}
    revenue = [0] * len(cats)
    for row in rows:
        if row[0] in index:
            revenue[index[row[0]]] += row[4]
    return Report("sales", period, ["period", "product", "orders", "quantity", "revenue"],
                  rows, cats, {"revenue": revenue}, money=("revenue",), chart_unit="rupiah")


def payment_status(session, period: Range, now: dt.datetime | None = None) -> Report:
    """Payment confirmations that came in per bucket: confirmed, rejected, still waiting,
    and how long the decided ones waited for a person (median, 90th percentile, minutes);
    the oldest still waiting, in minutes up to now."""
    now = now or utcnow()
    key = bucket(Payment.created_at, period, _dialect(session)).label("period")
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for when, status, n in session.execute(
            select(key, Payment.status, func.count()).where(period.holds(Payment.created_at))
            .group_by(key, Payment.status)):
        counts[when][status] += n
    waits: dict[str, list[float]] = defaultdict(list)
    oldest: dict[str, float] = {}
    for when, created, decided in session.execute(
            select(key, Payment.created_at, Payment.decided_at)
            .where(period.holds(Payment.created_at))
            .execution_options(yield_per=5000)):
        if decided is not None:
            waits[when].append((decided - created).total_seconds())
        else:
            oldest[when] = max(oldest.get(when, 0.0), (now - created).total_seconds())
    rows = []
    for when in sorted(counts):
        w = sorted(waits[when])
        c = counts[when]
        rows.append([when, c.get("confirmed", 0), c.get("rejected", 0), c.get("unverified", 0),
                     _minutes(_median(w)), _minutes(percentile(w, 90)),
                     _minutes(oldest.get(when))])
    cats = period.buckets()
    index = {c: i for i, c in enumerate(cats)}
    series = {name: [0] * len(cats) for name in ("confirmed", "rejected", "waiting")}
    for row in rows:
        if row[0] in index:
            for i, name in enumerate(("confirmed", "rejected", "waiting"), start=1):
                series[name][index[row[0]]] = row[i]
    return Report("payment-status", period,
                  ["period", "confirmed", "rejected", "waiting", "wait_median", "wait_p90",
                   "oldest_waiting"], rows, cats, series,
                  minutes=("wait_median", "wait_p90", "oldest_waiting"))


def call_outcomes(session, period: Range) -> Report:
    """Incoming calls per bucket: answered, missed (not answered, out of hours too), and of
    the missed ones those called back (a later outgoing call to the same number)."""
    key = bucket(Call.started_at, period, _dialect(session)).label("period")
    later = aliased(Call)
    called_back = exists().where(later.direction == "out", later.number == Call.number,
                                 later.started_at > Call.started_at)
    answered = Call.answered_at.is_not(None)
    missed = and_(Call.answered_at.is_(None), Call.ended_at.is_not(None))
    result = session.execute(
        select(key, func.sum(case((answered, 1), else_=0)),
               func.sum(case((missed, 1), else_=0)),
               func.sum(case((and_(missed, called_back), 1), else_=0)))
        .where(period.holds(Call.started_at), Call.direction == "in")
        .group_by(key).order_by(key)).all()
    rows = [[when, int(a or 0), int(m or 0), int(b or 0)] for when, a, m, b in result]
    cats = period.buckets()
    index = {c: i for i, c in enumerate(cats)}
    series = {name: [0] * len(cats) for name in ("answered", "missed", "called_back")}
    for row in rows:
        if row[0] in index:
            for i, name in enumerate(("answered", "missed", "called_back"), start=1):
                series[name][index[row[0]]] = row[i]
    return Report("call-outcomes", period, ["period", "answered", "missed", "called_back"],
                  rows, cats, series)


# The English titles, for `helpdesk export`; the web app shows its own translations.
TITLES = {
    "sms-traffic": "Texts in and out per modem",
    "ticket-volume": "Tickets opened and closed",
    "response-times": "Response and resolution times per operator",
    "sales": "Orders and revenue per product",
    "payment-status": "Payments and how long they waited",
    "call-outcomes": "Calls answered, missed and called back",
}

REPORTS = {
    "sms-traffic": sms_traffic,
    "ticket-volume": ticket_volume,
    "response-times": response_times,
    "sales": sales,
    "payment-status": payment_status,
    "call-outcomes": call_outcomes,
}


def run(session, name: str, period: Range) -> Report:
    if name not in REPORTS:
        raise ReportError(f"unknown report {name!r}; choose one of {', '.join(REPORTS)}")
    return REPORTS[name](session, period)
