"""The ticket queue and page: roles, CSRF, escaping, replying, status changes, calls.
(Login and lockout: test_web_auth.py.)"""
from __future__ import annotations

import dataclasses
import json
import re

import pytest
from conftest import AuthActions
from helpers import page
from sqlalchemy import select

from gateway.db.models import AuditLog, Message, Ticket, TicketEvent, User


@pytest.fixture
def config(config):
    """English pages, so the assertions read the msgids whatever the catalogue says."""
    return dataclasses.replace(config, web_language="en")



# --- ticket list ---------------------------------------------------------------------

def test_ticket_list_shows_number_contact_kind_status(client, auth, make_ticket):
    ticket = make_ticket(name="Budi Santoso", kind="complaint")
    auth.login()
    html = page(client.get("/tickets"))
    for expected in (f"#{ticket.number}", "+6281234567890", "Budi Santoso", "complaint", "new"):
        assert expected in html


def test_ticket_list_filters_and_search(client, auth, make_ticket):
    order = make_ticket(kind="order", text="PESAN KP01 2")
    other = make_ticket(phone="+6285711112222", kind="complaint", status="pending",
                        text="Kopi basi")
    closed = make_ticket(phone="+6285733334444", status="closed", text="terima kasih")
    auth.login()

    def shown(query):
        html = page(client.get("/tickets" + query))
        return {t.id for t in (order, other, closed) if f'href="/tickets/{t.id}"' in html}

    assert shown("") == {order.id, other.id}  # open work by default
    assert shown("?status=all") == {order.id, other.id, closed.id}
    assert shown("?status=closed") == {closed.id}
    assert shown("?kind=complaint") == {other.id}
    assert shown("?q=0857-1111-2222") == {other.id}  # a phone, as a person types it
    assert shown("?q=basi") == {other.id}  # text of a message
    assert shown(f"?status=all&q=%23{closed.id}") >= {closed.id}  # a ticket number


# --- ticket page ---------------------------------------------------------------------

