"""Warranty in the operator UI: serials per order item and by CSV (admin, sales), the
warranty period on the product page, a warranty ticket's item and repair-state buttons
(admin, supervisor, operator); CSRF on every form, hostile serials and texts escaped."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io

import pytest
from helpers import page
from sqlalchemy import select

from gateway.db.models import (
    AuditLog,
    Contact,
    Message,
    Order,
    OrderItem,
    Product,
    SoldItem,
    Ticket,
    WarrantyClaim,
)
from gateway.desk import warranty

BUDI = "+6281234567890"
HOSTILE = '<script>alert("x")</script>'



@pytest.fixture
def order(db):
    hp = Product(code="HP1", name="Handphone A1", price=1_500_000, stock=10, warranty_days=365)
    budi = Contact(phone=BUDI)
    db.add_all([hp, budi])
    db.flush()
    order = Order(contact_id=budi.id, status="paid", total=3_000_000,
                  created_at=dt.datetime(2026, 11, 23, 9), paid_at=dt.datetime(2026, 11, 23, 9))
    db.add(order)
    db.flush()
    db.add(OrderItem(order_id=order.id, product_id=hp.id, code="HP1", quantity=2,
                     unit_price=1_500_000))
    db.commit()
    return order


@pytest.fixture
def claim(db, order, make_ticket):
    warranty.record_serials(db, order.id, {order.items[0].id: ["SN-A1"]})
    ticket = make_ticket(phone=BUDI, text=f"GARANSI SN-A1 {HOSTILE}", kind="warranty")
    claim = warranty.open_claim(db, warranty.lookup(db, "SN-A1"), ticket)
    db.commit()
    return claim


@pytest.mark.parametrize("role", ["admin", "sales"])
def test_sales_records_serials_on_the_order_page(client, auth, db, order, role):
    auth.login("someone", role)
    html = page(client.get(f"/orders/{order.id}"))
    assert "Simpan nomor seri" in html and f'name="serials-{order.items[0].id}"' in html
    response = auth.post(f"/orders/{order.id}/serials",
                         {f"serials-{order.items[0].id}": "sn-a1\r\nSN-A2"})
    assert response.status_code == 302
    db.expire_all()
    assert sorted(db.scalars(select(SoldItem.serial))) == ["SN-A1", "SN-A2"]
    assert db.scalar(select(AuditLog).where(AuditLog.action == "warranty.serials"))
    html = page(client.get(f"/orders/{order.id}"))
    assert "SN-A1" in html and "2027-11-23" in html


def test_too_many_serials_are_refused_with_a_sentence(client, auth, db, order):
    auth.login("sari", "sales")
    response = auth.post(f"/orders/{order.id}/serials",
                         {f"serials-{order.items[0].id}": "SN-1 SN-2 SN-3"})
    assert response.status_code == 400 and "no more serials fit" in page(response)
    assert db.scalars(select(SoldItem)).all() == []


def test_a_hostile_serial_is_escaped(client, auth, db, order):
    auth.login("sari", "sales")
    response = auth.post(f"/orders/{order.id}/serials",
                         {f"serials-{order.items[0].id}": HOSTILE})
    html = page(response)
    assert response.status_code == 400
    assert "<script>alert" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("role", ["operator", "supervisor", "viewer"])
def test_other_roles_do_not_record_serials(client, auth, db, order, role):
    auth.login("someone", role)
    assert "Simpan nomor seri" not in page(client.get(f"/orders/{order.id}"))
    assert "Impor" not in page(client.get("/orders"))
    response = auth.post(f"/orders/{order.id}/serials",
                         {f"serials-{order.items[0].id}": "SN-A1"})
    assert response.status_code == 403
    assert auth.post("/orders/serials", {"file": (io.BytesIO(b"1,SN-A1"), "s.csv")},
                     content_type="multipart/form-data").status_code == 403


def test_serial_form_needs_csrf(client, auth, db, order):
    auth.login("sari", "sales")
    response = client.post(f"/orders/{order.id}/serials",
                           data={f"serials-{order.items[0].id}": "SN-A1"})
    assert response.status_code == 400
    assert db.scalars(select(SoldItem)).all() == []


def test_csv_upload_needs_csrf(client, auth, db, order):
    auth.login("sari", "sales")
    response = client.post("/orders/serials", data={"file": (io.BytesIO(b"1,SN-A1"), "s.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert db.scalars(select(SoldItem)).all() == []


def test_unknown_order_page_is_a_404(client, auth, order):
    auth.login("sari", "sales")
    assert client.get("/orders/99999999999").status_code == 404
    assert auth.post("/orders/777/serials", {}).status_code == 404


def test_csv_upload_good_and_bad(client, auth, db, order):
    auth.login("sari", "sales")
    assert "Impor" in page(client.get("/orders"))
    bad = f"{order.id},SN-A1\n{order.id},{HOSTILE}\n".encode()
    response = auth.post("/orders/serials", {"file": (io.BytesIO(bad), "s.csv")},
                         content_type="multipart/form-data")
    html = page(response)
    assert response.status_code == 400 and "line 2" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert db.scalars(select(SoldItem)).all() == []
    good = f"order,serial\n{order.id},SN-A1\n{order.id},SN-A2,2026-12-01\n".encode()
    response = auth.post("/orders/serials", {"file": (io.BytesIO(good), "s.csv")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert "2 nomor seri baru" in page(response)
    response = auth.post("/orders/serials", {"file": (io.BytesIO(good), "s.csv")},
                         content_type="multipart/form-data", follow_redirects=True)
    assert "0 nomor seri baru, 2 sudah tercatat" in page(response)
    assert len(db.scalars(select(SoldItem)).all()) == 2


def test_product_page_has_the_warranty_period(client, auth, db):
    auth.login("admin", "admin")
    response = auth.post("/products", {"code": "HP2", "name": "HP", "price": "100000",
                                       "stock": "", "warranty_days": "180"})
    assert response.status_code == 302
    db.expire_all()
    assert db.scalar(select(Product).where(Product.code == "HP2")).warranty_days == 180
    assert "180 hari" in page(client.get("/products"))
    response = auth.post("/products", {"code": "HP2", "name": "HP", "price": "100000",
                                       "warranty_days": "-3"})
    assert response.status_code == 400 and "Garansi harus" in page(response)
    auth.post("/products", {"code": "HP2", "name": "HP", "price": "100000",
                            "warranty_days": ""})
    db.expire_all()
    assert db.scalar(select(Product).where(Product.code == "HP2")).warranty_days is None


def test_warranty_ticket_shows_the_item_and_escapes_the_text(client, auth, claim):
    auth.login("op", "operator")
    html = page(client.get(f"/tickets/{claim.ticket_id}"))
    assert "SN-A1" in html and "Handphone A1" in html and "2027-11-23" in html
    assert "in_repair" in html and "Diperbaiki" in html
    assert "<script>alert" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize("role", ["admin", "supervisor", "operator"])
def test_staff_set_repair_states_and_the_customer_is_texted(client, auth, db, claim, role,
                                                            queued):
    auth.login("someone", role)
    response = auth.post(f"/tickets/{claim.ticket_id}/warranty", {"state": "in_repair"})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(WarrantyClaim, claim.id).state == "in_repair"
    [sms] = db.scalars(select(Message).where(Message.direction == "out")).all()
    assert sms.number == BUDI and "sedang diperbaiki" in sms.text and queued == [sms.id]
    assert db.scalar(select(AuditLog).where(AuditLog.action == "warranty.state"))


@pytest.mark.parametrize("rule, until", [("rest", dt.date(2027, 11, 23)), ("new", None)])
def test_replacement_follows_the_shop_rule(app, client, auth, db, claim, rule, until):
    shop = app.extensions["helpdesk"]
    app.extensions["helpdesk"] = dataclasses.replace(
        shop, config=dataclasses.replace(shop.config, warranty_replacement=rule))
    auth.login("op", "operator")
    response = auth.post(f"/tickets/{claim.ticket_id}/warranty",
                         {"state": "replaced", "new_serial": "sn-b1"})
    assert response.status_code == 302
    db.expire_all()
    new = db.scalar(select(SoldItem).where(SoldItem.serial == "SN-B1"))
    today = dt.datetime.now(dt.UTC).date()
    assert new.warranty_until == (until or today + dt.timedelta(days=365))
    html = page(client.get(f"/tickets/{claim.ticket_id}"))
    assert "diganti dengan SN-B1" in html
    sms = db.scalar(select(Message.text).where(Message.direction == "out"))
    assert "SN-B1" in sms and new.warranty_until.strftime("%d-%m-%Y") in sms


def test_a_replacement_needs_a_serial_and_bad_states_are_refused(client, auth, db, claim):
    auth.login("op", "operator")
    response = auth.post(f"/tickets/{claim.ticket_id}/warranty", {"state": "replaced"},
                         follow_redirects=True)
    assert "needs the new item" in page(response)
    response = auth.post(f"/tickets/{claim.ticket_id}/warranty", {"state": HOSTILE},
                         follow_redirects=True)
    html = page(response)
    assert "unknown repair state" in html and "<script>alert" not in html
    db.expire_all()
    assert db.get(WarrantyClaim, claim.id).state == "received"


@pytest.mark.parametrize("role", ["sales", "viewer"])
def test_other_roles_do_not_set_repair_states(client, auth, db, claim, role):
    auth.login("someone", role)
    assert "Diperbaiki" not in page(client.get(f"/tickets/{claim.ticket_id}"))
    response = auth.post(f"/tickets/{claim.ticket_id}/warranty", {"state": "in_repair"})
    assert response.status_code == 403


def test_repair_state_needs_csrf_and_a_claim(client, auth, db, claim, make_ticket):
    auth.login("op", "operator")
    response = client.post(f"/tickets/{claim.ticket_id}/warranty", data={"state": "in_repair"})
    assert response.status_code == 400
    other = make_ticket(phone="+6281300000000")
    assert auth.post(f"/tickets/{other.id}/warranty", {"state": "in_repair"}).status_code \
        == 404
    db.expire_all()
    assert db.get(Ticket, claim.ticket_id).kind == "warranty"
