"""The report figures of gateway.reports.queries on a known data set: exact counts,
medians and 90th percentiles, grouping by day, week and month with the edges of the
Asia/Jakarta day (UTC+7). SQLite, MariaDB and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest

from gateway.db.models import (
    Call,
    Contact,
    Message,
    Order,
    OrderItem,
    Payment,
    Product,
    SlaTarget,
    Ticket,
)
from gateway.desk.users import create_user
from gateway.reports import queries
from gateway.reports.queries import Range, ReportError, parse_range

PASSWORD = "correct horse battery"
FIRST, LAST = dt.date(2026, 3, 1), dt.date(2026, 3, 14)  # 1 March 2026 is a Sunday
NOW = dt.datetime(2026, 3, 20)


def local(*args) -> dt.datetime:
    """A Jakarta wall-clock time as the naive UTC the database keeps."""
    return dt.datetime(*args) - dt.timedelta(hours=7)


def period(grouping="day") -> Range:
    return Range(FIRST, LAST, grouping, "Asia/Jakarta")


@pytest.fixture
def contact(db):
    row = Contact(phone="+6281234567890", name="Budi")
    db.add(row)
    db.commit()
    return row


def _message(db, when, direction="in", modem="modem1"):
    db.add(Message(direction=direction, number="+6281234567890", text="x",
                   status="received" if direction == "in" else "sent", modem=modem,
                   created_at=when))


@pytest.fixture
def texts(db):
    for when in (local(2026, 3, 1, 0, 0), local(2026, 3, 1, 23, 59), local(2026, 3, 2, 0, 0),
                 local(2026, 2, 28, 23, 59), local(2026, 3, 15, 0, 0)):
        _message(db, when)
    _message(db, local(2026, 3, 2, 9), "out")
    _message(db, local(2026, 3, 2, 9, 5), "out")
    _message(db, local(2026, 3, 3, 9), modem="modem2")
    _message(db, local(2026, 3, 14, 23, 59), "out", modem=None)  # still queued
    db.commit()


@pytest.mark.parametrize("grouping, rows", [
    ("day", [["2026-03-01", "modem1", 2, 0], ["2026-03-02", "modem1", 1, 2],
             ["2026-03-03", "modem2", 1, 0], ["2026-03-14", "(none)", 0, 1]]),
    ("week", [["2026-02-23", "modem1", 2, 0], ["2026-03-02", "modem1", 1, 2],
              ["2026-03-02", "modem2", 1, 0], ["2026-03-09", "(none)", 0, 1]]),
    ("month", [["2026-03-01", "(none)", 0, 1], ["2026-03-01", "modem1", 3, 2],
               ["2026-03-01", "modem2", 1, 0]]),
])
def test_sms_traffic_by_modem_and_local_day_week_month(db, texts, grouping, rows):
    report = queries.sms_traffic(db, period(grouping))
    assert report.rows == rows
    assert report.columns == ["period", "modem", "in", "out"]
    if grouping == "week":
        assert report.categories == ["2026-02-23", "2026-03-02", "2026-03-09"]
        assert report.series == {"in": [2, 2, 0], "out": [0, 2, 1]}
    if grouping == "day":
        assert len(report.categories) == 14  # the empty days are there, as zeros
        assert report.series["in"][:4] == [2, 1, 1, 0]


@pytest.fixture
def desk(db, contact):
    """Tickets with SLA targets for complaints (30 min first response, 240 resolution)."""
    ani = create_user(db, "ani", "operator", PASSWORD)
    budi = create_user(db, "budi", "supervisor", PASSWORD)
    db.add(SlaTarget(kind="complaint", first_response_minutes=30, resolution_minutes=240))
    t0 = local(2026, 3, 2, 9)
    minutes = dt.timedelta(minutes=1)

    def ticket(kind, who, first=None, closed=None, status=None, created=t0, **extra):
        row = Ticket(kind=kind, contact_id=contact.id, assignee_id=who.id if who else None,
                     created_at=created,
                     first_response_at=None if first is None else created + first * minutes,
                     closed_at=None if closed is None else created + closed * minutes,
                     status=status or ("resolved" if closed is not None else "open"), **extra)
        db.add(row)
        db.flush()
        return row
    t1 = ticket("complaint", ani, 10, 100)            # both met
    ticket("complaint", ani, 50, 300, status="closed")  # both late
    ticket("complaint", ani, 20)                      # first met; resolution overdue now
    ticket("question", budi, 5, 60)                   # no target for questions
    ticket("question", None)                          # waiting
    # opened one minute before local midnight, resolved two minutes later: two days
    ticket("question", None, closed=2, created=local(2026, 3, 1, 23, 59))
    ticket("complaint", None, 1, 2, status="closed", merged_into_id=t1.id)
    db.commit()


def test_ticket_volume_opened_and_closed_by_kind(db, desk):
    report = queries.ticket_volume(db, period())
    assert report.rows == [["2026-03-01", "question", 1, 0],
                           ["2026-03-02", "complaint", 4, 2],  # the merged one opened only
                           ["2026-03-02", "question", 2, 2]]
    assert report.series["opened"][:2] == [1, 6]
    assert report.series["closed"][:2] == [0, 4]
    month = queries.ticket_volume(db, period("month"))
    assert month.rows == [["2026-03-01", "complaint", 4, 2], ["2026-03-01", "question", 3, 2]]


def test_response_times_per_operator_against_the_sla(db, desk):
    report = queries.response_times(db, period(), now=NOW)
    by_name = {row[0]: dict(zip(report.columns, row)) for row in report.rows}
    assert list(by_name) == ["ani", "budi", "(unassigned)"]
    ani = by_name["ani"]
    assert ani["tickets"] == 3
    assert (ani["first_response_median"], ani["first_response_p90"]) == (20.0, 50.0)
    assert ani["first_response_sla_met_pct"] == 66.7   # 10 and 20 of 30 minutes; 50 late
    assert ani["resolved"] == 2
    assert (ani["resolution_median"], ani["resolution_p90"]) == (200.0, 300.0)
    assert ani["resolution_sla_met_pct"] == 33.3       # 100 met, 300 late, one overdue
    budi = by_name["budi"]
    assert (budi["tickets"], budi["first_response_median"], budi["resolution_median"]) == (
        1, 5.0, 60.0)
    assert budi["first_response_sla_met_pct"] is None  # no target for questions
    nobody = by_name["(unassigned)"]
    assert (nobody["tickets"], nobody["first_response_median"], nobody["resolved"],
            nobody["resolution_median"]) == (2, None, 1, 2.0)


def test_a_running_clock_counts_neither_way(db, desk):
    # On the day itself the open complaint's 240 minutes are not over yet.
    report = queries.response_times(db, period(), now=local(2026, 3, 2, 10))
    ani = dict(zip(report.columns, report.rows[0]))
    assert ani["resolution_sla_met_pct"] == 50.0


def test_percentile_is_nearest_rank():
    assert queries.percentile([], 90) is None
    assert queries.percentile([7], 90) == 7
    assert queries.percentile(list(range(1, 11)), 90) == 9
    assert queries.percentile(list(range(1, 12)), 90) == 10


@pytest.fixture
def shop(db, contact):
    xl = Product(code="XL25", name="Pulsa XL 25rb", price=25_000)
    kp = Product(code="KP01", name="Kopi", price=10_000)
    db.add_all([xl, kp])
    db.flush()

    def order(status, when, *items):
        row = Order(contact_id=contact.id, status=status, created_at=when,
                    total=sum(q * p.price for p, q in items))
        db.add(row)
        db.flush()
        for product, quantity in items:
            db.add(OrderItem(order_id=row.id, product_id=product.id, code=product.code,
                             quantity=quantity, unit_price=product.price))
        return row
    day = local(2026, 3, 2, 10)
    order("paid", day, (xl, 2))
    order("awaiting_payment", day, (xl, 1), (kp, 3))
    order("cancelled", day, (xl, 5))
    order("paid", local(2026, 3, 9, 23, 59), (kp, 1))
    order("paid", local(2026, 3, 15, 0, 0), (kp, 9))  # after the range
    for status, waited in (("confirmed", 30), ("rejected", 90), ("confirmed", 10),
                           ("unverified", None)):
        db.add(Payment(contact_id=contact.id, amount=50_012, status=status, created_at=day,
                       decided_at=None if waited is None else day + dt.timedelta(
                           minutes=waited)))
    db.commit()


def test_sales_per_product_with_revenue_of_paid_orders(db, shop):
    report = queries.sales(db, period())
    assert report.rows == [["2026-03-02", "KP01", 1, 3, 0],
                           ["2026-03-02", "XL25", 2, 3, 50_000],
                           ["2026-03-09", "KP01", 1, 1, 10_000]]
    assert report.money == ("revenue",)
    week = queries.sales(db, period("week"))
    assert week.series["revenue"] == [0, 50_000, 10_000]


def test_payments_confirmed_rejected_waiting_and_how_long(db, shop):
    report = queries.payment_status(db, period(), now=NOW)
    row = dict(zip(report.columns, report.rows[0]))
    assert len(report.rows) == 1
    assert (row["period"], row["confirmed"], row["rejected"], row["waiting"]) == (
        "2026-03-02", 2, 1, 1)
    assert (row["wait_median"], row["wait_p90"]) == (30.0, 90.0)
    assert row["oldest_waiting"] == round((NOW - local(2026, 3, 2, 10)).total_seconds() / 60, 1)


def test_calls_answered_missed_and_called_back(db):
    t = local(2026, 3, 2, 10)
    hour = dt.timedelta(hours=1)
    db.add_all([
        Call(number="+62811", direction="in", started_at=t, answered_at=t, ended_at=t + hour),
        Call(number="+62812", direction="in", started_at=t, ended_at=t, disposition="missed"),
        Call(number="+62812", direction="out", started_at=t + hour, ended_at=t + hour),
        Call(number="+62813", direction="out", started_at=t - hour, ended_at=t - hour),
        Call(number="+62813", direction="in", started_at=t, ended_at=t,
             disposition="out_of_hours"),
        Call(number="+62814", direction="in", started_at=t),  # ringing now: neither yet
    ])
    db.commit()
    report = queries.call_outcomes(db, period())
    assert report.rows == [["2026-03-02", 1, 2, 1]]


def test_run_names_every_report(db):
    for name in queries.REPORTS:
        report = queries.run(db, name, period("week"))
        assert report.name == name and report.rows == []
    with pytest.raises(ReportError, match="unknown report 'nope'"):
        queries.run(db, "nope", period())


def test_parse_range_reads_what_a_person_types():
    today = dt.date(2026, 3, 14)
    assert parse_range(None, None, None, today=today) == Range(
        dt.date(2026, 3, 8), today, "day", "Asia/Jakarta")
    assert parse_range("2026-03-01", "2026-03-31", "Month").grouping == "month"
    for args, message in ((("2026-3-x", None), "YYYY-MM-DD"),
                          (("2026-03-05", "2026-03-01"), "starts"),
                          (("2016-01-01", "2026-01-01"), "at most"),
                          (("2026-03-01", "2026-03-02", "year"), "grouping")):
        with pytest.raises(ReportError, match=message):
            parse_range(*args, today=today)


def test_range_is_whole_local_days():
    r = Range(FIRST, LAST, "day", "Asia/Makassar")  # WITA, UTC+8
    assert r.start == dt.datetime(2026, 2, 28, 16)
    assert r.end == dt.datetime(2026, 3, 14, 16)
    assert Range(dt.date(2026, 1, 30), dt.date(2026, 3, 2), "month").buckets() == [
        "2026-01-01", "2026-02-01", "2026-03-01"]


# -- the daily summary -------------------------------------------------------------------

def _summary_config(config, **values):
    import dataclasses

    return dataclasses.replace(config, daily_summary_at="18:00", language="id",
                               daily_summary_to=("0812 1111 2222", "+6281311112222",
                                                 "081211112222"), **values)


def _queued(db):
    from sqlalchemy import select

    db.expire_all()
    return db.scalars(select(Message).where(Message.direction == "out",
                                            Message.status == "queued")
                      .order_by(Message.id)).all()


def test_daily_summary_once_per_day_at_its_hour(db, sessionmaker, config, texts, shop):
    from gateway.db.transaction import in_transaction
    from gateway.reports import summary

    config = _summary_config(config)
    before = len(_queued(db))
    assert in_transaction(sessionmaker, summary.send_due, config,
                          local(2026, 3, 2, 17, 59)) == 0
    assert in_transaction(sessionmaker, summary.send_due, config,
                          local(2026, 3, 2, 18, 0)) == 2  # one number written two ways
    sent = _queued(db)[before:]
    assert sorted(m.number for m in sent) == ["+6281211112222", "+6281311112222"]
    assert sent[0].text == ("Ringkasan 02-03-2026: SMS masuk 1, keluar 2; tiket baru 0, "
                            "selesai 0; pesanan 2, dibayar Rp 50.000; pembayaran menunggu 1; "
                            "telepon tak terjawab 0.")
    # later that evening, and after a restart (a new session, a new job): nothing more
    for when in (local(2026, 3, 2, 18, 1), local(2026, 3, 2, 23, 59)):
        assert in_transaction(sessionmaker, summary.send_due, config, when) == 0
    assert in_transaction(sessionmaker, summary.send_due, config,
                          local(2026, 3, 3, 18, 30)) == 2
    assert len(_queued(db)) == before + 4


def test_daily_summary_needs_numbers(db, sessionmaker, config):
    from gateway.db.transaction import in_transaction
    from gateway.reports import summary

    assert in_transaction(sessionmaker, summary.send_due, config,
                          local(2026, 3, 2, 20)) == 0
    assert _queued(db) == []


def test_the_daemon_job_survives_a_restart_without_sending_twice(db, sessionmaker, config):
    from twisted.internet import task

    from gateway.daemon.database import Database
    from gateway.daemon.periodic import DailySummaryJob

    config = _summary_config(config)
    clock = task.Clock()
    clock.advance((local(2026, 3, 2, 17, 58) - dt.datetime(1970, 1, 1)).total_seconds())
    woken = []
    for _run in range(2):  # the daemon, then the daemon started again
        job = DailySummaryJob(Database(sessionmaker), config, clock,
                              on_queued=lambda: woken.append(1))
        job.startService()
        for _minute in range(5):
            clock.advance(60)
        job.stopService()
    assert len(_queued(db)) == 2 and woken == [1]


@pytest.mark.parametrize("body, message", [
    ({"daily_summary_at": "6pm"}, 'reports.daily_summary_at: must be a time of day written HH:MM'),
    ({"daily_summary_at": "24:00"}, "HH:MM"),
    ({"daily_summary_to": "0812"}, "reports.daily_summary_to: must be a list"),
    ({"daily_summary_to": [812]}, "must be a list of phone numbers"),
    ({"company": "  "}, "reports.company: must be the company's name"),
    ({"compny": "Toko"}, "reports.compny: unknown key"),
])
def test_reports_config_mistakes_are_one_line(body, message):
    from gateway.config import ConfigError, parse

    with pytest.raises(ConfigError, match=message) as caught:
        parse({"reports": body}, "h.toml")
    assert "\n" not in str(caught.value)
    ok = parse({"reports": {"company": "Toko Maju", "daily_summary_at": "07:30",
                            "daily_summary_to": ["0812"]}})
    assert (ok.company, ok.daily_summary_at, ok.daily_summary_to) == (
        "Toko Maju", "07:30", ("0812",))
