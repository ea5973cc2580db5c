"""The shop's screens: confirming and rejecting payments, orders, products, reply templates."""
from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import dataclass

import pytest
from conftest import CSRF_FIELD, PASSWORD
from helpers import page
from sqlalchemy import func, select

from gateway.db.models import (
    AuditLog,
    Contact,
    Message,
    Order,
    OrderItem,
    Payment,
    Product,
    ReplyTemplate,
    Ticket,
    TicketEvent,
    utcnow,
)
from gateway.desk import replies


@pytest.fixture
def config(config):
    """The UI in English here, whatever the catalogue holds: assertions read English."""
    return dataclasses.replace(config, web_language="en")



@dataclass
class Shop:
    contact_id: int
    product_id: int
    ticket_id: int
    order_id: int
    payment_id: int


def arrange(db, *, matched=True, stock=100, phone="+6281234567890", language=None,
            payment_ticket=True) -> Shop:
    """A customer who ordered 2x XL25 (total 51037) and texted that they paid it."""
    contact = Contact(phone=phone, name="Budi Santoso", language=language)
    product = db.scalar(select(Product).where(Product.code == "XL25"))
    if product is None:
        product = Product(code="XL25", name="XL 25GB", price=25500, stock=stock, active=True)
        db.add(product)
    db.add(contact)
    db.flush()
    ticket = Ticket(kind="order", status="pending", contact_id=contact.id, created_at=utcnow())
    db.add(ticket)
    db.flush()
    total = 51000 + 37 + db.scalar(select(func.count(Order.id)))  # each open total is unique
    order = Order(contact_id=contact.id, ticket_id=ticket.id, status="awaiting_payment",
                  unique_code=total - 51000, total=total, open_total=total,
                  created_at=utcnow())
    order.items.append(OrderItem(product_id=product.id, code="XL25", quantity=2,
                                 unit_price=25500))
    db.add(order)
    db.flush()
    message = Message(direction="in", number=phone, text=f"BAYAR {order.number} {total} BCA Budi",
                      status="received", intent="payment", contact_id=contact.id,
                      ticket_id=ticket.id if payment_ticket else None, modem="modem1",
                      created_at=utcnow())
    db.add(message)
    db.flush()
    payment = Payment(contact_id=contact.id, order_id=order.id if matched else None,
                      message_id=message.id, amount=total, bank="BCA", payer_name="Budi",
                      status="unverified", created_at=utcnow())
    db.add(payment)
    db.commit()
    return Shop(contact.id, product.id, ticket.id, order.id, payment.id)


def outbound(db) -> list[Message]:
    db.expire_all()
    return db.scalars(select(Message).where(Message.direction == "out")
                      .order_by(Message.id)).all()


# --- payments --------------------------------------------------------------------------

def test_payments_page_lists_what_sales_must_check(client, auth, db):
    shop = arrange(db)
    auth.login("sari", "sales")
    html = page(client.get("/payments"))
    order = db.get(Order, shop.order_id)
    for expected in ("+6281234567890", "Budi Santoso", replies.rupiah(order.total), "BCA",
                     f"Order {order.number}", "2x XL25", "Confirm", "Reject"):
        assert expected in html


def test_confirm_marks_paid_takes_stock_and_tells_the_customer(client, auth, db, queued):
    shop = arrange(db)
    auth.login("sari", "sales")
    response = auth.post(f"/payments/{shop.payment_id}/confirm", {})
    assert response.status_code == 302 and response.location == "/payments"
    db.expire_all()
    payment, order = db.get(Payment, shop.payment_id), db.get(Order, shop.order_id)
    assert payment.status == "confirmed" and payment.decided_by is not None
    assert order.status == "paid" and order.open_total is None
    assert db.get(Product, shop.product_id).stock == 98
    [sms] = outbound(db)
    assert sms.text == replies.render("payment_confirmed", "id", db, amount=order.total,
                                      order_number=order.number)
    assert f"Pembayaran {replies.rupiah(order.total)} untuk pesanan {order.number}" in sms.text
    assert sms.number == "+6281234567890" and sms.status == "queued"
    assert sms.ticket_id == shop.ticket_id and sms.modem == "modem1"
    assert queued == [sms.id]
    notes = db.scalars(select(TicketEvent).where(TicketEvent.ticket_id == shop.ticket_id,
                                                 TicketEvent.kind == "note")).all()
    assert len(notes) == 1 and "confirmed" in notes[0].detail
    assert db.scalar(select(AuditLog).where(AuditLog.action == "payment.confirm",
                                            AuditLog.target_id == payment.id)) is not None
    assert "Payment of" in page(client.get("/payments"))


