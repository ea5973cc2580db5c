"""Texts marked for a person: the inbox page, marking one handled, the header link, and
the count in /api/v1/health and /metrics."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from helpers import page
from sqlalchemy import select

from gateway.db.models import AuditLog, Message, Modem, utcnow

UNREADABLE = "the text could not be decoded"


@pytest.fixture
def config(config):
    """The UI in English here, whatever the catalogue holds: assertions read English."""
    return dataclasses.replace(config, web_language="en")



@pytest.fixture
def text(db):
    """Store an SMS (inbound unless told), marked for a person when `attention` is given."""
    def add(body="Halo min", attention=None, number="+6281234567890", direction="in"):
        message = Message(direction=direction, number=number, text=body, status="received",
                          attention=attention, created_at=utcnow())
        db.add(message)
        db.commit()
        return message
    return add


def shown(html: str, messages) -> list[int]:
    """Which of `messages` the page lists, in page order."""
    found = [(html.index(f'id="m{m.id}"'), m.id) for m in messages if f'id="m{m.id}"' in html]
    return [message_id for _, message_id in sorted(found)]


def test_inbox_needs_a_login(client):
    response = client.get("/messages/inbox")
    assert response.status_code == 302 and "/login" in response.location


@pytest.mark.parametrize("role", ["viewer", "sales", "operator"])
def test_every_role_reads_the_inbox_newest_first(client, auth, text, role):
    old, new = text("pertama"), text("kedua", number="+6285711112222")
    sent = text("balasan", direction="out")
    auth.login("someone", role)
    html = page(client.get("/messages/inbox"))
    assert shown(html, [old, new, sent]) == [new.id, old.id]
    assert "+6285711112222" in html and "kedua" in html


def test_marked_text_shows_its_reason_escaped(client, auth, text):
    hostile = '<script>alert("x")</script> BAYAR ???'
    marked = text(hostile, attention=f"{UNREADABLE}: <b>?</b>")
    auth.login()
    html = page(client.get("/messages/inbox?attention=1"))
    assert shown(html, [marked]) == [marked.id]
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#34;x&#34;)" in html
    assert UNREADABLE in html and "<b>?</b>" not in html and "&lt;b&gt;?&lt;/b&gt;" in html


def test_attention_filter_lists_only_the_marked(client, auth, text):
    plain, marked = text("Halo"), text("???", attention=UNREADABLE)
    auth.login()
    assert shown(page(client.get("/messages/inbox?attention=1")), [plain, marked]) \
        == [marked.id]
    assert shown(page(client.get("/messages/inbox")), [plain, marked]) == [marked.id, plain.id]
    response = client.get("/messages/inbox?attention=yes")
    assert response.status_code == 400 and "attention must be a whole number from 0 to 1" \
        in page(response)


def test_inbox_pages_with_the_shared_pager_and_keeps_the_filter(client, auth, text):
    messages = [text(f"sms {i}", attention=UNREADABLE) for i in range(55)]
    auth.login()
    html = page(client.get("/messages/inbox?attention=1"))
    assert len(shown(html, messages)) == 50 and "Lebih baru" not in html
    older = f"/messages/inbox?attention=1&amp;before={messages[5].id}"
    assert older in html
    html = page(client.get(older.replace("&amp;", "&")))
    assert shown(html, messages) == [m.id for m in messages[4::-1]]
    assert f"/messages/inbox?attention=1&amp;after={messages[4].id}" in html
    assert "Lebih lama" not in html


def test_marking_handled_clears_the_mark_and_is_audited_once(client, auth, db, text):
    marked = text("???", attention=UNREADABLE)
    auth.login("ani", "operator")
    path = f"/messages/{marked.id}/handled?attention=1"
    response = auth.post(path, {})
    assert response.status_code == 302
    assert response.location == f"/messages/inbox?attention=1#m{marked.id}"
    db.expire_all()
    assert db.get(Message, marked.id).attention is None
    [row] = db.scalars(select(AuditLog).where(AuditLog.action == "message.handled")).all()
    assert (row.target_type, row.target_id) == ("message", marked.id)
    assert json.loads(row.detail) == {"attention": UNREADABLE}
    assert row.user_id is not None
    # A second click (or a colleague's) finds nothing to clear and writes nothing.
    response = auth.post(path, {}, follow_redirects=True)
    assert "was already handled" in page(response)
    assert len(db.scalars(select(AuditLog).where(AuditLog.action == "message.handled")).all()) \
        == 1


@pytest.mark.parametrize("role", ["admin", "supervisor"])
def test_admin_and_supervisor_may_mark_handled(client, auth, db, text, role):
    marked = text("???", attention=UNREADABLE)
    auth.login("boss", role)
    assert "Mark handled" in page(client.get("/messages/inbox"))
    assert auth.post(f"/messages/{marked.id}/handled", {}).status_code == 302
    db.expire_all()
    assert db.get(Message, marked.id).attention is None


@pytest.mark.parametrize("role", ["sales", "viewer"])
def test_others_read_but_cannot_mark_handled(client, auth, db, text, role):
    marked = text("???", attention=UNREADABLE)
    auth.login("someone", role)
    html = page(client.get("/messages/inbox"))
    assert UNREADABLE in html and "Mark handled" not in html
    assert auth.post(f"/messages/{marked.id}/handled", {}).status_code == 403
    db.expire_all()
    assert db.get(Message, marked.id).attention == UNREADABLE


def test_marking_handled_needs_the_csrf_token(client, auth, db, text):
    marked = text("???", attention=UNREADABLE)
    auth.login()
    assert client.post(f"/messages/{marked.id}/handled").status_code == 400
    db.expire_all()
    assert db.get(Message, marked.id).attention == UNREADABLE


def test_only_an_inbound_text_can_be_handled(client, auth, text):
    sent = text("balasan", direction="out")
    auth.login()
    response = auth.post(f"/messages/{sent.id}/handled", {})
    assert response.status_code == 404 and "no inbound text" in page(response)


def test_header_links_to_the_marked_texts_with_their_count(client, auth, db, text):
    text("Halo")
    auth.login()
    assert "To look at:" not in page(client.get("/"))
    first = text("???", attention=UNREADABLE)
    text("!!!", attention="no ticket could be opened")
    for path in ("/", "/payments", "/messages/inbox"):
        html = page(client.get(path))
        assert 'href="/messages/inbox?attention=1" class="attention">To look at: 2 texts' in html
    auth.post(f"/messages/{first.id}/handled", {})
    assert "To look at: 1 texts" in page(client.get("/"))


# --- health and metrics -----------------------------------------------------------------

def test_health_counts_marked_texts_and_is_degraded_while_any_wait(client, db, text):
    db.add(Modem(name="modem1", status="up", signal_percent=80,
                 last_seen=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    db.commit()
    text("Halo")
    body = client.get("/api/v1/health").json
    assert body["status"] == "ok" and body["attention"] == 0
    text("???", attention=UNREADABLE)
    text("keluar", direction="out")
    body = client.get("/api/v1/health").json
    assert body["status"] == "degraded" and body["attention"] == 1


def test_health_stays_down_when_no_modem_can_send_with_marked_texts(client, text):
    text("???", attention=UNREADABLE)
    body = client.get("/api/v1/health").json
    assert body["status"] == "down" and body["attention"] == 1


def test_metrics_has_the_attention_gauge(client, text):
    assert "helpdesk_messages_attention 0.0" in page(client.get("/metrics"))
    text("???", attention=UNREADABLE)
    text("!!!", attention=UNREADABLE)
    metrics = page(client.get("/metrics"))
    assert "# TYPE helpdesk_messages_attention gauge" in metrics
    assert "helpdesk_messages_attention 2.0" in metrics


def test_the_unfiltered_inbox_says_so_while_texts_are_marked(client, auth, text):
    """The header's count of marked texts once leaked into the page's own `marked`."""
    text("Halo")
    text("???", attention=UNREADABLE)
    auth.login()
    html = page(client.get("/messages/inbox"))
    assert "<strong>All texts in</strong>" in html
    assert '<a href="/messages/inbox?attention=1">Marked for a person</a>' in html