def test_hostile_sms_text_is_escaped(client, auth, make_ticket):
    ticket = make_ticket(text="<script>alert(1)</script>", name="<b>Budi</b>")
    auth.login()
    html = page(client.get(f"/tickets/{ticket.id}"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "<b>Budi</b>" not in html
    assert "<b>Budi</b>" not in page(client.get("/tickets?q=Budi"))


def test_reply_queues_an_outbound_message(client, auth, db, make_ticket, queued):
    ticket = make_ticket()
    auth.login()
    response = auth.post(f"/tickets/{ticket.id}/reply", {"text": "Baik,\r\nkami cek dulu."})
    assert response.status_code == 302

    db.expire_all()
    out = db.scalar(select(Message).where(Message.direction == "out"))
    assert (out.number, out.text, out.status, out.ticket_id, out.contact_id, out.modem) == (
        "+6281234567890", "Baik,\nkami cek dulu.", "queued", ticket.id, ticket.contact_id,
        "modem1")
    operator = db.scalar(select(User).where(User.name == "operator"))
    assert out.user_id == operator.id
    assert queued == [out.id]
    ticket = db.get(Ticket, ticket.id)
    assert ticket.first_response_at is not None
    assert ticket.status == "open"
    kinds = db.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert "message_out" in kinds
    assert db.scalar(select(AuditLog).where(AuditLog.action == "ticket.reply")) is not None

    html = page(client.get(response.location))
    assert "kami cek dulu." in html and "queued" in html


def test_reply_without_csrf_token_is_refused(client, auth, db, make_ticket, queued):
    ticket = make_ticket()
    auth.login()
    response = client.post(f"/tickets/{ticket.id}/reply", data={"text": "Halo"})
    assert response.status_code == 400
    db.expire_all()
    assert db.scalar(select(Message).where(Message.direction == "out")) is None
    assert queued == []


def test_empty_reply_is_refused_and_nothing_queued(client, auth, db, make_ticket):
    ticket = make_ticket()
    auth.login()
    response = auth.post(f"/tickets/{ticket.id}/reply", {"text": "   "})
    assert response.status_code == 400
    assert "The reply was not queued: the text is empty" in page(response)
    assert db.scalar(select(Message).where(Message.direction == "out")) is None


def test_viewer_can_read_but_not_reply_or_change_status(client, auth, db, make_ticket):
    ticket = make_ticket()
    auth.login("lihat", role="viewer")
    html = page(client.get(f"/tickets/{ticket.id}"))
    assert "pesanan saya belum sampai" in html
    assert "/reply" not in html
    assert auth.post(f"/tickets/{ticket.id}/reply", {"text": "Halo"}).status_code == 403
    assert auth.post(f"/tickets/{ticket.id}/status", {"status": "closed"}).status_code == 403
    db.expire_all()
    assert db.scalar(select(Message).where(Message.direction == "out")) is None
    assert db.get(Ticket, ticket.id).status == "new"


def test_status_change_is_recorded(client, auth, db, make_ticket):
    ticket = make_ticket()
    auth.login("ketua", role="supervisor")
    assert auth.post(f"/tickets/{ticket.id}/status", {"status": "resolved"}).status_code == 302
    db.expire_all()
    ticket = db.get(Ticket, ticket.id)
    assert ticket.status == "resolved" and ticket.closed_at is not None
    event = db.scalar(select(TicketEvent).where(TicketEvent.kind == "status"))
    assert json.loads(event.detail) == {"from": "new", "to": "resolved"}
    audit = db.scalar(select(AuditLog).where(AuditLog.action == "ticket.status"))
    assert audit.target_id == ticket.id
    assert auth.post(f"/tickets/{ticket.id}/status", {"status": "bogus"}).status_code == 400


def test_unknown_ticket_is_404(client, auth):
    auth.login()
    assert client.get("/tickets/12345").status_code == 404


def test_pages_forbid_foreign_scripts(client, auth):
    auth.login()
    assert "default-src 'self'" in client.get("/tickets").headers["Content-Security-Policy"]


# --- click-to-call ----------------------------------------------------------------------

def test_click_to_call_rings_the_operator_then_the_customer(make_app, make_ticket, make_user,
                                                           db):

    placed = []
    app = make_app(TESTING=True, click_to_call=lambda user, number: placed.append(
        (user, number)) or 41)
    client = app.test_client()
    auth = AuthActions(client, make_user, db)
    auth.login("ani", "operator")
    user = db.scalar(select(User).where(User.name == "ani"))
    ticket = make_ticket(phone="+6281299998888")
    response = auth.post(f"/tickets/{ticket.id}/call", {})
    assert response.status_code == 302
    assert placed == [(user.id, "+6281299998888")]
    page = client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Your phone rings first" in page


def test_click_to_call_failure_and_missing_ami_are_said_plainly(make_app, make_ticket,
                                                                make_user, db):
    from gateway.desk.calls import CallFailed as AMIError
    def refused(user, number):
        raise AMIError("Asterisk is not connected")

    for click_to_call, expected in ((refused, "Asterisk is not connected"),
                                    (None, "[ami]")):
        client = make_app(TESTING=True, click_to_call=click_to_call).test_client()
        auth = AuthActions(client, make_user, db)
        auth.login("ani", "operator")
        ticket = make_ticket()
        auth.post(f"/tickets/{ticket.id}/call", {})
        assert expected in client.get(f"/tickets/{ticket.id}").get_data(as_text=True)


def test_viewer_cannot_place_calls(make_app, make_ticket, make_user, db):

    placed = []
    client = make_app(TESTING=True, click_to_call=lambda u, n: placed.append(n)).test_client()
    auth = AuthActions(client, make_user, db)
    auth.login("lihat", "viewer")
    ticket = make_ticket()
    assert auth.post(f"/tickets/{ticket.id}/call", {}).status_code == 403
    assert placed == []


def test_ticket_list_pages_back_and_forth_keeping_its_filters(client, auth, db, make_ticket):
    # All waiting, all normal: the queue is the longest wait first, the first 50 made.
    tickets = [make_ticket(phone=f"+62812{i:07d}", kind="complaint") for i in range(53)]
    make_ticket(phone="+6281299999999", kind="question")  # filtered out on every page
    auth.login()

    def link(html, rel):
        found = re.search(rf'href="(/tickets\?[^"]*)" rel="{rel}"', html)
        return found.group(1).replace("&amp;", "&") if found else None

    def shown(html):
        return [int(i) for i in re.findall(r'href="/tickets/(\d+)"', html)]

    html = page(client.get("/tickets?kind=complaint&status=all"))
    assert shown(html) == [t.id for t in tickets[:50]] and link(html, "prev") is None
    older = link(html, "next")
    assert "kind=complaint" in older and "status=all" in older and "before=" in older
    html = page(client.get(older))
    assert shown(html) == [t.id for t in tickets[50:]] and link(html, "next") is None
    newer = link(html, "prev")
    assert "kind=complaint" in newer and "after=" in newer
    html = page(client.get(newer))
    assert shown(html) == [t.id for t in tickets[:50]]