def test_confirm_speaks_the_customers_language(client, auth, db):
    shop = arrange(db, language="en")
    auth.login("sari", "sales")
    auth.post(f"/payments/{shop.payment_id}/confirm", {})
    [sms] = outbound(db)
    assert sms.text.startswith("Your payment of Rp")


def test_double_confirm_takes_stock_once(client, auth, db, queued):
    shop = arrange(db)
    auth.login("sari", "sales")
    auth.post(f"/payments/{shop.payment_id}/confirm", {})
    response = auth.post(f"/payments/{shop.payment_id}/confirm", {}, follow_redirects=True)
    assert response.status_code == 200
    assert "already confirmed" in page(response)
    db.expire_all()
    assert db.get(Product, shop.product_id).stock == 98
    assert len(outbound(db)) == 1 and len(queued) == 1
    assert db.scalar(select(func.count(AuditLog.id))
                     .where(AuditLog.action == "payment.confirm")) == 1


def test_unmatched_payment_is_confirmed_against_the_chosen_order(client, auth, db):
    shop = arrange(db, matched=False)
    auth.login("sari", "sales")
    html = page(client.get("/payments"))
    assert 'name="order_id"' in html and f'<option value="{shop.order_id}"' in html

    response = auth.post(f"/payments/{shop.payment_id}/confirm", {}, follow_redirects=True)
    assert "choose the order" in page(response)
    db.expire_all()
    assert db.get(Payment, shop.payment_id).status == "unverified"

    auth.post(f"/payments/{shop.payment_id}/confirm", {"order_id": str(shop.order_id)})
    db.expire_all()
    payment = db.get(Payment, shop.payment_id)
    assert payment.status == "confirmed" and payment.order_id == shop.order_id
    assert db.get(Order, shop.order_id).status == "paid"


def test_another_customers_order_cannot_be_chosen(client, auth, db):
    mine = arrange(db, matched=False)
    theirs = arrange(db, phone="+6281398765432")
    auth.login("sari", "sales")
    response = auth.post(f"/payments/{mine.payment_id}/confirm",
                         {"order_id": str(theirs.order_id)}, follow_redirects=True)
    assert "another customer" in page(response)
    db.expire_all()
    assert db.get(Order, theirs.order_id).status == "awaiting_payment"
    assert db.get(Payment, mine.payment_id).status == "unverified"


def test_confirm_refused_when_stock_ran_out(client, auth, db):
    shop = arrange(db, stock=1)
    auth.login("sari", "sales")
    response = auth.post(f"/payments/{shop.payment_id}/confirm", {}, follow_redirects=True)
    assert response.status_code == 200 and "only 1 of XL25 left" in page(response)
    db.expire_all()
    assert db.get(Payment, shop.payment_id).status == "unverified"
    assert db.get(Product, shop.product_id).stock == 1
    assert outbound(db) == []


