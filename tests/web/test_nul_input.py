"""A NUL (U+0000) anywhere in a request is a 400 with words on every database, never a
500 from PostgreSQL (whose text cannot hold one) and never stored on the others."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.db.models import Message, TicketEvent


def assert_refused(response):
    assert response.status_code == 400
    text = response.json["error"] if response.is_json else response.get_data(as_text=True)
    assert "U+0000" in text and "Traceback" not in text


def test_ui_forms_with_a_nul_are_refused(client, auth, db, make_ticket):
    ticket = make_ticket()
    auth.login()
    assert_refused(auth.post(f"/tickets/{ticket.id}/reply", {"text": "Halo\x00 kak"}))
    assert_refused(auth.post(f"/tickets/{ticket.id}/note", {"text": "\x00"}))
    assert_refused(auth.post(f"/tickets/{ticket.id}/reply", {"text": "Halo", "x\x00": "1"}))
    db.expire_all()
    assert db.scalar(select(Message).where(Message.direction == "out")) is None
    assert db.scalar(select(TicketEvent).where(TicketEvent.kind == "note")) is None
    assert auth.post(f"/tickets/{ticket.id}/note", {"text": "tanpa NUL"}).status_code == 302
    assert db.scalar(select(TicketEvent.detail).where(TicketEvent.kind == "note")) == "tanpa NUL"


@pytest.mark.parametrize("path", ["/tickets?q=pulsa%00", "/tickets?status=new&q=a&q=%00",
                                  "/templates/he%00lp/id"])
def test_ui_queries_and_paths_with_a_nul_are_refused(client, auth, path):
    auth.login("admin", "admin")
    assert_refused(client.get(path))


def test_login_with_a_nul_is_refused(client, auth):
    response = client.post("/login", data={"name": "admin\x00", "password": "x",
                                           "csrf_token": auth.csrf_token()})
    assert_refused(response)


@pytest.mark.parametrize("body", [{"to": "081234567890", "text": "Halo\x00"},
                                  {"to": "0812\x00", "text": "Halo"},
                                  {"to": "081234567890", "text": "Halo", "x": [{"y": "\x00"}]}])
def test_api_json_with_a_nul_is_400_json(client, db, api_headers, queued, body):
    response = client.post("/api/v1/messages", json=body, headers=api_headers)
    assert set(response.json) == {"error"}
    assert_refused(response)
    assert db.scalar(select(Message)) is None and queued == []
    assert_refused(client.get("/api/v1/messages?number=%00", headers=api_headers))
