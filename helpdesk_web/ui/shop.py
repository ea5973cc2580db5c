"""The shop's screens: payments to confirm or reject, the order list, the product catalogue."""
from __future__ import annotations

import re

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload

from gateway.db.models import Contact, Message, Order, Payment, Product, Ticket, TicketEvent, utcnow
from gateway.desk import orders, replies
from gateway.desk.outbox import OutboxError, queue_message
from gateway.desk.users import audit
from gateway.sms.phone import is_reachable
from helpdesk_web.auth import login_required
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("shop", __name__)

# Who may say that money arrived (and so release stock), and who keeps the catalogue.
SELLERS = ("admin", "supervisor", "sales")
CATALOGUE_KEEPERS = ("admin", "supervisor")
ORDER_STATUSES = (orders.OPEN_ORDER, "paid", "cancelled")
PAGE = 50
CODE = re.compile(r"[A-Z0-9]{1,32}")  # customers type it in an SMS: PESAN XL25 2
MAX_PRICE = 10**12
MAX_STOCK = 10**9


# --- payments --------------------------------------------------------------------------

@bp.route("/payments")
@login_required
def payments():
    db = get_db()
    waiting = db.scalars(select(Payment).where(Payment.status == "unverified")
                         .order_by(Payment.id)).all()
    decided = db.scalars(select(Payment).where(Payment.status != "unverified")
                         .order_by(Payment.id.desc()).limit(PAGE)).all()
    rows = [*waiting, *decided]
    contacts = _by_id(db, Contact, {p.contact_id for p in rows})
    matched = {o.id: o for o in db.scalars(
        select(Order).options(selectinload(Order.items))
        .where(Order.id.in_({p.order_id for p in rows if p.order_id is not None})))} \
        if any(p.order_id for p in rows) else {}
    # An unmatched payment waits for a person to say which open order it pays.
    choices = {cid: orders.open_orders(db, cid)
               for cid in {p.contact_id for p in waiting if p.order_id is None}}
    return render_template("shop/payments.html", waiting=waiting, decided=decided,
                           contacts=contacts, matched=matched, choices=choices,
                           can_decide=g.user.role in SELLERS)


@bp.route("/payments/<int:payment_id>/confirm", methods=("POST",))
@login_required(roles=SELLERS)
def confirm(payment_id):
    db = get_db()
    payment = _locked_payment(db, payment_id)
    try:
        order = _order_to_confirm(db, payment)
        if order is not None:
            _lock_products(db, order)
        orders.confirm_payment(db, payment, order, g.user.id)
        contact = db.get(Contact, payment.contact_id)
        text = replies.render("payment_confirmed", _language(contact), db,
                              amount=payment.amount, order_number=order.number)
        message = _tell(db, contact, payment, text, order.ticket_id)
    except (orders.PaymentDecisionError, OutboxError) as e:
        db.rollback()
        flash(f"Pembayaran tidak dikonfirmasi: {e}. (The payment was not confirmed.)", "error")
        return redirect(url_for("shop.payments"))
    note = (f"payment {payment.id} of {replies.rupiah(payment.amount)} confirmed for order "
            f"{order.number} by {g.user.name}")
    _note(db, order.ticket_id, note, message)
    audit(db, g.user.id, "payment.confirm", "payment", payment.id,
          {"order_id": order.id, "amount": payment.amount,
           "message_id": message.id if message else None})
    db.commit()
    if message is not None:
        notify_queued(message.id)
    flash(f"Pembayaran {replies.rupiah(payment.amount)} dikonfirmasi; pesanan {order.number} "
          "lunas. (Payment confirmed, order paid.)", "ok")
    return redirect(url_for("shop.payments"))


@bp.route("/payments/<int:payment_id>/reject", methods=("POST",))
@login_required(roles=SELLERS)
def reject(payment_id):
    db = get_db()
    payment = _locked_payment(db, payment_id)
    ticket = _payment_ticket(db, payment)
    try:
        orders.reject_payment(db, payment, g.user.id)
        contact = db.get(Contact, payment.contact_id)
        text = replies.render("payment_rejected", _language(contact), db,
                              amount=payment.amount,
                              ticket_number=ticket.number if ticket else "-")
        message = _tell(db, contact, payment, text, ticket.id if ticket else None)
    except (orders.PaymentDecisionError, OutboxError) as e:
        db.rollback()
        flash(f"Pembayaran tidak ditolak: {e}. (The payment was not rejected.)", "error")
        return redirect(url_for("shop.payments"))
    _note(db, ticket.id if ticket else None,
          f"payment {payment.id} of {replies.rupiah(payment.amount)} rejected by {g.user.name}",
          message)
    audit(db, g.user.id, "payment.reject", "payment", payment.id,
          {"amount": payment.amount, "message_id": message.id if message else None})
    db.commit()
    if message is not None:
        notify_queued(message.id)
    flash(f"Pembayaran {replies.rupiah(payment.amount)} ditolak. (Payment rejected.)", "ok")
    return redirect(url_for("shop.payments"))