def test_reject_queues_the_rejection_sms(client, auth, db, queued):
    shop = arrange(db)
    auth.login("sari", "sales")
    response = auth.post(f"/payments/{shop.payment_id}/reject", {})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(Payment, shop.payment_id).status == "rejected"
    assert db.get(Order, shop.order_id).status == "awaiting_payment"
    assert db.get(Product, shop.product_id).stock == 100
    [sms] = outbound(db)
    amount = db.get(Payment, shop.payment_id).amount
    assert sms.text == replies.render("payment_rejected", "id", db, amount=amount,
                                      ticket_number=str(shop.ticket_id))
    assert "belum kami temukan" in sms.text and f"tiket {shop.ticket_id}" in sms.text
    assert queued == [sms.id]
    assert db.scalar(select(AuditLog).where(AuditLog.action == "payment.reject")) is not None
    # A rejected payment cannot be confirmed afterwards.
    response = auth.post(f"/payments/{shop.payment_id}/confirm", {}, follow_redirects=True)
    assert "already rejected" in page(response)


def test_reject_without_any_ticket_says_dash(client, auth, db):
    shop = arrange(db, matched=False, payment_ticket=False)
    auth.login("sari", "sales")
    auth.post(f"/payments/{shop.payment_id}/reject", {})
    [sms] = outbound(db)
    assert sms.text.endswith("(tiket -).") and sms.ticket_id is None


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_readers_cannot_decide_payments(client, auth, db, role):
    shop = arrange(db)
    auth.login("reader", role)
    html = page(client.get("/payments"))
    assert "+6281234567890" in html and "Konfirmasi" not in html
    for action in ("confirm", "reject"):
        assert auth.post(f"/payments/{shop.payment_id}/{action}", {}).status_code == 403
    db.expire_all()
    assert db.get(Payment, shop.payment_id).status == "unverified"
    assert outbound(db) == []


def test_confirm_without_csrf_token_is_refused(client, auth, db):
    shop = arrange(db)
    auth.login("sari", "sales")
    response = client.post(f"/payments/{shop.payment_id}/confirm", data={})
    assert response.status_code == 400
    db.expire_all()
    assert db.get(Payment, shop.payment_id).status == "unverified"
    assert db.get(Product, shop.product_id).stock == 100
    response = client.post("/products", data={"code": "X1", "name": "x", "price": "1"})
    assert response.status_code == 400 or response.status_code == 403
    assert db.scalar(select(Product).where(Product.code == "X1")) is None


# --- orders ----------------------------------------------------------------------------

def test_orders_page_lists_and_filters(client, auth, db):
    paid = arrange(db)
    waiting = arrange(db, phone="+6281398765432")
    db.get(Order, paid.order_id).status = "paid"
    db.commit()
    auth.login("vera", "viewer")
    html = page(client.get("/orders"))
    for expected in ("+6281234567890", "+6281398765432", "2x XL25", "Rp 51.037", "paid",
                     "awaiting_payment"):
        assert expected in html
    html = page(client.get("/orders?status=paid"))
    assert f'id="o{paid.order_id}"' in html and f'id="o{waiting.order_id}"' not in html


# --- products --------------------------------------------------------------------------

def test_product_is_added_updated_and_deactivated(client, auth, db):
    auth.login("admin", "admin")
    response = auth.post("/products", {"code": " tsel50 ", "name": "Telkomsel 50rb",
                                       "price": "Rp 51.500", "stock": ""})
    assert response.status_code == 302
    product = db.scalar(select(Product).where(Product.code == "TSEL50"))
    assert product.price == 51500 and product.stock is None and product.active
    auth.post("/products", {"code": "TSEL50", "name": "Telkomsel 50 ribu", "price": "52000",
                            "stock": "7"})
    db.expire_all()
    assert (product.name, product.price, product.stock) == ("Telkomsel 50 ribu", 52000, 7)
    auth.post(f"/products/{product.id}/deactivate", {})
    db.expire_all()
    assert product.active is False
    actions = db.scalars(select(AuditLog.action).where(AuditLog.target_type == "product")
                         .order_by(AuditLog.id)).all()
    assert actions == ["product.create", "product.update", "product.deactivate"]
    html = page(client.get("/products"))
    assert "TSEL50" in html and "Rp 52.000" in html


