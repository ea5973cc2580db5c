"""The CRM pages and GET /api/v1/contacts/<id>: roles, escaping, saving, the timeline,
texting, CSV export (formulas neutralised) and import (hostile files never a 500)."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json

import pytest
from helpers import page
from sqlalchemy import func, select

from gateway.db.models import AuditLog, Contact, Message, Order, Payment, Ticket
from gateway.desk import crm

PHONE = "+6281234567890"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def config(config):
    """English pages, so the assertions read the msgids whatever the catalogue says."""
    return dataclasses.replace(config, web_language="en")



def add_contact(db, phone=PHONE, tags="", **fields) -> Contact:
    contact = Contact(phone=phone, **fields)
    db.add(contact)
    db.flush()
    if tags:
        crm.update_contact(db, contact, None, tags=tags)
    db.commit()
    return contact


def upload(auth, data: bytes, name="contacts.csv"):
    return auth.post("/contacts/import", {"file": (io.BytesIO(data), name)},
                     content_type="multipart/form-data")


# --- who may do what ---------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/contacts", "/contacts/1", "/contacts/export.csv",
                                  "/contacts/import"])
def test_strangers_are_sent_to_log_in(client, db, path):
    add_contact(db)
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_viewer_reads_but_changes_nothing(client, auth, db, queued):
    contact = add_contact(db, name="Budi", notes="langganan", tags="vip")
    auth.login("vera", "viewer")
    html = page(client.get(f"/contacts/{contact.id}"))
    assert "Budi" in html and "langganan" in html and "vip" in html
    assert f'action="/contacts/{contact.id}"' not in html and 'name="text"' not in html
    for path, data in ((f"/contacts/{contact.id}", {"name": "X", "type": "customer"}),
                       (f"/contacts/{contact.id}/text", {"text": "halo"}),
                       ("/contacts/import", {})):
        assert auth.post(path, data).status_code == 403
    assert client.get("/contacts/export.csv").status_code == 403
    assert client.get("/contacts/import").status_code == 403
    db.expire_all()
    assert db.get(Contact, contact.id).name == "Budi" and queued == []


def test_an_unknown_contact_is_a_404(client, auth):
    auth.login()
    assert client.get("/contacts/999").status_code == 404
    assert client.get("/contacts/99999999999").status_code == 404


# --- the list ------------------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["0812-3456-7890", "+62 812 3456 7890", "6281234567890"])
def test_the_list_finds_a_number_in_any_spelling(client, auth, db, typed):
    budi = add_contact(db, name="Budi")
    ani = add_contact(db, "+6281299999999", name="Ani")
    auth.login()
    html = page(client.get("/contacts", query_string={"q": typed}))
    assert f'href="/contacts/{budi.id}"' in html and f'href="/contacts/{ani.id}"' not in html


def test_the_list_filters_by_type_and_tag_and_pages(client, auth, db):
    dealer = add_contact(db, name="Dedi", type="dealer", tags="vip")
    reseller = add_contact(db, "+6281299999999", name="Rina", type="reseller", tags="vip grosir")
    plain = add_contact(db, "+6281311112222", name="Polos")
    auth.login()

    def shown(**query):
        html = page(client.get("/contacts", query_string=query))
        return {c.id for c in (dealer, reseller, plain) if f'href="/contacts/{c.id}"' in html}
    assert shown() == {dealer.id, reseller.id, plain.id}
    assert shown(type="dealer") == {dealer.id}
    assert shown(tag="vip") == {dealer.id, reseller.id}
    assert shown(tag="grosir", type="reseller") == {reseller.id}
    assert shown(q="Rina") == {reseller.id}
    assert shown(limit=1) == {plain.id}  # the newest first
    assert shown(limit=1, before=plain.id) == {reseller.id}
    assert client.get("/contacts?limit=0").status_code == 400


def test_hostile_names_notes_and_tags_are_escaped(client, auth, db):
    contact = add_contact(db, name=HOSTILE, organisation=HOSTILE, notes=HOSTILE)
    auth.login()
    for path in ("/contacts", f"/contacts/{contact.id}", f"/contacts?q={HOSTILE}",
                 f"/contacts?tag={HOSTILE}"):
        html = page(client.get(path))
        assert HOSTILE not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page(client.get(f"/contacts/{contact.id}"))
    response = auth.post(f"/contacts/{contact.id}", {"type": "customer", "tags": HOSTILE})
    assert response.status_code == 400
    assert HOSTILE not in page(response) and "is not a tag" in page(response)


# --- one contact ---------------------------------------------------------------------------

def test_an_operator_saves_the_details(client, auth, db):
    contact = add_contact(db, name="Budi")
    auth.login()
    response = auth.post(f"/contacts/{contact.id}", {
        "name": "Budi Santoso", "organisation": "Toko Maju", "type": "reseller",
        "tags": "VIP, grosir", "notes": "bayar tiap Jumat", "blocked": "1"})
    assert response.status_code == 302
    assert "Contact saved." in page(client.get(response.headers["Location"]))
    db.expire_all()
    saved = db.get(Contact, contact.id)
    assert (saved.name, saved.organisation, saved.type, saved.notes, saved.blocked,
            saved.opted_out) == ("Budi Santoso", "Toko Maju", "reseller", "bayar tiap Jumat",
                                 True, False)
    assert [t.name for t in saved.tags] == ["grosir", "vip"]
    row = db.scalar(select(AuditLog).where(AuditLog.action == "contact.update"))
    assert row.target_id == contact.id and row.user_id is not None
    assert json.loads(row.detail)["blocked"] == [False, True]


def test_a_bad_type_is_refused_with_words_and_the_form_kept(client, auth, db):
    contact = add_contact(db, name="Budi")
    auth.login()
    response = auth.post(f"/contacts/{contact.id}", {"name": "Budi Baru", "type": "vip"})
    assert response.status_code == 400
    html = page(response)
    assert "not one of customer, reseller, dealer" in html and 'value="Budi Baru"' in html
    db.expire_all()
    assert db.get(Contact, contact.id).name == "Budi"


def test_the_timeline_links_tickets_orders_and_payments(client, auth, db, make_ticket):
    ticket = make_ticket(text="PESAN KP01 2", kind="order")
    order = Order(contact_id=ticket.contact_id, ticket_id=ticket.id, total=51_037)
    db.add(order)
    db.flush()
    db.add(Payment(contact_id=ticket.contact_id, order_id=order.id, amount=51_037,
                   bank="BCA"))
    db.commit()
    auth.login()
    html = page(client.get(f"/contacts/{ticket.contact_id}"))
    assert "PESAN KP01 2" in html
    assert f'href="/tickets/{ticket.id}"' in html
    assert html.count(f'href="/orders/{order.id}"') == 2  # the order and its payment
    assert "Rp 51.037" in html


def test_the_timeline_pages_with_a_link(client, auth, db):
    contact = add_contact(db)
    for i in range(55):
        db.add(Message(direction="in", number=PHONE, text=f"pesan nomor {i}",
                       status="received", contact_id=contact.id))
    db.commit()
    auth.login()
    html = page(client.get(f"/contacts/{contact.id}"))
    assert "pesan nomor 54" in html and "pesan nomor 4<" not in html
    cursor = crm.timeline(db, contact).next
    older = page(client.get(f"/contacts/{contact.id}", query_string={"before": cursor}))
    assert "pesan nomor 4<" in older and "pesan nomor 54" not in older
    assert client.get(f"/contacts/{contact.id}?before=nonsense").status_code == 400


def test_a_text_from_the_contact_page_is_queued(client, auth, db, queued):
    contact = add_contact(db)
    auth.login()
    response = auth.post(f"/contacts/{contact.id}/text", {"text": "Halo Kak, stok ada."})
    assert response.status_code == 302
    out = db.scalar(select(Message).where(Message.direction == "out"))
    assert (out.number, out.contact_id, out.status, out.text) == (
        PHONE, contact.id, "queued", "Halo Kak, stok ada.")
    assert queued == [out.id]
    assert auth.post(f"/contacts/{contact.id}/text", {"text": "  "}).status_code == 400
    sender = add_contact(db, "TELKOMSEL")
    assert auth.post(f"/contacts/{sender.id}/text", {"text": "halo"}).status_code == 400
    assert queued == [out.id]


# --- CSV out -------------------------------------------------------------------------------

def _csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_export_is_a_csv_with_formulas_neutralised(client, auth, db, engine):
    add_contact(db, name="=HYPERLINK(\"http://x\",\"klik\")", notes="@SUM(1+1)",
                organisation="-1", tags="vip")
    add_contact(db, "+6281299999999", name="Ani", type="dealer")
    auth.login()
    response = client.get("/contacts/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv(response)
    assert rows[0] == list(crm.CSV_COLUMNS)
    assert rows[1] == ["'+6281234567890", "'=HYPERLINK(\"http://x\",\"klik\")", "'-1",
                       "customer", "vip", "'@SUM(1+1)", "no", "no"]
    assert [r[1] for r in _csv(client.get("/contacts/export.csv?type=dealer"))[1:]] == ["Ani"]
    assert [r[1] for r in _csv(client.get("/contacts/export.csv?q=0812-9999-9999"))[1:]] == \
        ["Ani"]
    # The stream's session is closed once it is read: no connection (and on MariaDB no
    # metadata lock) is left behind.
    db.commit()
    assert engine.pool.checkedout() == 0
    assert db.scalar(select(func.count()).select_from(AuditLog)
                     .where(AuditLog.action == "contact.export")) == 3


# --- CSV in --------------------------------------------------------------------------------

def test_import_shows_a_summary_and_each_bad_line(client, auth, db):
    add_contact(db, name="Budi")
    auth.login()
    assert 'type="file"' in page(client.get("/contacts/import"))
    data = ("phone;name;type\n0812-3456-7890;Budi Santoso;reseller\n081299999999;Ani;\n"
            f"bukan nomor;{HOSTILE};\n").encode()
    response = upload(auth, data)
    assert response.status_code == 200
    html = page(response)
    assert "New contacts: 1, updated: 1, unchanged: 0." in html
    assert "line 4: &#39;bukan nomor&#39; is not a phone number" in html
    again = page(upload(auth, data))
    assert "New contacts: 0, updated: 0, unchanged: 2." in again
    db.expire_all()
    assert db.scalar(select(Contact.name).where(Contact.phone == PHONE)) == "Budi Santoso"


@pytest.mark.parametrize("data,status,words", [
    (b"", 400, "Choose a CSV file"),
    (b"\xff\xfe\x00p\x00h\x00o\x00n\x00e", 400, "not UTF-8"),
    (b"\x00\x01\x02binary", 400, "not text"),
    (b"name\nBudi\n", 400, "names no phone column"),
    (b"phone\n" + b"=cmd|' /C calc'!A0\n" * 3, 200, "is not a phone number"),
    (b'phone,name\n081234567890,"' + b"x" * 200_000 + b"\n", 200, "line 2"),
    (b"phone,name\n" + b"0812,\x1b[31m\xe2\x80\xae\n", 200, "is not a phone number"),
    (b"phone\n" + b"081234567890\n" * 2 + b'"\n' * 5, 200, "line 3"),
])
def test_a_hostile_upload_is_answered_never_a_500(client, auth, db, data, status, words):
    auth.login()
    response = upload(auth, data)
    assert response.status_code == status, page(response)[:500]
    assert words in page(response)


def test_an_upload_over_the_body_limit_is_a_413_with_words(client, auth):
    auth.login()
    response = upload(auth, b"phone\n" + b"081234567890\n" * 100_000)
    assert response.status_code == 413 and "MiB" in page(response)


# --- the API -------------------------------------------------------------------------------

def test_api_contact_has_its_fields_and_timeline(client, db, make_ticket, api_headers):
    ticket = make_ticket(text="KOMPLAIN pulsa", kind="complaint", name="Budi")
    contact = db.get(Contact, ticket.contact_id)
    crm.update_contact(db, contact, None, organisation="Toko Maju", type="dealer",
                       tags="vip", notes="catatan", blocked=True)
    db.add(Payment(contact_id=contact.id, amount=50_000, bank="BRI",
                   created_at=dt.datetime(2030, 1, 1)))
    db.commit()
    response = client.get(f"/api/v1/contacts/{contact.id}", headers=api_headers)
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("id", "phone", "name", "opted_out", "organisation", "type",
                                 "tags", "notes", "blocked")} == {
        "id": contact.id, "phone": PHONE, "name": "Budi", "opted_out": False,
        "organisation": "Toko Maju", "type": "dealer", "tags": ["vip"], "notes": "catatan",
        "blocked": True}
    types = [(e["type"], e["id"]) for e in body["timeline"]]
    message_id = db.scalar(select(Message.id))
    assert types[0][0] == "payment" and set(types[1:]) == {("message", message_id),
                                                           ("ticket", ticket.id)}
    assert all({"type", "id", "at"} <= set(e) for e in body["timeline"])
    assert body["timeline"][0]["at"] == "2030-01-01T00:00:00+00:00"
    message = next(e for e in body["timeline"] if e["type"] == "message")
    assert (message["direction"], message["text"], message["ticket_id"]) == (
        "in", "KOMPLAIN pulsa", ticket.id)
    assert body["timeline_next"] is None


def test_api_timeline_pages_and_refuses_bad_input(client, db, api_headers):
    contact = add_contact(db)
    for i in range(5):
        db.add(Message(direction="out", number=PHONE, text=f"t{i}", status="sent"))
    db.commit()
    url = f"/api/v1/contacts/{contact.id}"
    first = client.get(url, query_string={"limit": 2}, headers=api_headers).get_json()
    assert [e["text"] for e in first["timeline"]] == ["t4", "t3"]
    second = client.get(url, query_string={"limit": 2, "before": first["timeline_next"]},
                        headers=api_headers).get_json()
    assert [e["text"] for e in second["timeline"]] == ["t2", "t1"]
    for query in ({"before": "zzz"}, {"limit": 0}, {"limit": 501}):
        response = client.get(url, query_string=query, headers=api_headers)
        assert response.status_code == 400 and response.get_json()["error"]
    assert client.get("/api/v1/contacts/999", headers=api_headers).status_code == 404
    assert client.get(url).status_code == 401


def test_api_contact_ticket_counts_stay_one_per_kind(client, db, api_headers):
    """Texts of the same number that belong to no contact still are this number's."""
    contact = add_contact(db)
    db.add(Message(direction="out", number=PHONE, text="sent by API before", status="sent"))
    db.add(Ticket(kind="question", contact_id=contact.id))
    db.commit()
    body = client.get(f"/api/v1/contacts/{contact.id}", headers=api_headers).get_json()
    assert sorted(e["type"] for e in body["timeline"]) == ["message", "ticket"]