def _locked_payment(db, payment_id: int) -> Payment:
    """The payment as committed now, row-locked until this request commits.

    A double click sends two requests: the second waits here, then reads the first one's
    decision and is refused, so stock is never taken twice and the customer gets one SMS.
    SQLite ignores FOR UPDATE and reads outside a transaction until the first write, so a
    write comes first: it takes SQLite's one writer lock (and the row lock on MariaDB).
    """
    db.execute(update(Payment).where(Payment.id == payment_id)
               .values(status=Payment.status)
               .execution_options(synchronize_session=False))
    payment = db.scalar(select(Payment).where(Payment.id == payment_id).with_for_update()
                        .execution_options(populate_existing=True))
    if payment is None:
        abort(404, f"there is no payment {payment_id}")
    return payment


def _order_to_confirm(db, payment: Payment) -> Order | None:
    """The order the sales person chose on the form, else the one the payment matched."""
    chosen = request.form.get("order_id", "").strip()
    if chosen:
        if not chosen.isdigit():
            raise orders.PaymentDecisionError(f"{chosen!r} is not an order number")
        order_id = int(chosen)
    else:
        order_id = payment.order_id
    if order_id is None:
        return None  # confirm_payment says to choose one
    order = db.scalar(select(Order).where(Order.id == order_id).with_for_update()
                      .execution_options(populate_existing=True))
    if order is None:
        raise orders.PaymentDecisionError(f"there is no order {order_id}")
    if chosen and order.id != payment.order_id and order.contact_id != payment.contact_id:
        raise orders.PaymentDecisionError(
            f"order {order.number} belongs to another customer; choose one of theirs")
    return order


def _lock_products(db, order: Order) -> None:
    # Two confirmations of different orders for one product must not both read the same
    # stock and write back their own difference; lock in id order to avoid deadlocks.
    ids = sorted({item.product_id for item in order.items})
    if ids:
        db.scalars(select(Product).where(Product.id.in_(ids)).order_by(Product.id)
                   .with_for_update().execution_options(populate_existing=True)).all()


def _payment_ticket(db, payment: Payment) -> Ticket | None:
    """The ticket the customer knows this payment by: its SMS's, else its order's."""
    ticket_id = None
    if payment.message_id is not None:
        ticket_id = db.scalar(select(Message.ticket_id).where(Message.id == payment.message_id))
    if ticket_id is None and payment.order_id is not None:
        ticket_id = db.scalar(select(Order.ticket_id).where(Order.id == payment.order_id))
    return db.get(Ticket, ticket_id) if ticket_id is not None else None


def _language(contact: Contact) -> str:
    return contact.language or helpdesk().config.language


def _tell(db, contact: Contact, payment: Payment, text: str, ticket_id) -> Message | None:
    """Queue `text` to the customer, through the modem their payment SMS came in on."""
    if not is_reachable(contact.phone):
        flash(f"{contact.phone} tidak bisa menerima SMS; pelanggan tidak diberi tahu. "
              "(Not a phone number: no SMS sent.)", "error")
        return None
    modem = None
    if payment.message_id is not None:
        modem = db.scalar(select(Message.modem).where(Message.id == payment.message_id))
    if modem is None:
        modem = db.scalar(select(Message.modem).where(Message.contact_id == contact.id,
                                                      Message.direction == "in")
                          .order_by(Message.id.desc()).limit(1))
    return queue_message(db, contact.phone, text, ticket_id=ticket_id, user_id=g.user.id,
                         contact_id=contact.id, modem=modem)


def _note(db, ticket_id, detail: str, message: Message | None) -> None:
    if ticket_id is None:
        return
    now = utcnow()
    db.add(TicketEvent(ticket_id=ticket_id, kind="note", user_id=g.user.id, detail=detail,
                       created_at=now))
    if message is not None:
        db.add(TicketEvent(ticket_id=ticket_id, kind="message_out", message_id=message.id,
                           user_id=g.user.id, created_at=now))


def _by_id(db, model, ids) -> dict:
    ids = {i for i in ids if i is not None}
    return {row.id: row for row in db.scalars(select(model).where(model.id.in_(ids)))} \
        if ids else {}


# --- orders ----------------------------------------------------------------------------

@bp.route("/orders")
@login_required
def order_list():
    db = get_db()
    status = request.args.get("status", "")
    before = request.args.get("before", type=int)
    others = set(db.scalars(select(Order.status).distinct())) - set(ORDER_STATUSES)
    statuses = [*ORDER_STATUSES, *sorted(others)]
    query = (select(Order).options(selectinload(Order.items))
             .order_by(Order.id.desc()).limit(PAGE + 1))
    if status in statuses:
        query = query.where(Order.status == status)
    else:
        status = ""
    if before is not None:
        query = query.where(Order.id < before)
    rows = db.scalars(query).all()
    older = rows[PAGE - 1].id if len(rows) > PAGE else None
    rows = rows[:PAGE]
    return render_template("shop/orders.html", orders=rows, status=status,
                           statuses=statuses, older=older,
                           contacts=_by_id(db, Contact, {o.contact_id for o in rows}))