@pytest.mark.parametrize("form, message", [
    ({"code": "XL25", "name": "XL", "price": "-5000"}, "The price is"),
    ({"code": "XL25", "name": "XL", "price": "0"}, "The price is"),
    ({"code": "XL25", "name": "XL", "price": "abc"}, "The price is"),
    ({"code": "XL 25", "name": "XL", "price": "5000"}, "The product code"),
    ({"code": "", "name": "XL", "price": "5000"}, "The product code"),
    ({"code": "XL25", "name": " ", "price": "5000"}, "The product name"),
    ({"code": "XL25", "name": "XL", "price": "5000", "stock": "-1"}, "Stock is"),
    ({"code": "XL25", "name": "XL", "price": "5000", "stock": "2.5"}, "Stock is"),
])
def test_product_form_refuses_bad_values(client, auth, db, form, message):
    auth.login("super", "supervisor")
    response = auth.post("/products", form)
    assert response.status_code == 400 and message in page(response)
    assert db.scalar(select(func.count(Product.id))) == 0


def test_hostile_product_name_is_shown_escaped(client, auth, db):
    auth.login("admin", "admin")
    hostile = '<script>alert("x")</script>'
    auth.post("/products", {"code": "EVIL", "name": hostile, "price": "1000"})
    assert db.scalar(select(Product.name).where(Product.code == "EVIL")) == hostile
    html = page(client.get("/products"))
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    # A refused form echoes the value back, escaped too.
    html = page(auth.post("/products", {"code": "EVIL2", "name": hostile, "price": "-1"}))
    assert "<script>alert" not in html and "&lt;script&gt;alert" in html


@pytest.mark.parametrize("role", ["sales", "operator", "viewer"])
def test_only_admin_and_supervisor_edit_products(client, auth, db, role):
    auth.login("someone", role)
    assert client.get("/products").status_code == 200
    assert "Simpan" not in page(client.get("/products"))
    response = auth.post("/products", {"code": "XL25", "name": "XL", "price": "5000"})
    assert response.status_code == 403


# --- reply templates -------------------------------------------------------------------

def test_template_list_shows_every_reply_in_both_languages(client, auth, db):
    auth.login("admin", "admin")
    html = page(client.get("/templates"))
    for name in replies.names():
        assert f"/templates/{name}/id" in html and f"/templates/{name}/en" in html
    assert "Pembayaran {{ amount|rupiah }}" in html


def test_template_edit_is_saved_then_used_and_reset(client, auth, db):
    auth.login("admin", "admin")
    source = "LUNAS: {{ amount|rupiah }} untuk pesanan {{ order_number }}. Terima kasih!"
    response = auth.post("/templates/payment_confirmed/id", {"source": source + "\r\n"})
    assert response.status_code == 302
    db.expire_all()
    assert replies.render("payment_confirmed", "id", db, amount=51037, order_number="7") \
        == "LUNAS: Rp 51.037 untuk pesanan 7. Terima kasih!"
    assert replies.render("payment_confirmed", "en", db, amount=51037,
                          order_number="7").startswith("Your payment")
    assert "LUNAS" in page(client.get("/templates"))
    row = db.scalar(select(ReplyTemplate))
    assert db.scalar(select(AuditLog).where(AuditLog.action == "reply_template.save",
                                            AuditLog.target_id == row.id)) is not None

    auth.post("/templates/payment_confirmed/id/reset", {})
    db.expire_all()
    assert db.scalar(select(ReplyTemplate)) is None
    assert replies.render("payment_confirmed", "id", db, amount=51037,
                          order_number="7").startswith("Pembayaran Rp 51.037")


def test_edited_template_is_what_the_payments_page_sends(client, auth, db):
    shop = arrange(db)
    auth.login("admin", "admin")
    auth.post("/templates/payment_confirmed/id", {"source": "OK {{ order_number }}"})
    auth.post(f"/payments/{shop.payment_id}/confirm", {})
    [sms] = outbound(db)
    assert sms.text == f"OK {shop.order_id}"


