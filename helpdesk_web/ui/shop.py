"""The shop's screens: payments to confirm or reject, the order list, the product catalogue."""
from __future__ import annotations

import datetime as dt
import re

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from gateway.db.models import Contact, Order, Payment, Product, utcnow
from gateway.db.transaction import commit_retrying
from gateway.desk import orders, payments, replies, statements, warranty
from gateway.desk.users import audit
from gateway.imports import bank
from helpdesk_web import pager
from helpdesk_web.auth import login_required
from helpdesk_web.bounds import MAX_ID, parse_int
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("shop", __name__)

# Who may say that money arrived (and so release stock), and who keeps the catalogue.
SELLERS = ("admin", "supervisor", "sales")
CATALOGUE_KEEPERS = ("admin", "supervisor")
SERIAL_KEEPERS = ("admin", "sales")  # who records the serials of items sold
MAX_WARRANTY_DAYS = 36_500
MAX_SERIALS_FIELD = 20_000  # characters of one item's serials box
# Two people recording one serial at the same moment: the unique index refuses the second.
def _sold_meanwhile() -> str:
    return _("a serial was recorded by someone else meanwhile; reload and try again")


ORDER_STATUSES = (orders.OPEN_ORDER, "paid", "cancelled")
CODE = re.compile(r"[A-Z0-9]{1,32}")  # customers type it in an SMS: PESAN XL25 2
MAX_PRICE = 10**12
MAX_STOCK = 10**9


# What a refused decision flashes, with the reason.
def _not_confirmed(reason) -> str:
    return _("The payment was not confirmed: %(reason)s.", reason=str(reason))


def _not_rejected(reason) -> str:
    return _("The payment was not rejected: %(reason)s.", reason=str(reason))


def _not_matched(reason) -> str:
    return _("The payment was not matched: %(reason)s.", reason=str(reason))


# --- payments --------------------------------------------------------------------------

@bp.route("/payments", endpoint="payments")
@login_required
def payment_list():
    db = get_db()
    waiting = db.scalars(select(Payment).where(Payment.status == payments.UNVERIFIED)
                         .order_by(Payment.id)).all()
    decided = pager.page(select(Payment).where(Payment.status != payments.UNVERIFIED),
                         Payment.id)
    rows = [*waiting, *decided.items]
    contacts = _by_id(db, Contact, {p.contact_id for p in rows})
    matched = _by_id(db, Order, {p.order_id for p in rows}, selectinload(Order.items))
    # An unmatched payment waits for a person to say which open order it pays.
    choices = orders.prefetch_open_orders(
        db, {p.contact_id for p in waiting if p.order_id is None}, with_items=True)
    bank_lines, ambiguous = statements.waiting_lines(db, utcnow() - dt.timedelta(days=14))
    line_orders = _by_id(db, Order, {x.order_id for x in [*bank_lines, *ambiguous]},
                         selectinload(Order.items))
    contacts.update(_by_id(db, Contact, {o.contact_id for o in line_orders.values()}
                           - contacts.keys()))
    return render_template("shop/payments.html", waiting=waiting, decided=decided,
                           contacts=contacts, matched=matched, choices=choices,
                           can_decide=g.user.role in SELLERS, bank_lines=bank_lines,
                           ambiguous=ambiguous, line_orders=line_orders,
                           bank_formats=sorted(bank.layouts(helpdesk().config.bank_formats)),
                           auto_confirm=helpdesk().config.bank_auto_confirm)


# --- bank statements: an upload matched to orders, then one click per matched line -------

@bp.route("/payments/bank", methods=("POST",))
@login_required(roles=SELLERS)
def import_statement():
    upload = request.files.get("file")
    data = upload.read(bank.MAX_BYTES + 1) if upload else b""
    if not data.strip():
        flash(_("Choose the CSV file your internet banking exported."), "error")
        return redirect(url_for("shop.payments"))
    chosen = request.form.get("bank", "").strip().lower() or None
    db = get_db()
    try:
        summary = bank.import_statement(db, data, helpdesk().config,
                                        payments.Actor(g.user.id, g.user.name), bank=chosen,
                                        file_name=_file_name(upload.filename))
    except bank.StatementUnreadable as e:
        db.rollback()
        return render_template("shop/payments_import.html", summary=None,
                               problem=str(e)), 400
    except IntegrityError:
        db.rollback()
        return render_template("shop/payments_import.html", summary=None, problem=_(
            "the same statement is being imported by someone else; upload it again")), 409
    for message_id in summary.message_ids:
        notify_queued(message_id)
    return render_template("shop/payments_import.html", summary=summary, problem=None)


