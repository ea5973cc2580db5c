"""A bank statement uploaded on /payments: the summary, the matched lines and their one
click, auto-confirm, roles, CSRF and hostile descriptions."""
from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path

import pytest
from conftest import SECRET_KEY, AuthActions
from helpers import page
from sqlalchemy import func, select

from gateway.db.models import (
    AuditLog,
    BankStatementLine,
    Contact,
    Message,
    Order,
    OrderItem,
    Payment,
    Product,
    Ticket,
    utcnow,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "bank"
HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@pytest.fixture
def config(config):
    """The UI in English here: assertions read English."""
    return dataclasses.replace(config, web_language="en")


PLACED = dt.datetime(2026, 11, 1)  # before the statements' transfers


def open_order(db, total, phone="+6281100000001", stock=5) -> int:
    product = db.scalar(select(Product).where(Product.code == "KP01"))
    if product is None:
        product = Product(code="KP01", name="Kopi", price=25_000, stock=stock, active=True)
        db.add(product)
    contact = Contact(phone=phone, name="Budi Santoso")
    db.add(contact)
    db.flush()
    ticket = Ticket(kind="order", status="pending", contact_id=contact.id, created_at=utcnow())
    db.add(ticket)
    db.flush()
    order = Order(contact_id=contact.id, ticket_id=ticket.id, status="awaiting_payment",
                  unique_code=total % 1000, total=total, open_total=total,
                  created_at=PLACED)
    order.items.append(OrderItem(product_id=product.id, code="KP01", quantity=1,
                                 unit_price=25_000))
    db.add(order)
    db.commit()
    return order.id


def upload(auth, data: bytes, bank="", name="mutasi.csv", **kwargs):
    return auth.post("/payments/bank", {"file": (io.BytesIO(data), name), "bank": bank},
                     content_type="multipart/form-data", **kwargs)


def bca_line(description: str, amount: str) -> bytes:
    return ("No. rekening : 0123456789\nPeriode : 01/11/2026 - 30/11/2026\n"
            "Tanggal Transaksi,Keterangan,Cabang,Jumlah,Saldo\n"
            f"'02/11,\"{description}\",0000,\"{amount} CR\",\"1,551,037.00\"\n").encode()


def test_upload_shows_the_summary_then_one_click_confirms(client, auth, db, queued):
    order_id = open_order(db, 51_037)
    auth.login("sari", "sales")
    response = upload(auth, (DATA / "bca.csv").read_bytes(), name="bca.csv")
    html = page(response)
    assert response.status_code == 200 and "Statement imported" in html
    assert "line 13: the date &#39;31/11&#39;" in html and "0123456789" in html
    assert db.get(Order, order_id).status == "awaiting_payment" and queued == []
    listing = page(client.get("/payments"))
    assert "Matched statement lines awaiting confirmation (1)" in listing
    assert "BUDI SANTOSO" in listing
    [line] = db.scalars(select(BankStatementLine).where(
        BankStatementLine.status == "matched")).all()
    response = auth.post("/payments/bank/confirm", {"line_id": str(line.id)},
                         follow_redirects=True)
    assert f"Payment of Rp 51.037 confirmed; order {order_id} is paid." in page(response)
    db.expire_all()
    assert db.get(Order, order_id).status == "paid"
    assert db.scalar(select(Product.stock)) == 4
    [sms] = db.scalars(select(Message).where(Message.direction == "out")).all()
    assert queued == [sms.id]
    actions = set(db.scalars(select(AuditLog.action)))
    assert {"bank.import", "payment.confirm", "bank.confirm"} <= actions
    assert db.scalar(select(AuditLog.user_id).where(AuditLog.action == "bank.confirm")) \
        == db.scalar(select(AuditLog.user_id).where(AuditLog.action == "bank.import"))
    # A second click, from a stale page: refused, nothing taken twice.
    response = auth.post("/payments/bank/confirm", {"line_id": str(line.id)},
                         follow_redirects=True)
    assert "was not confirmed" in page(response)
    assert db.scalar(select(Product.stock)) == 4 and len(queued) == 1


def test_upload_twice_changes_nothing(client, auth, db):
    open_order(db, 51_037)
    auth.login("sari", "sales")
    data = (DATA / "bca.csv").read_bytes()
    upload(auth, data)
    counts = [db.scalar(select(func.count()).select_from(m))
              for m in (BankStatementLine, Payment, AuditLog)]
    html = page(upload(auth, data))
    assert "0 new, 4 imported before" in html
    db.expire_all()
    assert [db.scalar(select(func.count()).select_from(m))
            for m in (BankStatementLine, Payment, AuditLog)] == counts


def test_auto_confirm_confirms_at_upload(make_user, db, sessionmaker, config, queued):
    from helpdesk_web import create_app

    order_id = open_order(db, 51_037)
    app = create_app(dataclasses.replace(config, bank_auto_confirm=True), sessionmaker,
                     secret_key=SECRET_KEY, on_queued=queued.append,
                     test_config={"TESTING": True})
    auth = AuthActions(app.test_client(), make_user, db)
    auth.login("sari", "sales")
    html = page(upload(auth, (DATA / "bca.csv").read_bytes()))
    assert "Statement imported" in html
    db.expire_all()
    assert db.get(Order, order_id).status == "paid"
    [sms] = db.scalars(select(Message).where(Message.direction == "out")).all()
    assert queued == [sms.id]
    assert db.scalar(select(BankStatementLine.status).where(
        BankStatementLine.order_id == order_id)) == "confirmed"


def test_hostile_descriptions_are_escaped_everywhere(client, auth, db):
    open_order(db, 51_037)
    auth.login("sari", "sales")
    html = page(upload(auth, bca_line(HOSTILE.replace('"', '""'), "51,037.00")))
    assert "Statement imported" in html
    listing = page(client.get("/payments"))
    assert "<script>alert(1)" not in listing and "<img src=x" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    # A hostile file name and an unreadable line's text come back escaped too.
    bad = bca_line("x", "5O,000.00").replace(b"5O,000.00", HOSTILE.replace('"', "").encode())
    html = page(upload(auth, bad, name=f"{HOSTILE}.csv"))
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_a_file_that_is_no_statement_is_refused_with_why(client, auth, db):
    auth.login("sari", "sales")
    response = upload(auth, b"nama,telepon\nBudi,0812\n")
    assert response.status_code == 400
    assert "not a statement in a known layout" in page(response)
    response = upload(auth, b"nama,telepon\n", bank="bri")
    assert response.status_code == 400 and "not a bri statement" in page(response)
    response = upload(auth, b"")
    assert response.status_code == 302
    assert db.scalar(select(func.count(BankStatementLine.id))) == 0


def test_upload_and_confirm_need_csrf(client, auth, db):
    auth.login("sari", "sales")
    data = (DATA / "bca.csv").read_bytes()
    response = client.post("/payments/bank", data={"file": (io.BytesIO(data), "b.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 400
    assert client.post("/payments/bank/confirm", data={"line_id": "1"}).status_code == 400
    assert db.scalar(select(func.count(BankStatementLine.id))) == 0


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_sellers_upload_and_confirm(client, auth, db, role):
    auth.login("someone", role)
    assert "CSV from internet banking" not in page(client.get("/payments"))
    assert upload(auth, (DATA / "bca.csv").read_bytes()).status_code == 403
    assert auth.post("/payments/bank/confirm", {"line_id": "1"}).status_code == 403
    assert db.scalar(select(func.count(BankStatementLine.id))) == 0


@pytest.mark.parametrize("role", ["admin", "supervisor", "sales"])
def test_sellers_see_the_upload_form(client, auth, role):
    auth.login("someone", role)
    assert "CSV from internet banking" in page(client.get("/payments"))


def test_confirming_an_unknown_line_is_a_404(client, auth):
    auth.login("sari", "sales")
    assert auth.post("/payments/bank/confirm", {"line_id": "424242"}).status_code == 404
    response = auth.post("/payments/bank/confirm", {"line_id": "x"}, follow_redirects=True)
    assert "choose a statement line" in page(response)


def test_a_nul_in_the_file_or_its_name_is_never_stored(client, auth, db):
    import json

    open_order(db, 51_037)
    auth.login("sari", "sales")
    data = bca_line("TRSF\x00 BUDI", "51,037.00")
    response = upload(auth, data, name="mut\x00asi\x1b.csv")
    assert response.status_code == 200 and "Statement imported" in page(response)
    assert db.scalar(select(BankStatementLine.description)) == "TRSF BUDI"
    detail = json.loads(db.scalar(select(AuditLog.detail).where(
        AuditLog.action == "bank.import")))
    assert detail["file"] == "mutasi.csv"