@pytest.mark.parametrize("source, sentence", [
    ("Pesanan {{ order_number ", "the template does not work"),
    ("Halo {{ nama_pelanggan }}", "the template does not work"),
    ("{% for i in range(5) %}" + "x" * 200 + "{% endfor %}", "at most 3 are allowed"),
    ("   ", "empty"),
])
def test_broken_template_is_refused_with_the_sentence(client, auth, db, source, sentence):
    auth.login("admin", "admin")
    response = auth.post("/templates/payment_confirmed/id", {"source": source})
    assert response.status_code == 400 and sentence in page(response)
    db.expire_all()
    assert db.scalar(select(ReplyTemplate)) is None


def test_template_source_is_shown_escaped(client, auth, db):
    auth.login("admin", "admin")
    auth.post("/templates/help/id", {"source": "<b>Halo</b> {{ name }}"})
    html = page(client.get("/templates/help/id"))
    assert "<b>Halo" not in html and "&lt;b&gt;Halo" in html


@pytest.mark.parametrize("role", ["supervisor", "sales", "operator", "viewer"])
def test_only_admin_edits_templates(client, auth, db, role):
    auth.login("someone", role)
    assert client.get("/templates").status_code == 403
    response = auth.post("/templates/help/id", {"source": "Halo"})
    assert response.status_code == 403
    assert db.scalar(select(ReplyTemplate)) is None


def test_unknown_template_is_404(client, auth):
    auth.login("admin", "admin")
    assert client.get("/templates/nope/id").status_code == 404
    assert client.get("/templates/help/fr").status_code == 404


