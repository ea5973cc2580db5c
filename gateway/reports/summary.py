"""The daily summary: one SMS to each of `[reports] daily_summary_to` once the local day
reaches `daily_summary_at` ([web] timezone), with the day's figures so far.

Once per day, across restarts and gateway hosts: the day's DailySummary row is written
in the same transaction as the texts, and its primary key refuses a second. A gateway
that was down at the hour sends when it is back, the same day; a day it missed whole is
not sent the next morning (yesterday's figures at 09:00 are news to nobody)."""
from __future__ import annotations

import datetime as dt
import zoneinfo

from sqlalchemy import func, select

from gateway.db.models import DailySummary, Order, Payment
from gateway.desk.outbox import queue_message
from gateway.desk.reader import format_rupiah
from gateway.reports import queries
from gateway.sms.phone import normalise

TEXTS = {
    "id": ("Ringkasan {day}: SMS masuk {sms_in}, keluar {sms_out}; tiket baru {opened}, "
           "selesai {closed}; pesanan {orders}, dibayar {revenue}; pembayaran menunggu "
           "{waiting}; telepon tak terjawab {missed}."),
    "en": ("Summary {day}: texts in {sms_in}, out {sms_out}; tickets new {opened}, closed "
           "{closed}; orders {orders}, paid {revenue}; payments waiting {waiting}; calls "
           "missed {missed}."),
}


def local_now(config, now: dt.datetime) -> dt.datetime:
    return now.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(config.timezone))


def due_day(config, now: dt.datetime) -> dt.date | None:
    """The local day whose summary is due at `now` (naive UTC), if the hour has come."""
    if not config.daily_summary_to:
        return None
    local = local_now(config, now)
    hour, minute = (int(x) for x in config.daily_summary_at.split(":"))
    return local.date() if (local.hour, local.minute) >= (hour, minute) else None


def figures(session, config, day: dt.date) -> dict:
    period = queries.Range(day, day, "day", config.timezone)
    traffic = queries.sms_traffic(session, period)
    volume = queries.ticket_volume(session, period)
    sales = queries.sales(session, period)
    calls = queries.call_outcomes(session, period)
    orders = session.scalar(select(func.count()).select_from(Order).where(
        period.holds(Order.created_at), Order.status != "cancelled")) or 0  # not per product
    waiting = session.scalar(select(func.count()).select_from(Payment)
                             .where(Payment.status == "unverified")) or 0
    return {"day": day.strftime("%d-%m-%Y"), "sms_in": sum(traffic.series["in"]),
            "sms_out": sum(traffic.series["out"]), "opened": sum(volume.series["opened"]),
            "closed": sum(volume.series["closed"]), "orders": orders,
            "revenue": format_rupiah(sum(r[4] for r in sales.rows)), "waiting": waiting,
            "missed": sum(r[2] for r in calls.rows)}


def text_for(config, session, day: dt.date) -> str:
    template = TEXTS.get(config.language, TEXTS["id"])
    return template.format(**figures(session, config, day))


def send_due(session, config, now: dt.datetime) -> int:
    """Queue the day's summary if it is due and not yet queued; the texts queued.

    Run it in a transaction of its own: a second host that queues the same day at the
    same moment fails its commit on the primary key, and nothing of it is sent."""
    day = due_day(config, now)
    if day is None or session.get(DailySummary, day) is not None:
        return 0
    numbers = list(dict.fromkeys(n for n in (normalise(raw, config.country)
                                             for raw in config.daily_summary_to) if n))
    session.add(DailySummary(day=day, queued_at=now, recipients=len(numbers)))
    session.flush()  # the key is taken before any text is queued
    text = text_for(config, session, day)
    for number in numbers:
        queue_message(session, number, text, flush=False)
    session.flush()
    return len(numbers)
