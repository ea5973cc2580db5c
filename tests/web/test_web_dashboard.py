"""The dashboard at `/` and its JSON twin: the day's figures, right, escaped, cheap."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
from helpers import page
from sqlalchemy import event, select

from gateway.db.models import Contact, Message, Modem, Order, Payment, Ticket, User, utcnow
from gateway.desk import dashboard


@pytest.fixture
def config(config):
    """The UI in English here, whatever the catalogue holds: assertions read English."""
    return dataclasses.replace(config, web_language="en")



def figures(client) -> dict:
    response = client.get("/dashboard.json")
    assert response.status_code == 200 and response.is_json
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_json()


def contact(db, phone="+6281234567890") -> Contact:
    found = db.scalar(select(Contact).where(Contact.phone == phone))
    if found is None:
        found = Contact(phone=phone, name="Budi")
        db.add(found)
        db.flush()
    return found


def ticket(db, kind, age: dt.timedelta, status="open", answered=False) -> Ticket:
    created = utcnow() - age
    row = Ticket(kind=kind, status=status, contact_id=contact(db).id, created_at=created,
                 first_response_at=created + dt.timedelta(minutes=1) if answered else None)
    db.add(row)
    db.flush()
    return row


def out(db, status, number="+6281234567890", **fields) -> Message:
    row = Message(direction="out", number=number, text=fields.pop("text", "Halo"),
                  status=status, created_at=utcnow(), **fields)
    db.add(row)
    db.flush()
    return row


@pytest.mark.parametrize("path", ["/", "/dashboard.json"])
def test_dashboard_needs_a_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize("role", ["admin", "supervisor", "operator", "sales", "viewer"])
def test_every_role_sees_the_dashboard(client, auth, role):
    auth.login("someone", role)
    html = page(client.get("/"))
    assert "<h1>Dashboard</h1>" in html and 'data-dashboard="/dashboard.json"' in html
    assert '<script src="/static/dashboard.js"></script>' in html
    assert figures(client)["figures"]["tickets.all.all"] == "0"


def test_open_tickets_are_counted_by_kind_and_age_band(client, auth, db):
    ticket(db, "order", dt.timedelta(minutes=5))
    ticket(db, "order", dt.timedelta(minutes=50), status="new")
    ticket(db, "order", dt.timedelta(hours=5), status="pending", answered=True)
    ticket(db, "complaint", dt.timedelta(days=3))
    ticket(db, "complaint", dt.timedelta(days=30), answered=True)
    ticket(db, "complaint", dt.timedelta(minutes=1), status="resolved")  # not open
    ticket(db, "question", dt.timedelta(days=2), status="closed")  # not open
    db.commit()
    auth.login()
    shown = figures(client)["figures"]
    assert [shown[f"tickets.order.{band}"] for band in ("hour", "day", "week", "older", "all")] \
        == ["2", "1", "0", "0", "3"]
    assert [shown[f"tickets.complaint.{band}"] for band in ("hour", "day", "week", "older")] \
        == ["0", "0", "1", "1"]
    assert shown["tickets.question.all"] == "0" and shown["tickets.all.all"] == "5"
    assert shown["tickets.all.hour"] == "2" and shown["tickets.all.older"] == "1"
    # waiting for a first answer: the three no person has answered, the oldest 3 days
    assert shown["waiting"] == "3" and shown["waiting_age"] == "oldest waits 3 days"


def test_orders_today_count_from_the_shops_midnight(client, auth, db, config):
    now = utcnow()
    midnight = dashboard.start_of_day(now, config.timezone)
    assert midnight <= now < midnight + dt.timedelta(days=1)
    assert (midnight + dt.timedelta(hours=7)).hour == 0  # Jakarta is UTC+7
    buyer = contact(db)
    for total, created in [(51_037, now), (25_500, midnight),
                           (99_000, midnight - dt.timedelta(seconds=1))]:  # yesterday
        db.add(Order(contact_id=buyer.id, status="awaiting_payment", total=total,
                     created_at=created))
    db.commit()
    auth.login()
    shown = figures(client)["figures"]
    assert (shown["orders_today"], shown["orders_today_total"]) == ("2", "Rp 76.537")


def test_payments_outbox_and_marked_texts_are_counted(client, auth, db):
    payer = contact(db)
    for amount, status in [(51_037, "unverified"), (1_000_000, "unverified"),
                           (20_000, "confirmed"), (5_000, "rejected")]:
        db.add(Payment(contact_id=payer.id, amount=amount, status=status, created_at=utcnow()))
    for status in ["queued", "queued", "sending", "failed", "unknown", "unknown", "unknown",
                   "sent", "delivered"]:
        out(db, status)
    db.add(Message(direction="in", number="+6281234567890", text="???", status="received",
                   attention="the text could not be decoded", created_at=utcnow()))
    db.commit()
    auth.login()
    shown = figures(client)["figures"]
    assert (shown["payments_waiting"], shown["payments_waiting_total"]) == ("2", "Rp 1.051.037")
    assert [shown[f"outbox.{s}"] for s in ("queued", "sending", "failed", "unknown")] \
        == ["2", "1", "1", "3"]
    assert shown["attention"] == "1"
    html = page(client.get("/"))
    assert '<span data-k="payments_waiting_total">Rp 1.051.037</span>' in html
    assert '<span data-k="outbox.unknown">3</span>' in html


@pytest.mark.parametrize("signal,seen_ago,status,colour", [
    (80, 10, "up", "green"), (20, 10, "up", "yellow"), (80, 3600, "up", "red"),
    (80, 10, "down", "red")])
def test_each_modem_is_a_traffic_light_with_signal_and_last_seen(client, auth, db, signal,
                                                                  seen_ago, status, colour):
    db.add(Modem(name="modem1", status=status, signal_percent=signal,
                 last_seen=utcnow() - dt.timedelta(seconds=seen_ago)))
    db.commit()
    auth.login()
    [modem] = figures(client)["modems"]
    assert (modem["name"], modem["health"], modem["signal"]) == ("modem1", colour, f"{signal} %")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", modem["last_seen"])
    html = page(client.get("/"))
    assert f'<span class="light {colour}" data-m="light"></span> modem1' in html
    assert f'<td data-m="signal">{signal} %</td>' in html


def test_a_modem_never_seen_is_red(client, auth):
    auth.login()
    [modem] = figures(client)["modems"]
    assert (modem["health"], modem["last_seen"], modem["signal"]) == ("red", "never", "-")


def test_hostile_strings_are_escaped_on_the_page_and_in_json(client, auth, db):
    hostile = "<script>x</script>"
    ticket(db, hostile[:16], dt.timedelta(minutes=1))  # a kind the code never wrote
    db.commit()
    auth.login("<b>ani</b>", "operator")
    html = page(client.get("/"))
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/scr" in html
    assert "<b>ani</b>" not in html and "&lt;b&gt;ani&lt;/b&gt;" in html
    # JSON is data: the script puts it in place as text (textContent), never as markup.
    response = client.get("/dashboard.json")
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_json()["figures"][f"tickets.{hostile[:16]}.all"] == "1"


def test_the_figures_take_the_same_few_queries_however_much_there_is(client, auth, db,
                                                                     statements):
    auth.login()

    def count():
        with statements() as seen:
            figures(client)
        return len(seen)

    few = count()
    for i in range(30):
        ticket(db, "order", dt.timedelta(hours=i))
        out(db, "failed")
        db.add(Order(contact_id=contact(db).id, total=1000 + i, created_at=utcnow()))
    db.commit()
    assert count() == few <= 10, few


# The index each of the dashboard's counts must be answered from (SQLite's plan names it).
PLANS = {
    "FROM tickets": "ix_tickets_status_kind_created_at_first_response_at",
    "FROM messages WHERE messages.direction = ? AND messages.status IN":
        "ix_messages_direction_status_next_attempt_at",
    "FROM messages WHERE messages.direction = ? AND messages.attention IS NOT NULL":
        "ix_messages_attention\\w*",  # whichever index of the marked texts there is
    "FROM orders": "ix_orders_created_at",
    "FROM payments": "ix_payments_status_id",
}


def test_the_counts_are_answered_from_indexes(db, config, engine):
    """The plans of the dashboard's own statements: each reads an index, not the table
    (only the modems table, a row per configured modem, is read whole)."""
    seen = []

    def before(_conn, _cursor, statement, parameters, *_args):
        seen.append((" ".join(statement.split()), parameters))

    event.listen(engine, "before_cursor_execute", before)
    try:
        dashboard.summary(db, config, utcnow())
    finally:
        event.remove(engine, "before_cursor_execute", before)
    db.rollback()
    counts = [(s, p) for s, p in seen if "FROM modems" not in s]
    assert len(counts) == len(PLANS), counts
    with engine.connect() as conn:
        for statement, parameters in counts:
            if engine.dialect.name == "sqlite":
                [index] = [i for fragment, i in PLANS.items() if fragment in statement]
                plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, parameters))
                assert re.search(rf"USING (COVERING )?INDEX {index}\b", plan), (statement, plan)
            elif engine.dialect.name == "postgresql":
                # A few rows cost less read whole; with that made dear, the planner still
                # reads the table unless an index answers.
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                plan = " ".join(row[0] for row in conn.exec_driver_sql(
                    "EXPLAIN " + statement, parameters))
                assert "Seq Scan" not in plan and "Index" in plan, (statement, plan)
            else:
                rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).mappings().all()
                assert all(row["type"] != "ALL" and row["key"] for row in rows), (statement, rows)


def test_page_language_is_the_users(client, auth, db):
    auth.login("ani", "operator")
    assert '<html lang="en">' in page(client.get("/"))
    db.scalar(select(User).where(User.name == "ani")).language = "id"
    db.commit()
    html = page(client.get("/"))
    assert "<html lang=\"id\">" in html


def test_main_pages_weigh_under_100_kb_with_their_css_and_js(client, auth, db, app):
    for _ in range(50):  # a full first page of each list
        db.add(Message(direction="in", number="+6281234567890", text="Halo min " * 20,
                       status="received", created_at=utcnow()))
    db.commit()
    auth.login("ani", "admin")
    static = sum(len(client.get(f"/static/{name}").data) for name in ("style.css", "dashboard.js"))
    for path in ("/", "/messages/inbox", "/messages/outbox", "/messages/sent", "/payments"):
        weight = len(client.get(path).data) + static
        assert weight < 100_000, (path, weight)