def test_simultaneous_double_click_confirms_once(app, db, make_user, monkeypatch):
    """Two requests for one payment at the same moment: the second waits, then is refused."""
    import threading
    import time

    from gateway.desk import payments

    shop = arrange(db)
    make_user("sari", "sales")
    clients = [app.test_client() for _ in range(2)]
    tokens = []
    for client in clients:
        login_form = page(client.get("/login"))
        client.post("/login", data={"name": "sari", "password": PASSWORD,
                                    "csrf_token": CSRF_FIELD.search(login_form).group(1)})
        html = page(client.get("/payments"))
        tokens.append(CSRF_FIELD.search(html).group(1))

    original = payments.confirm_payment

    def slow_confirm(*args, **kwargs):
        time.sleep(0.5)  # hold the row long enough for the other click to arrive
        return original(*args, **kwargs)

    monkeypatch.setattr(payments, "confirm_payment", slow_confirm)
    statuses = []

    def click(client, token):
        response = client.post(f"/payments/{shop.payment_id}/confirm",
                               data={"csrf_token": token})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=click, args=pair) for pair in zip(clients, tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [302, 302]
    db.expire_all()
    assert db.get(Product, shop.product_id).stock == 98
    assert len(outbound(db)) == 1
    assert db.scalar(select(func.count(AuditLog.id))
                     .where(AuditLog.action == "payment.confirm")) == 1


def test_payments_page_statements_do_not_grow_with_the_payments(client, auth, db, statements):
    """1 or 30 of each kind (matched, unmatched with orders to choose, decided): the same
    number of statements, not one or two more per row."""
    auth.login("sari", "sales")
    phones = (f"+62812{n:07d}" for n in itertools.count(1000))

    def add(n):
        for _ in range(n):
            arrange(db, phone=next(phones))
            arrange(db, phone=next(phones), matched=False)
            decided = db.get(Payment, arrange(db, phone=next(phones)).payment_id)
            decided.status = "rejected"
        db.commit()

    def count():
        with statements() as seen:
            html = page(client.get("/payments"))
        return len(seen), html

    add(1)
    few, _ = count()
    add(29)
    many, html = count()
    assert html.count('<tr class="waiting"') == 60 and html.count(">rejected<") == 30
    assert many == few <= 10, (few, many)  # 10: the bank statement lines waiting


# --- matching a payment by hand ---------------------------------------------------------

def test_sales_match_an_unmatched_payment_then_confirm_it(client, auth, db, queued):
    shop = arrange(db, matched=False)
    auth.login("sari", "sales")
    html = page(client.get("/payments"))
    assert f'formaction="/payments/{shop.payment_id}/match"' in html and ">Match</button>" in html
    response = auth.post(f"/payments/{shop.payment_id}/match", {"order_id": str(shop.order_id)},
                         follow_redirects=True)
    order = db.get(Order, shop.order_id)
    assert f"matched to order {order.number}" in page(response) and queued == []
    db.expire_all()
    assert db.get(Payment, shop.payment_id).order_id == shop.order_id
    html = page(client.get("/payments"))
    assert f'formaction="/payments/{shop.payment_id}/match"' not in html  # matched now
    assert f"Order {order.number}</a>" in html
    auth.post(f"/payments/{shop.payment_id}/confirm", {})
    db.expire_all()
    assert db.get(Payment, shop.payment_id).status == "confirmed"
    assert db.get(Order, shop.order_id).status == "paid" and len(queued) == 1


@pytest.mark.parametrize("form,sentence", [
    ({}, "choose one of the customer&#39;s open orders"),
    ({"order_id": "abc"}, "choose one of the customer&#39;s open orders"),
])
def test_match_without_an_order_is_refused(client, auth, db, form, sentence):
    shop = arrange(db, matched=False)
    auth.login("sari", "sales")
    response = auth.post(f"/payments/{shop.payment_id}/match", form, follow_redirects=True)
    assert "The payment was not matched" in page(response) and sentence in page(response)
    db.expire_all()
    assert db.get(Payment, shop.payment_id).order_id is None


def test_match_to_another_customers_order_is_refused(client, auth, db):
    mine = arrange(db, matched=False)
    theirs = arrange(db, phone="+6281398765432")
    auth.login("sari", "sales")
    response = auth.post(f"/payments/{mine.payment_id}/match",
                         {"order_id": str(theirs.order_id)}, follow_redirects=True)
    assert "another customer" in page(response)
    db.expire_all()
    assert db.get(Payment, mine.payment_id).order_id is None


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_sellers_match_payments(client, auth, db, role):
    shop = arrange(db, matched=False)
    auth.login("someone", role)
    assert ">Match</button>" not in page(client.get("/payments"))
    assert auth.post(f"/payments/{shop.payment_id}/match",
                     {"order_id": str(shop.order_id)}).status_code == 403
    db.expire_all()
    assert db.get(Payment, shop.payment_id).order_id is None


def test_match_needs_a_login_and_the_csrf_token(client, auth, db):
    shop = arrange(db, matched=False)
    response = client.post(f"/payments/{shop.payment_id}/match", data={"order_id": "1"})
    assert response.status_code in (302, 400)
    auth.login("sari", "sales")
    assert client.post(f"/payments/{shop.payment_id}/match",
                       data={"order_id": str(shop.order_id)}).status_code == 400
    assert auth.post("/payments/424242/match", {"order_id": "1"}).status_code == 404


def test_payments_page_escapes_names_banks_and_orders(client, auth, db):
    hostile = '<script>alert("x")</script>'
    shop = arrange(db, matched=False)
    contact = db.get(Contact, shop.contact_id)
    contact.name = hostile
    payment = db.get(Payment, shop.payment_id)
    payment.bank, payment.payer_name = hostile[:32], hostile
    db.commit()
    auth.login("sari", "sales")
    html = page(client.get("/payments"))
    assert "<script>alert" not in html and html.count("&lt;script&gt;alert") >= 3


def test_rupiah_is_written_the_indonesian_way_on_every_shop_page(client, auth, db):
    shop = arrange(db)
    auth.login("sari", "sales")
    total = db.get(Order, shop.order_id).total
    written = f"Rp {total // 1000}.{total % 1000:03d}"
    assert written == replies.rupiah(total)
    for path in ("/payments", "/orders", f"/orders/{shop.order_id}", "/products"):
        html = page(client.get(path))
        assert re.search(r"Rp \d{1,3}(\.\d{3})+", html), path
    assert written in page(client.get("/payments")) and "Rp 25.500" in page(client.get("/products"))
