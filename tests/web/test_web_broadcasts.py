"""The broadcast pages, the contact groups on /contacts, and POST/GET /api/v1/broadcasts:
who may send, the preview before the send, STOP and blocked skipped (and said so), hostile
text and group names escaped, bad input answered in words with nothing made."""
from __future__ import annotations

import dataclasses
import io

import pytest
from helpers import page
from sqlalchemy import func, select

from gateway.db.models import (
    AuditLog,
    Broadcast,
    BroadcastRecipient,
    Contact,
    ContactGroup,
    ContactGroupMember,
)
from gateway.desk import users

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def config(config):
    """English pages, so the assertions read the msgids whatever the catalogue says."""
    return dataclasses.replace(config, web_language="en")


@pytest.fixture
def group(db):
    """A group with a hostile name: two who may be texted, one STOP, one blocked."""
    row = ContactGroup(name=f"Toko {HOSTILE}")
    db.add(row)
    db.flush()
    for phone, name, flags in (("+6281100000001", "Budi", {}),
                               ("+6281100000002", "Sari", {"opted_out": True}),
                               ("+6281100000003", "Joko", {"blocked": True}),
                               ("+6281100000004", HOSTILE, {})):
        contact = Contact(phone=phone, name=name, **flags)
        db.add(contact)
        db.flush()
        db.add(ContactGroupMember(group_id=row.id, contact_id=contact.id))
    db.commit()
    return row


def count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


# --- the pages ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_a_viewer_or_an_operator_sees_broadcasts_but_cannot_send(client, auth, db, group,
                                                                 role):
    auth.login(f"the-{role}", role)
    html = page(client.get("/broadcasts"))
    assert "Recent broadcasts" in html and 'action="/broadcasts/preview"' not in html
    response = auth.post("/broadcasts", {"kind": "group", "group": group.name, "text": "Promo"})
    assert response.status_code == 403
    assert count(db, Broadcast) == 0


def test_the_preview_counts_skips_and_costs_before_anything_is_made(client, auth, db, group):
    auth.login("sup", "supervisor")
    text = "Halo {name}, diskon 10% hari ini " + HOSTILE
    response = auth.post("/broadcasts/preview", {"kind": "group", "group": group.name,
                                                 "text": text})
    html = page(response)
    assert response.status_code == 200
    assert "2 texts to send; 2 skipped (1 opted out, 1 blocked)." in html
    assert "Each text is 1 SMS at most, GSM-7; the cost is 2 SMS in all." in html
    assert "Halo Budi, diskon 10% hari ini &lt;script&gt;" in html and HOSTILE not in html
    assert "Send to 2 contacts" in html
    assert count(db, Broadcast) == 0


def test_sending_makes_the_broadcast_and_its_page_shows_progress_and_who_was_skipped(
        client, auth, db, group):
    auth.login("sup", "supervisor")
    response = auth.post("/broadcasts", {"kind": "group", "group": group.name,
                                         "text": f"Promo {HOSTILE} untuk {{name}}"})
    assert response.status_code == 302
    made = db.scalar(select(Broadcast))
    assert response.headers["Location"].endswith(f"/broadcasts/{made.id}")
    html = page(client.get(f"/broadcasts/{made.id}"))
    assert HOSTILE not in html and "Promo &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "+6281100000002" in html and "opted out (STOP)" in html
    assert "+6281100000003" in html and "blocked" in html
    listing = page(client.get("/broadcasts"))
    assert HOSTILE not in listing and "Toko &lt;script&gt;" in listing
    statuses = dict(db.execute(select(BroadcastRecipient.number, BroadcastRecipient.status)).all())
    assert statuses == {"+6281100000001": "pending", "+6281100000002": "skipped",
                        "+6281100000003": "skipped", "+6281100000004": "pending"}


