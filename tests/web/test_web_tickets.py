"""The operator's desk on the web: the queue's filters, order, claim and assign; the ticket
page's bubbles, delivery states, notes, canned responses, priority, merge and SLA clock;
/canned and /sla; PATCH /api/v1/tickets/<id>. Roles on the server, hostile text escaped."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from pathlib import Path

import pytest
from helpers import page
from sqlalchemy import select

from gateway.db.models import (
    AuditLog,
    CannedResponse,
    Message,
    SlaTarget,
    Ticket,
    TicketEvent,
    User,
    utcnow,
)
from gateway.desk import users

HOSTILE = '<script>alert("x")</script>'
STATIC = Path(__file__).resolve().parents[2] / "helpdesk_web" / "static"


@pytest.fixture
def config(config):
    """English pages, so the assertions read the msgids whatever the catalogue says."""
    return dataclasses.replace(config, web_language="en")



def listed(html: str) -> list[int]:
    """Ticket ids in the queue, in the order shown."""
    return [int(i) for i in re.findall(r'<td><a href="/tickets/(\d+)">', html)]


def user_id(db, name) -> int:
    return db.scalar(select(User.id).where(User.name == name))


def audits(db, action):
    db.expire_all()
    return db.scalars(select(AuditLog).where(AuditLog.action == action)).all()


# --- the queue --------------------------------------------------------------------------

def test_queue_lives_at_tickets(client, auth, make_ticket):
    ticket = make_ticket()
    auth.login()
    html = page(client.get("/tickets"))
    assert f'href="/tickets/{ticket.id}"' in html and 'class="tickets queue"' in html


def test_queue_filters_by_assignee_age_and_priority(client, auth, db, make_ticket, make_user):
    mine, theirs, nobodys = (make_ticket(phone=f"+628120000000{i}") for i in range(3))
    auth.login("ani")
    make_user("budi")
    db.get(Ticket, mine.id).assignee_id = user_id(db, "ani")
    db.get(Ticket, theirs.id).assignee_id = user_id(db, "budi")
    db.get(Ticket, theirs.id).priority = "urgent"
    db.get(Ticket, nobodys.id).created_at = utcnow() - dt.timedelta(hours=5)
    db.commit()

    def shown(query):
        return set(listed(page(client.get("/tickets" + query))))

    assert shown("?assignee=me") == {mine.id}
    assert shown("?assignee=none") == {nobodys.id}
    assert shown(f"?assignee={user_id(db, 'budi')}") == {theirs.id}
    assert shown("?age=4h") == {nobodys.id}
    assert shown("?age=1d") == set()
    assert shown("?priority=urgent") == {theirs.id}
    assert shown("?assignee=nonsense&age=x&priority=y") == {mine.id, theirs.id, nobodys.id}
    assert shown("?q=0812-0000-0002") == {nobodys.id}  # search still by number


def test_queue_shows_waiting_customers_and_urgent_first(client, auth, db, make_ticket):
    answered = make_ticket(phone="+6281200000001")
    waiting = make_ticket(phone="+6281200000002")
    urgent = make_ticket(phone="+6281200000003")
    db.get(Ticket, urgent.id).priority = "urgent"
    db.commit()
    auth.login()
    reply = auth.post(f"/tickets/{answered.id}/reply", {"text": "Baik, kami cek"})
    assert reply.status_code in (302, 303)
    html = page(client.get("/tickets"))
    assert listed(html) == [urgent.id, waiting.id, answered.id]
    assert html.count(' waiting">') == 2  # the two rows marked as waiting


def test_the_queue_keeps_its_order_page_after_page_and_back(client, auth, db, make_ticket):
    now = utcnow()
    made = []
    for i in range(8):  # waits of 8..1 hours; every third one answered; two urgent
        ticket = db.get(Ticket, make_ticket(phone=f"+62812000001{i:02d}").id)
        ticket.waiting_since = None if i % 3 == 2 else now - dt.timedelta(hours=8 - i)
        ticket.priority = "urgent" if i in (4, 5) else "normal"
        made.append(ticket)
    db.commit()
    expected = [t.id for t in sorted(made, key=lambda t: (
        t.waiting_since is None, t.priority != "urgent", t.waiting_since or t.created_at, t.id))]
    auth.login()
    pages, url = [], "/tickets?limit=3"
    while url:
        html = page(client.get(url))
        pages.append(listed(html))
        found = re.search(r'href="([^"]*before=[^"]*)" rel="next"', html)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [i for p in pages for i in p] == expected
    # back up from the last page: the one before it, as it was
    back = re.search(r'href="([^"]*after=[^"]*)" rel="prev"', html).group(1).replace("&amp;", "&")
    assert listed(page(client.get(back))) == pages[1]
    # a ticket answered meanwhile moves down without the next page skipping anyone
    first = page(client.get("/tickets?limit=3"))
    nxt = re.search(r'href="([^"]*before=[^"]*)" rel="next"', first).group(1).replace("&amp;", "&")
    db.get(Ticket, expected[0]).waiting_since = None
    db.commit()
    assert listed(page(client.get(nxt)))[:3] == expected[3:6]
    for bad in ("x", "1.2", "1.2.3.4", "9.99999999999999999999.5"):
        answer = client.get(f"/tickets?before={bad}")
        assert answer.status_code == 400 and b"open the list again" in answer.data


def test_claim_from_the_queue_returns_to_the_list_and_is_audited(client, auth, db,
                                                                 make_ticket):
    ticket = make_ticket()
    auth.login("ani")
    html = page(client.get("/tickets?kind=question"))
    assert f'name="claim" value="{ticket.id}"' in html
    response = auth.post("/tickets/assign", {"claim": str(ticket.id),
                                             "next": "/tickets?kind=question"})
    assert response.status_code == 302 and response.location == "/tickets?kind=question"
    db.expire_all()
    assert db.get(Ticket, ticket.id).assignee_id == user_id(db, "ani")
    [row] = audits(db, "ticket.assign")
    assert json.loads(row.detail) == {"from": None, "to": "ani"}
    # `next` never leads off the queue
    response = auth.post("/tickets/assign", {"claim": str(ticket.id),
                                             "next": "//evil.example/"})
    assert response.location == "/tickets"


def test_claiming_a_colleagues_ticket_is_refused_with_words(client, auth, db, make_ticket,
                                                            make_user):
    ticket = make_ticket()
    make_user("budi")
    db.get(Ticket, ticket.id).assignee_id = user_id(db, "budi")
    db.commit()
    auth.login("ani")
    response = auth.post("/tickets/assign", {"claim": str(ticket.id)}, follow_redirects=True)
    assert f"Not assigned: ticket {ticket.id} is budi&#39;s already" in page(response)
    db.expire_all()
    assert db.get(Ticket, ticket.id).assignee_id == user_id(db, "budi")


def test_assign_ticked_tickets_to_a_user(client, auth, db, make_ticket, make_user):
    a, b, c = (make_ticket(phone=f"+628120000000{i}") for i in range(3))
    make_user("budi")
    auth.login("ani")
    response = auth.post("/tickets/assign", {"ticket": [str(a.id), str(b.id)],
                                             "assignee": str(user_id(db, "budi"))})
    assert response.status_code == 302
    db.expire_all()
    assert [db.get(Ticket, t.id).assignee_id for t in (a, b, c)] == \
        [user_id(db, "budi")] * 2 + [None]
    assert len(audits(db, "ticket.assign")) == 2
    assert auth.post("/tickets/assign", {"ticket": "x", "assignee": ""}).status_code == 400
    assert auth.post("/tickets/assign", {"ticket": str(a.id),
                                         "assignee": "99999"}).status_code == 400
    response = auth.post("/tickets/assign", {"assignee": ""}, follow_redirects=True)
    assert "Tick the tickets to assign first." in page(response)


def test_viewer_sees_the_queue_without_forms_and_cannot_change_anything(client, auth, db,
                                                                        make_ticket):
    ticket = make_ticket()
    auth.login("lihat", "viewer")
    html = page(client.get("/tickets"))
    assert f'href="/tickets/{ticket.id}"' in html and 'name="claim"' not in html
    html = page(client.get(f"/tickets/{ticket.id}"))
    assert "/note" not in html and "/merge" not in html and "/claim" not in html
    for path, data in (("/tickets/assign", {"claim": str(ticket.id)}),
                       (f"/tickets/{ticket.id}/claim", {}),
                       (f"/tickets/{ticket.id}/assign", {"assignee": ""}),
                       (f"/tickets/{ticket.id}/priority", {"priority": "urgent"}),
                       (f"/tickets/{ticket.id}/note", {"text": "x"}),
                       (f"/tickets/{ticket.id}/merge", {"into": "1"})):
        assert auth.post(path, data).status_code == 403, path
    db.expire_all()
    assert db.get(Ticket, ticket.id).priority == "normal"
    assert db.get(Ticket, ticket.id).assignee_id is None


def test_without_a_session_every_desk_page_sends_to_the_login(client, make_ticket):
    ticket = make_ticket()
    for path in ("/tickets", f"/tickets/{ticket.id}", "/canned", "/sla"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.location, path


# --- the ticket page --------------------------------------------------------------------

def test_conversation_bubbles_show_delivery_state_and_sender(client, auth, db, make_ticket):
    ticket = make_ticket()
    auth.login("ani")
    ani = user_id(db, "ani")
    for i, status in enumerate(("queued", "sending", "sent", "delivered", "failed",
                                "unknown")):
        db.add(Message(direction="out", number="+6281234567890", text=f"balasan {status}",
                       status=status, ticket_id=ticket.id, user_id=ani if i else None,
                       created_at=utcnow() + dt.timedelta(seconds=i)))
    db.commit()
    html = page(client.get(f"/tickets/{ticket.id}"))
    assert html.count('class="msg in ') == 1
    for status in ("queued", "sending", "sent", "delivered", "failed", "unknown"):
        bubble = re.search(rf'<article class="msg out state-{status}"[^>]*>(.*?)</article>',
                           html, re.S)
        assert bubble, status
        assert f"balasan {status}" in bubble.group(1)
        assert f'<span class="delivery" title="delivery state">{status}</span>' \
            in bubble.group(1)
        who = "automatic reply" if status == "queued" else "ani"
        assert f'<span class="who">{who}</span>' in bubble.group(1)


def test_notes_are_kept_apart_from_texts_and_escaped(client, auth, db, make_ticket, queued):
    ticket = make_ticket()
    auth.login("ani")
    response = auth.post(f"/tickets/{ticket.id}/note", {"text": HOSTILE})
    assert response.status_code == 302
    html = page(client.get(f"/tickets/{ticket.id}"))
    assert '<aside class="note"' in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html and HOSTILE not in html
    db.expire_all()
    assert db.scalar(select(Message).where(Message.direction == "out")) is None
    assert queued == []
    assert db.scalar(select(TicketEvent.detail).where(TicketEvent.kind == "note")) == HOSTILE
    assert len(audits(db, "ticket.note")) == 1
    response = auth.post(f"/tickets/{ticket.id}/note", {"text": "  "})
    assert response.status_code == 400 and "The note was not saved: the note is empty" \
        in page(response)


def test_claim_assign_and_priority_on_the_ticket_page(client, auth, db, make_ticket,
                                                      make_user):
    ticket = make_ticket()
    make_user("budi")
    auth.login("ani")
    auth.post(f"/tickets/{ticket.id}/claim", {})
    db.expire_all()
    assert db.get(Ticket, ticket.id).assignee_id == user_id(db, "ani")
    auth.post(f"/tickets/{ticket.id}/assign", {"assignee": str(user_id(db, "budi"))})
    db.expire_all()
    assert db.get(Ticket, ticket.id).assignee_id == user_id(db, "budi")
    auth.post(f"/tickets/{ticket.id}/assign", {"assignee": ""})
    db.expire_all()
    assert db.get(Ticket, ticket.id).assignee_id is None
    assert len(audits(db, "ticket.assign")) == 3

    assert auth.post(f"/tickets/{ticket.id}/priority",
                     {"priority": "high"}).status_code == 302
    db.expire_all()
    assert db.get(Ticket, ticket.id).priority == "high"
    response = auth.post(f"/tickets/{ticket.id}/priority", {"priority": "asap"})
    assert response.status_code == 400 and "unknown priority" in page(response)
    assert 'class="priority-high"' in page(client.get(f"/tickets/{ticket.id}"))


def test_merge_from_the_page_moves_the_texts_and_points_the_way(client, auth, db,
                                                                 make_ticket):
    target = make_ticket(text="Pesanan pertama")
    source = make_ticket(text="Pesanan kedua")
    auth.login("ani")
    response = auth.post(f"/tickets/{source.id}/merge", {"into": f"#{target.id}"})
    assert response.status_code == 302 and response.location == f"/tickets/{target.id}"
    html = page(client.get(f"/tickets/{target.id}"))
    assert "Pesanan pertama" in html and "Pesanan kedua" in html
    html = page(client.get(f"/tickets/{source.id}"))
    assert f'Merged into <a href="/tickets/{target.id}">#{target.id}</a>' in html
    assert len(audits(db, "ticket.merge")) == 1

    for into, sentence in ((str(target.id), "a ticket cannot be merged into itself"),
                           ("abc", "write the number of the ticket"),
                           ("99999", "there is no ticket 99999")):
        response = auth.post(f"/tickets/{target.id}/merge", {"into": into},
                             follow_redirects=True)
        assert f"Not merged: {sentence}" in page(response)
    response = auth.post(f"/tickets/{make_ticket().id}/merge", {"into": str(source.id)},
                         follow_redirects=True)
    assert "is closed" in page(response) or "merged into ticket" in page(response)


def test_sla_clock_on_the_ticket_page(client, auth, db, make_ticket):
    db.add(SlaTarget(kind="complaint", first_response_minutes=30, resolution_minutes=600))
    db.commit()
    late = make_ticket(kind="complaint")
    db.get(Ticket, late.id).created_at = utcnow() - dt.timedelta(minutes=45)
    db.commit()
    fresh = make_ticket(phone="+6285711112222", kind="complaint")
    auth.login()
    html = page(client.get(f"/tickets/{late.id}"))
    assert re.search(r'<span class="sla overdue">1[45] min overdue</span>', html)
    assert re.search(r'<span class="sla running">9 h 1[45] min left</span>', html)
    html = page(client.get(f"/tickets/{fresh.id}"))
    assert re.search(r'<span class="sla running">(29|30) min left</span>', html)
    assert "SLA" not in page(client.get(f"/tickets/{make_ticket(kind='order').id}"))
    html = page(client.get("/tickets"))  # the queue shows the clock still ticking
    assert re.search(r'<span class="sla overdue">1[45] min overdue</span>', html)


# --- canned responses -------------------------------------------------------------------

@pytest.mark.parametrize("role, allowed", [("admin", True), ("supervisor", True),
                                           ("operator", False), ("sales", False),
                                           ("viewer", False)])
def test_only_admin_and_supervisor_manage_canned_responses(client, auth, db, role, allowed):
    auth.login("someone", role)
    assert client.get("/canned").status_code == (200 if allowed else 403)
    response = auth.post("/canned", {"title": "Salam", "body": "Halo"})
    assert response.status_code == (302 if allowed else 403)
    assert (db.scalar(select(CannedResponse)) is not None) == allowed


def test_canned_response_is_escaped_and_fills_the_reply_box(client, auth, db, make_ticket):
    ticket = make_ticket()
    auth.login("ketua", "supervisor")
    assert auth.post("/canned", {"title": HOSTILE, "body": f"Halo {HOSTILE}"}
                     ).status_code == 302
    canned = db.scalar(select(CannedResponse))
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    html = page(client.get("/canned"))
    assert escaped in html and HOSTILE not in html
    html = page(client.get(f"/tickets/{ticket.id}"))
    assert f'<option value="{canned.id}" data-text="Halo {escaped}">{escaped}</option>' \
        in html and HOSTILE not in html
    html = page(client.get(f"/tickets/{ticket.id}?canned={canned.id}"))  # without JS
    assert re.search(rf'<textarea name="text"[^>]*>Halo {re.escape(escaped)}</textarea>',
                     html)
    html = page(client.get(f"/tickets/{ticket.id}?canned=99999"))
    assert "That canned response no longer exists." in html


def test_canned_response_edit_delete_and_bad_input(client, auth, db):
    auth.login("admin", "admin")
    auth.post("/canned", {"title": "Salam", "body": "Halo"})
    canned = db.scalar(select(CannedResponse))
    assert "Halo" in page(client.get(f"/canned?edit={canned.id}"))
    auth.post("/canned", {"id": str(canned.id), "title": "Salam", "body": "Halo kak"})
    db.expire_all()
    assert db.get(CannedResponse, canned.id).body == "Halo kak"
    response = auth.post("/canned", {"title": "", "body": "x"})
    assert response.status_code == 400 and "needs both a title and a text" in page(response)
    assert auth.post(f"/canned/{canned.id}/delete", {}).status_code == 302
    assert auth.post(f"/canned/{canned.id}/delete", {}).status_code == 404
    assert client.get("/canned?edit=99999").status_code == 404
    assert len(audits(db, "canned.save")) == 2 and len(audits(db, "canned.delete")) == 1


# --- SLA targets ------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["supervisor", "operator", "sales", "viewer"])
def test_only_an_admin_sets_sla_targets(client, auth, db, role):
    auth.login("someone", role)
    assert client.get("/sla").status_code == 403
    assert auth.post("/sla", {"first_order": "10"}).status_code == 403
    assert db.scalar(select(SlaTarget)) is None


def test_admin_sets_sla_targets_and_bad_minutes_say_why(client, auth, db):
    auth.login("admin", "admin")
    response = auth.post("/sla", {"first_complaint": "30", "resolve_complaint": "480"})
    assert response.status_code == 302
    db.expire_all()
    row = db.scalar(select(SlaTarget).where(SlaTarget.kind == "complaint"))
    assert (row.first_response_minutes, row.resolution_minutes) == (30, 480)
    assert db.scalar(select(SlaTarget).where(SlaTarget.kind == "order")) is None
    html = page(client.get("/sla"))
    assert 'name="first_complaint" inputmode="numeric"' in html and 'value="480"' in html
    response = auth.post("/sla", {"first_order": "soon"})
    assert response.status_code == 400
    assert "must be a whole number of minutes, not &#39;soon&#39;" in page(response)
    assert len(audits(db, "sla.set")) == 1


# --- the API ----------------------------------------------------------------------------

def test_patch_ticket_sets_status_and_assignee(client, db, make_ticket, make_user,
                                               api_headers):
    ticket = make_ticket()
    make_user("ani")
    response = client.patch(f"/api/v1/tickets/{ticket.id}", headers=api_headers,
                            json={"status": "pending", "assignee": "ani"})
    assert response.status_code == 200
    assert (response.json["status"], response.json["assignee"]) == ("pending", "ani")
    response = client.patch(f"/api/v1/tickets/{ticket.id}", headers=api_headers,
                            json={"assignee": None})
    assert response.json["assignee"] is None and response.json["status"] == "pending"
    db.expire_all()
    assert db.get(Ticket, ticket.id).status == "pending"
    assert len(audits(db, "ticket.assign")) == 2 and len(audits(db, "ticket.status")) == 1


@pytest.mark.parametrize("body, sentence", [
    ({"status": "done"}, '"status" must be one of new, open'),
    ({"status": 3}, '"status" must be one of'),
    ({"assignee": 7}, '"assignee" must be a user\'s name'),
    ({"assignee": "nobody"}, "there is no user 'nobody'"),
    ({"priority": "high"}, 'only "status" and "assignee" can be changed, not priority'),
    ([1, 2], "send a JSON object"),
])
def test_patch_ticket_refuses_bad_input_with_words(client, make_ticket, api_headers, body,
                                                   sentence):
    ticket = make_ticket()
    response = client.patch(f"/api/v1/tickets/{ticket.id}", headers=api_headers, json=body)
    assert response.status_code == 400 and sentence in response.json["error"]


def test_patch_missing_ticket_is_404_and_a_viewer_token_is_403(client, db, make_ticket,
                                                               make_user, api_headers):
    response = client.patch("/api/v1/tickets/99999", headers=api_headers,
                            json={"status": "open"})
    assert response.status_code == 404 and "no ticket 99999" in response.json["error"]
    make_user("lihat", "viewer")
    raw = users.create_token(db, "lihat-token", user_name="lihat")
    db.commit()
    ticket = make_ticket()
    response = client.patch(f"/api/v1/tickets/{ticket.id}", json={"status": "closed"},
                            headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    assert client.patch(f"/api/v1/tickets/{ticket.id}", json={"status": "closed"}
                        ).status_code == 401


# --- weight -----------------------------------------------------------------------------

def test_a_long_ticket_page_stays_under_100_kb_with_its_css_and_js(client, auth, db,
                                                                   make_ticket):
    ticket = make_ticket()
    for i in range(400):
        db.add(Message(direction="in" if i % 2 else "out", number="+6281234567890",
                       text="Halo kak, pesanan saya nomor 12 belum sampai juga. " * 3,
                       status="received" if i % 2 else "delivered", ticket_id=ticket.id))
    db.add(CannedResponse(title="Salam", body="Halo kak, terima kasih sudah menghubungi."))
    db.commit()
    auth.login()
    html = page(client.get(f"/tickets/{ticket.id}"))
    assets = sum(len(client.get(url).data) for url in re.findall(
        r'(?:href|src)="(/static/[^"]+)"', html))
    assert len(html.encode()) + assets < 100_000
    assert (STATIC / "ticket.js").stat().st_size < 10_000


def test_a_full_queue_page_stays_under_100_kb_with_its_css_and_js(client, auth, db,
                                                                  make_ticket, make_user):
    for i in range(8):
        make_user(f"petugas{i}")
    for i in range(60):
        make_ticket(phone=f"+62812{i:07d}", name="Pelanggan dengan nama cukup panjang",
                    kind="complaint")
    auth.login()
    html = page(client.get("/tickets"))
    assert len(listed(html)) == 50
    assets = sum(len(client.get(url).data) for url in re.findall(
        r'(?:href|src)="(/static/[^"]+)"', html))
    assert len(html.encode()) + assets < 100_000