def _file_name(name: str | None) -> str | None:
    """The uploaded file's name as kept in the audit row: no path, no control characters
    (PostgreSQL's text cannot hold a NUL)."""
    name = "".join(c for c in (name or "").replace("\\", "/").rsplit("/", 1)[-1]
                   if c.isprintable())
    return name[:200] or None


@bp.route("/payments/bank/confirm", methods=("POST",))
@login_required(roles=SELLERS)
def confirm_statement_line():
    line_id = parse_int(request.form.get("line_id", "").strip(), 1, MAX_ID)
    if line_id is None:
        flash(_not_confirmed(_("choose a statement line")), "error")
        return redirect(url_for("shop.payments"))
    db = get_db()
    try:
        decision = commit_retrying(db, statements.confirm_line, db, line_id,
                                   payments.Actor(g.user.id, g.user.name),
                                   helpdesk().config.language)
    except statements.LineNotFound as e:
        db.rollback()
        abort(404, str(e))
    except payments.PaymentDecisionError as e:
        db.rollback()
        flash(_not_confirmed(e), "error")
        return redirect(url_for("shop.payments", _anchor="bank"))
    flash(_("Payment of %(amount)s confirmed; order %(order)s is paid.",
            amount=replies.rupiah(decision.payment.amount), order=decision.order.number), "ok")
    if decision.message is not None:
        notify_queued(decision.message.id)
    else:
        flash(_("%(number)s cannot receive texts; the customer was not told.",
                number=decision.contact.phone), "error")
    return redirect(url_for("shop.payments", _anchor="bank"))


@bp.route("/payments/<id:payment_id>/confirm", methods=("POST",))
@login_required(roles=SELLERS)
def confirm(payment_id):
    chosen = request.form.get("order_id", "").strip()
    order_id = parse_int(chosen, 1, MAX_ID) if chosen else None
    if chosen and order_id is None:
        flash(_not_confirmed(_("%(chosen)s is not an order number", chosen=repr(chosen[:24]))),
              "error")
    else:
        decision = _decide(payments.confirm, payment_id, _not_confirmed, order_id=order_id)
        if decision is not None:
            flash(_("Payment of %(amount)s confirmed; order %(order)s is paid.",
                    amount=replies.rupiah(decision.payment.amount),
                    order=decision.order.number), "ok")
    return redirect(url_for("shop.payments"))


@bp.route("/payments/<id:payment_id>/match", methods=("POST",))
@login_required(roles=SELLERS)
def match(payment_id):
    """Sales say which open order of the customer's an unmatched payment is for."""
    chosen = request.form.get("order_id", "").strip()
    order_id = parse_int(chosen, 1, MAX_ID) if chosen else None
    if order_id is None:
        flash(_not_matched(_("choose one of the customer's open orders")), "error")
        return redirect(url_for("shop.payments", _anchor=f"p{payment_id}"))
    db = get_db()
    try:
        payment, order = payments.match(db, payment_id, order_id,
                                        payments.Actor(g.user.id, g.user.name))
    except payments.PaymentNotFound as e:
        abort(404, str(e))
    except payments.PaymentDecisionError as e:
        db.rollback()
        flash(_not_matched(e), "error")
    else:
        db.commit()
        flash(_("Payment of %(amount)s matched to order %(order)s; confirm it when the money "
                "is there.", amount=replies.rupiah(payment.amount), order=order.number), "ok")
    return redirect(url_for("shop.payments", _anchor=f"p{payment_id}"))


@bp.route("/payments/<id:payment_id>/reject", methods=("POST",))
@login_required(roles=SELLERS)
def reject(payment_id):
    decision = _decide(payments.reject, payment_id, _not_rejected)
    if decision is not None:
        flash(_("Payment of %(amount)s rejected.",
                amount=replies.rupiah(decision.payment.amount)), "ok")
    return redirect(url_for("shop.payments"))