def test_numbers_from_a_file_and_bad_input_in_words(client, auth, db, group):
    auth.login("ani", "sales")
    upload = {"kind": "numbers", "text": "Halo {name}",
              "file": (io.BytesIO(b"nomor\n0811-0000-0002\n0812 9999 0000\n"), "n.csv")}
    response = auth.post("/broadcasts", upload, content_type="multipart/form-data")
    assert response.status_code == 302
    made = db.scalar(select(Broadcast))
    assert (made.audience_kind, made.total) == ("numbers", 2)
    bad = auth.post("/broadcasts", {"kind": "numbers", "numbers": "0812 9999 0000\nabc",
                                    "text": "Halo"})
    assert bad.status_code == 400 and "line 2: &#39;abc&#39;" in page(bad)
    bad = auth.post("/broadcasts/preview", {"kind": "group", "group": group.name,
                                            "text": "Halo {nama}"})
    assert bad.status_code == 400 and "{nama}" in page(bad) and "{name}" in page(bad)
    bad = auth.post("/broadcasts", {"kind": "tag", "tag": "nope", "text": "Halo"})
    assert bad.status_code == 400 and "there is no tag" in page(bad)
    assert count(db, Broadcast) == 1


def test_pause_resume_cancel_from_the_page_are_audited(client, auth, db, group):
    auth.login("boss", "admin")
    auth.post("/broadcasts", {"kind": "group", "group": group.name, "text": "Promo"})
    made = db.scalar(select(Broadcast))
    for action, status in (("pause", "paused"), ("resume", "running"),
                           ("cancel", "cancelled")):
        response = auth.post(f"/broadcasts/{made.id}/{action}", {})
        assert response.status_code == 302
        db.expire_all()
        assert db.get(Broadcast, made.id).status == status
    again = auth.post(f"/broadcasts/{made.id}/resume", {}, follow_redirects=True)
    assert "is cancelled; it cannot be made running" in page(again)
    actions = db.scalars(select(AuditLog.action).where(AuditLog.target_type == "broadcast")
                         .order_by(AuditLog.id)).all()
    assert actions == ["broadcast.create", "broadcast.pause", "broadcast.resume",
                       "broadcast.cancel"]


# --- contact groups on /contacts ---------------------------------------------------------

def test_staff_make_groups_and_put_contacts_in_and_out(client, auth, db, group):
    auth.login("op", "operator")
    budi = db.scalar(select(Contact).where(Contact.name == "Budi"))
    response = auth.post("/contacts/groups", {"name": f"  Grosir  {HOSTILE} ",
                                              "contact_id": budi.id})
    assert response.status_code == 302
    made = db.scalar(select(ContactGroup).where(ContactGroup.name.startswith("Grosir")))
    assert made.name == f"Grosir {HOSTILE}"
    html = page(client.get(f"/contacts/{budi.id}"))
    assert HOSTILE not in html and "Grosir &lt;script&gt;" in html
    assert auth.post(f"/contacts/{budi.id}/groups", {"remove": group.id}).status_code == 302
    db.expire_all()
    assert [g.id for g in db.get(ContactGroup, group.id).members if g.id == budi.id] == []
    auth.post(f"/contacts/{budi.id}/groups", {"add": group.id})
    db.expire_all()
    assert budi.id in [c.id for c in db.get(ContactGroup, group.id).members]
    taken = auth.post("/contacts/groups", {"name": made.name}, follow_redirects=True)
    assert "already" in page(taken)
    listed = page(client.get("/contacts", query_string={"group": made.name}))
    assert "+6281100000001" in listed and "+6281100000004" not in listed
    assert HOSTILE not in listed
    actions = set(db.scalars(select(AuditLog.action)))
    assert {"group.create", "contact.group_add", "contact.group_remove"} <= actions


def test_a_viewer_cannot_change_groups(client, auth, db, group):
    auth.login("vera", "viewer")
    budi = db.scalar(select(Contact).where(Contact.name == "Budi"))
    assert 'name="add"' not in page(client.get(f"/contacts/{budi.id}"))
    assert auth.post("/contacts/groups", {"name": "X"}).status_code == 403
    assert auth.post(f"/contacts/{budi.id}/groups", {"remove": group.id}).status_code == 403


# --- the API -----------------------------------------------------------------------------