# --- products --------------------------------------------------------------------------

@bp.route("/products")
@login_required
def products():
    return _render_products(get_db(), {})


def _render_products(db, form: dict, errors=(), status=200):
    rows = db.scalars(select(Product).order_by(Product.active.desc(), Product.code)).all()
    return render_template("shop/products.html", products=rows, form=form, errors=errors,
                           can_edit=g.user.role in CATALOGUE_KEEPERS), status


@bp.route("/products", methods=("POST",))
@login_required(roles=CATALOGUE_KEEPERS)
def save_product():
    db = get_db()
    form = {k: request.form.get(k, "").strip() for k in ("code", "name", "price", "stock")}
    fields, errors = read_product(form)
    if errors:
        return _render_products(db, form, errors, 400)
    product = db.scalar(select(Product).where(Product.code == fields["code"]))
    action = "product.update"
    if product is None:
        product, action = Product(code=fields["code"]), "product.create"
        db.add(product)
        before = {}
    else:
        before = {k: getattr(product, k) for k in ("name", "price", "stock", "active")}
    product.name, product.price, product.stock = fields["name"], fields["price"], fields["stock"]
    product.active = True  # saving a product puts it on sale
    db.flush()
    after = {k: getattr(product, k) for k in ("name", "price", "stock", "active")}
    audit(db, g.user.id, action, "product", product.id,
          {"code": product.code, **({"from": before} if before else {}), "to": after})
    db.commit()
    flash(f"Produk {product.code} disimpan. (Product saved.)", "ok")
    return redirect(url_for("shop.products"))


def read_product(form: dict) -> tuple[dict, list[str]]:
    """The product fields from the form, and a sentence for each one that is wrong."""
    errors, fields = [], {}
    code = form.get("code", "").strip().upper()
    if not CODE.fullmatch(code):
        errors.append("Kode produk wajib diisi: huruf dan angka saja, tanpa spasi, paling "
                      "panjang 32, misalnya XL25. (The code is letters and digits only.)")
    fields["code"] = code
    name = " ".join(form.get("name", "").split())
    if not name or len(name) > 200:
        errors.append("Nama produk wajib diisi, paling panjang 200 karakter. "
                      "(The name is required, at most 200 characters.)")
    fields["name"] = name
    price = _whole_number(form.get("price", ""), rupiah=True)
    if price is None or not 0 < price <= MAX_PRICE:
        errors.append("Harga harus bilangan bulat rupiah lebih dari 0, misalnya 25000. "
                      "(The price is whole rupiah greater than zero.)")
    fields["price"] = price
    stock_text = form.get("stock", "").strip()
    stock = _whole_number(stock_text) if stock_text else None
    if stock_text and (stock is None or not 0 <= stock <= MAX_STOCK):
        errors.append("Stok harus bilangan bulat 0 atau lebih; kosongkan jika tidak dihitung. "
                      "(Stock is a whole number from 0, or blank when not counted.)")
    fields["stock"] = stock
    return fields, errors


def _whole_number(text: str, rupiah: bool = False) -> int | None:
    text = text.strip()
    if rupiah:  # as people write prices: Rp 25.000
        text = re.sub(r"^rp\.?\s*", "", text, flags=re.I).replace(".", "").replace(",", "")
    return int(text) if text.isascii() and text.isdigit() else None


@bp.route("/products/<int:product_id>/deactivate", methods=("POST",))
@login_required(roles=CATALOGUE_KEEPERS)
def deactivate_product(product_id):
    return _set_active(product_id, False)


@bp.route("/products/<int:product_id>/activate", methods=("POST",))
@login_required(roles=CATALOGUE_KEEPERS)
def activate_product(product_id):
    return _set_active(product_id, True)


def _set_active(product_id: int, active: bool):
    db = get_db()
    product = db.get(Product, product_id)
    if product is None:
        abort(404, f"there is no product {product_id}")
    if product.active != active:
        product.active = active
        audit(db, g.user.id, "product.activate" if active else "product.deactivate",
              "product", product.id, {"code": product.code})
        db.commit()
    flash(f"Produk {product.code} {'dijual lagi' if active else 'tidak dijual'}. "
          f"(Product {'active' if active else 'inactive'}.)", "ok")
    return redirect(url_for("shop.products"))


def items_text(order: Order) -> str:
    """'2x XL25, 1x TSEL50' for a list cell."""
    return ", ".join(f"{i.quantity}x {i.code}" for i in order.items)


bp.add_app_template_filter(replies.rupiah, "rupiah")
bp.add_app_template_filter(items_text, "items")