def _decide(decide, payment_id: int, refused, **kwargs):
    """Run a payment decision for the user and commit it, or flash why not (None)."""
    db = get_db()
    try:  # committed here; a conflict (a double click reaching two UI processes on two
        # Galera nodes) runs it again, and the second hears "already confirmed"
        decision = commit_retrying(db, decide, db, payment_id,
                                   payments.Actor(g.user.id, g.user.name),
                                   helpdesk().config.language, **kwargs)
    except payments.PaymentNotFound as e:
        abort(404, str(e))
    except payments.PaymentDecisionError as e:
        db.rollback()
        flash(refused(e), "error")
        return None
    if decision.message is not None:
        notify_queued(decision.message.id)
    else:
        flash(_("%(number)s cannot receive texts; the customer was not told.",
                number=decision.contact.phone), "error")
    return decision


def _by_id(db, model, ids, *options) -> dict:
    ids = {i for i in ids if i is not None}
    return {row.id: row for row in db.scalars(
        select(model).options(*options).where(model.id.in_(ids)))} if ids else {}


# --- orders ----------------------------------------------------------------------------

@bp.route("/orders")
@login_required
def order_list():
    db = get_db()
    status = request.args.get("status", "")
    others = set(db.scalars(select(Order.status).distinct())) - set(ORDER_STATUSES)
    statuses = [*ORDER_STATUSES, *sorted(others)]
    query = select(Order).options(selectinload(Order.items))
    if status in statuses:
        query = query.where(Order.status == status)
    else:
        status = ""
    found = pager.page(query, Order.id)
    return render_template("shop/orders.html", page=found, status=status, statuses=statuses,
                           contacts=_by_id(db, Contact, {o.contact_id for o in found.items}),
                           can_record=g.user.role in SERIAL_KEEPERS)


@bp.route("/orders/<id:order_id>")
@login_required
def order_view(order_id):
    return _render_order(get_db(), order_id)


def _render_order(db, order_id: int, form: dict | None = None, errors=(), status=200):
    order = db.get(Order, order_id)
    if order is None:
        abort(404, f"there is no order {order_id}")
    sold = warranty.items_of_order(db, order.id)
    serials = {}
    for item in sold:
        serials.setdefault(item.order_item_id, []).append(item)
    return render_template("shop/order.html", order=order, contact=db.get(Contact,
                           order.contact_id), serials=serials, form=form or {},
                           errors=errors, products=_by_id(db, Product,
                                                          {i.product_id for i in order.items}),
                           can_record=g.user.role in SERIAL_KEEPERS), status


@bp.route("/orders/<id:order_id>/serials", methods=("POST",))
@login_required(roles=SERIAL_KEEPERS)
def record_serials(order_id):
    db = get_db()
    order = db.get(Order, order_id)
    if order is None:
        abort(404, f"there is no order {order_id}")
    form, given = {}, {}
    for item in order.items:
        text = request.form.get(f"serials-{item.id}", "")[:MAX_SERIALS_FIELD]
        form[item.id] = text
        words = [w for w in re.split(r"[\s,;]+", text) if w]
        if words:
            given[item.id] = words
    try:
        added = warranty.record_serials(db, order.id, given, g.user.id)
        db.commit()
    except (warranty.WarrantyError, IntegrityError) as e:
        db.rollback()
        why = e if isinstance(e, warranty.WarrantyError) else _sold_meanwhile()
        return _render_order(db, order_id, form, [
            _("No serial was recorded: %(reason)s.", reason=str(why))], 400)
    flash(_("%(n)s serial(s) recorded.", n=len(added)), "ok")
    return redirect(url_for("shop.order_view", order_id=order.id))