def test_the_api_makes_a_broadcast_and_names_who_was_skipped(client, db, group, api_headers):
    response = client.post("/api/v1/broadcasts", headers=api_headers,
                           json={"text": "Halo {name}", "group": group.name})
    assert response.status_code == 202
    body = response.get_json()
    assert body["total"] == 4 and body["recipients"] == 2
    assert body["skipped_opted_out"] == 1 and body["skipped_blocked"] == 1
    assert sorted(s["number"] for s in body["skipped"]) == ["+6281100000002", "+6281100000003"]
    shown = client.get(response.headers["Location"], headers=api_headers).get_json()
    assert {k: shown[k] for k in ("id", "status", "total", "sent", "skipped_opted_out")} == {
        "id": body["id"], "status": "running", "total": 4, "sent": 0, "skipped_opted_out": 1}
    assert shown["pending"] == 2
    preview = client.post("/api/v1/broadcasts", headers=api_headers,
                          json={"text": "Halo", "numbers": ["0811 0000 0001"], "preview": True})
    assert preview.status_code == 200 and preview.get_json()["id"] is None
    assert count(db, Broadcast) == 1


@pytest.mark.parametrize("body, words", [
    ({"group": "x"}, '"text" is required'),
    ({"text": "Halo"}, "exactly one audience"),
    ({"text": "Halo", "group": "a", "tag": "b"}, "exactly one audience"),
    ({"text": "Halo", "numbers": "0812"}, '"numbers" a list of strings'),
    ({"text": "Halo", "numbers": ["0812", 5]}, '"numbers" a list of strings'),
    ({"text": "Halo", "numbers": ["bukan nomor"]}, "'bukan nomor' is not a phone number"),
    ({"text": "Halo", "group": "Tidak Ada"}, "there is no contact group 'Tidak Ada'"),
    ({"text": "Halo {nama}", "numbers": ["0812 9999 0000"]}, "{nama}"),
    ({"text": "Halo", "numbers": ["0811 0000 0002"]}, "nobody in this audience"),
    ({"text": "Halo", "numbers": ["0812 9999 0000"], "preview": "ya"}, '"preview" must be'),
])
def test_bad_api_input_is_a_400_in_words_and_makes_nothing(client, db, group, api_headers,
                                                            body, words):
    response = client.post("/api/v1/broadcasts", headers=api_headers, json=body)
    assert response.status_code == 400
    assert words in response.get_json()["error"]
    assert count(db, Broadcast) == 0


def test_a_viewers_token_reads_but_cannot_broadcast(client, db, group):
    users.create_user(db, "vera", "viewer", "viewer-password")
    token = users.create_token(db, "vera-token", "vera")
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post("/api/v1/broadcasts", headers=headers,
                           json={"text": "Halo", "group": group.name})
    assert response.status_code == 403 and "may not send broadcasts" in \
        response.get_json()["error"]
    assert client.get("/api/v1/broadcasts/1", headers=headers).status_code == 404


def test_the_api_pauses_resumes_and_cancels_and_says_when_it_cannot(client, db, group,
                                                                      api_headers):
    made = client.post("/api/v1/broadcasts", headers=api_headers,
                       json={"text": "Halo {name}", "group": group.name}).get_json()
    base = f"/api/v1/broadcasts/{made['id']}"
    paused = client.post(f"{base}/pause", headers=api_headers)
    assert paused.status_code == 200 and paused.get_json()["status"] == "paused"
    again = client.post(f"{base}/pause", headers=api_headers)
    assert again.status_code == 409 and "is paused" in again.get_json()["error"]
    assert client.post(f"{base}/resume", headers=api_headers).get_json()["status"] == "running"
    cancelled = client.post(f"{base}/cancel", headers=api_headers).get_json()
    assert (cancelled["status"], cancelled["cancelled"], cancelled["pending"]) == (
        "cancelled", 2, 0)
    assert client.post(f"{base}/resume", headers=api_headers).status_code == 409
    assert client.post("/api/v1/broadcasts/999/pause", headers=api_headers).status_code == 404
    assert client.post(f"{base}/restart", headers=api_headers).status_code == 404
    actions = db.scalars(select(AuditLog.action).where(AuditLog.target_type == "broadcast")
                         .order_by(AuditLog.id)).all()
    assert actions == ["broadcast.create", "broadcast.pause", "broadcast.resume",
                       "broadcast.cancel"]