@bp.route("/orders/serials", methods=("POST",))
@login_required(roles=SERIAL_KEEPERS)
def import_serials():
    db = get_db()
    upload = request.files.get("file")
    data = upload.read(warranty.MAX_CSV_BYTES + 1) if upload else b""
    if not data.strip():
        flash(_("Choose a CSV file: order number, serial[, date sold]."), "error")
        return redirect(url_for("shop.order_list"))
    try:
        result = warranty.import_csv(db, data, g.user.id)
        db.commit()
    except warranty.CsvRejected as e:
        db.rollback()
        return render_template("shop/import.html", problems=e.problems), 400
    except IntegrityError:
        db.rollback()
        return render_template("shop/import.html", problems=[_sold_meanwhile()]), 400
    flash(_("CSV: %(new)s new serial(s), %(unchanged)s already recorded.",
            new=len(result.added), unchanged=result.unchanged), "ok")
    return redirect(url_for("shop.order_list"))


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
    form = {k: request.form.get(k, "").strip()
            for k in ("code", "name", "price", "stock", "warranty_days")}
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
        before = {k: getattr(product, k) for k in PRODUCT_FIELDS}
    product.name, product.price, product.stock = fields["name"], fields["price"], fields["stock"]
    product.warranty_days = fields["warranty_days"]
    product.active = True  # saving a product puts it on sale
    db.flush()
    after = {k: getattr(product, k) for k in PRODUCT_FIELDS}
    audit(db, g.user.id, action, "product", product.id,
          {"code": product.code, **({"from": before} if before else {}), "to": after})
    db.commit()
    flash(_("Product %(code)s saved.", code=product.code), "ok")
    return redirect(url_for("shop.products"))


PRODUCT_FIELDS = ("name", "price", "stock", "warranty_days", "active")


def read_product(form: dict) -> tuple[dict, list[str]]:
    """The product fields from the form, and a sentence for each one that is wrong."""
    errors, fields = [], {}
    code = form.get("code", "").strip().upper()
    if not CODE.fullmatch(code):
        errors.append(_("The product code is required: letters and digits only, no spaces, "
                        "at most 32, for example XL25."))
    fields["code"] = code
    name = " ".join(form.get("name", "").split())
    if not name or len(name) > 200:
        errors.append(_("The product name is required, at most 200 characters."))
    fields["name"] = name
    # as people write prices: Rp 25.000
    price_text = re.sub(r"^rp\.?\s*", "", form.get("price", "").strip(), flags=re.I)
    price = parse_int(price_text.replace(".", "").replace(",", ""), 1, MAX_PRICE)
    if price is None:
        errors.append(_("The price is whole rupiah greater than 0, for example 25000."))
    fields["price"] = price
    stock_text = form.get("stock", "").strip()
    stock = parse_int(stock_text, 0, MAX_STOCK) if stock_text else None
    if stock_text and stock is None:
        errors.append(_("Stock is a whole number from 0; leave it blank when it is not "
                        "counted."))
    fields["stock"] = stock
    days_text = form.get("warranty_days", "").strip()
    days = parse_int(days_text, 0, MAX_WARRANTY_DAYS) if days_text else None
    if days_text and days is None:
        errors.append(_("The warranty is a number of days from 0 to %(most)s; leave it blank "
                        "for none.", most=MAX_WARRANTY_DAYS))
    fields["warranty_days"] = days
    return fields, errors


@bp.route("/products/<id:product_id>/deactivate", methods=("POST",))
@login_required(roles=CATALOGUE_KEEPERS)
def deactivate_product(product_id):
    return _set_active(product_id, False)


@bp.route("/products/<id:product_id>/activate", methods=("POST",))
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
    flash(_("Product %(code)s is on sale again.", code=product.code) if active
          else _("Product %(code)s is no longer on sale.", code=product.code), "ok")
    return redirect(url_for("shop.products"))


def items_text(order: Order) -> str:
    """'2x XL25, 1x TSEL50' for a list cell."""
    return ", ".join(f"{i.quantity}x {i.code}" for i in order.items)


def order_status(status: str) -> str:
    """An order's status in the user's language."""
    return {orders.OPEN_ORDER: _("awaiting payment"), "paid": _("paid"),
            "cancelled": _("cancelled")}.get(status, status)


bp.add_app_template_filter(replies.rupiah, "rupiah")
bp.add_app_template_filter(items_text, "items")
bp.add_app_template_filter(order_status, "order_status")
