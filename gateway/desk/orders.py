"""Orders against the catalogue, unique-code totals, and payments matched to orders.

Runs inside the transaction of the text that caused it (or of the sales person's click).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select

from gateway.db.models import Order, OrderItem, Payment, Product, utcnow
from gateway.db.transaction import batch_map

OPEN_ORDER = "awaiting_payment"


class OrderProblem(Exception):
    """Why an order cannot be taken as written: a code for the reply template, and fields."""

    def __init__(self, reason: str, **fields):
        super().__init__(reason)
        self.reason, self.fields = reason, fields


@dataclass(frozen=True)
class Line:
    code: str
    quantity: int


def create_order(session, contact_id: int, lines: list[Line], note: str | None,
                 unique_code_max: int, ticket_id: int | None = None,
                 message_id: int | None = None) -> Order:
    """An order for `lines` with a total no other open order has; OrderProblem if not."""
    if not lines:
        raise OrderProblem("no_items")
    codes = [line.code.upper() for line in lines]
    products = {p.code: p for p in session.scalars(
        select(Product).where(Product.code.in_(codes), Product.active.is_(True)))}
    order = Order(contact_id=contact_id, ticket_id=ticket_id, message_id=message_id,
                  status=OPEN_ORDER, note=note, created_at=utcnow(), total=0)
    subtotal = 0
    for line in lines:
        product = products.get(line.code.upper())
        if product is None:
            raise OrderProblem("unknown_product", code=line.code.upper())
        if line.quantity < 1 or line.quantity > 1000:
            raise OrderProblem("bad_quantity", code=product.code, quantity=line.quantity)
        if product.stock is not None and product.stock < line.quantity:
            raise OrderProblem("out_of_stock", code=product.code, name=product.name,
                               stock=product.stock)
        order.items.append(OrderItem(product_id=product.id, code=product.code,
                                     quantity=line.quantity, unit_price=product.price))
        subtotal += line.quantity * product.price
    order.unique_code = _free_code(session, subtotal, unique_code_max)
    order.total = order.open_total = subtotal + order.unique_code
    session.add(order)
    session.flush()
    known = batch_map(session, "open_orders")
    if known is not None:
        known.setdefault(contact_id, []).append(order)
    return order


def _free_code(session, subtotal: int, unique_code_max: int) -> int:
    """A code 1..max whose total no open order carries (the unique index guards races)."""
    taken = set(session.scalars(select(Order.open_total).where(
        Order.open_total.between(subtotal + 1, subtotal + unique_code_max))))
    free = [c for c in range(1, unique_code_max + 1) if subtotal + c not in taken]
    if not free:
        raise OrderProblem("no_unique_code")
    return random.choice(free)  # not guessable from the order count


def open_orders(session, contact_id: int) -> list[Order]:
    known = batch_map(session, "open_orders")
    if known is not None and contact_id in known:
        return known[contact_id]
    return list(session.scalars(select(Order).where(
        Order.contact_id == contact_id, Order.status == OPEN_ORDER).order_by(Order.id)))


def prefetch_open_orders(session, contact_ids: list[int]) -> dict[int, list[Order]]:
    """Open orders of several contacts in one query, for a batch's lookup table."""
    found = {contact_id: [] for contact_id in contact_ids}
    for order in session.scalars(select(Order).where(
            Order.contact_id.in_(contact_ids), Order.status == OPEN_ORDER).order_by(Order.id)):
        found[order.contact_id].append(order)
    return found


def match_order(session, contact_id: int, amount: int | None,
                order_number: str | None) -> tuple[Order | None, str]:
    """The open order a payment is for, and why: 'matched', 'wrong_amount',
    'unknown_order', 'no_amount' or 'ambiguous' (the last four wait for a person)."""
    candidates = open_orders(session, contact_id)
    if order_number is not None:
        order = next((o for o in candidates if o.number == order_number), None)
        if order is None:
            return None, "unknown_order"
        if amount is not None and amount != order.total:
            return order, "wrong_amount"
        return order, "matched"
    if amount is None:
        return None, "no_amount"
    by_amount = [o for o in candidates if o.total == amount]
    if len(by_amount) == 1:
        return by_amount[0], "matched"
    if not candidates:
        # Paid from another phone? The unique amount still names the order.
        order = session.scalar(select(Order).where(Order.open_total == amount))
        return (order, "matched_other_sender") if order is not None else (None, "unknown_order")
    return None, "ambiguous" if by_amount else "wrong_amount"


def record_payment(session, contact_id: int, amount: int | None, bank: str | None,
                   payer_name: str | None, order: Order | None,
                   message_id: int | None) -> Payment:
    payment = Payment(contact_id=contact_id, order_id=order.id if order else None,
                      message_id=message_id, amount=amount or 0, bank=bank,
                      payer_name=payer_name, status="unverified", created_at=utcnow())
    session.add(payment)
    session.flush()
    return payment


class PaymentDecisionError(ValueError):
    """A sentence for the sales person: why this confirmation cannot be done."""


def confirm_payment(session, payment: Payment, order: Order | None, user_id: int) -> None:
    """Sales saw the money: the payment is confirmed, the order paid and its stock taken."""
    if payment.status != "unverified":
        raise PaymentDecisionError(f"payment {payment.id} is already {payment.status}")
    if order is None:
        raise PaymentDecisionError("choose the order this payment is for")
    if order.status != OPEN_ORDER:
        raise PaymentDecisionError(f"order {order.number} is {order.status}, not awaiting payment")
    for item in order.items:
        product = session.get(Product, item.product_id)
        if product.stock is not None:
            if product.stock < item.quantity:
                raise PaymentDecisionError(
                    f"only {product.stock} of {product.code} left in stock for "
                    f"{item.quantity} ordered; restock or cancel the order first")
            product.stock -= item.quantity
    now = utcnow()
    payment.status, payment.order_id = "confirmed", order.id
    payment.decided_by, payment.decided_at = user_id, now
    order.status, order.paid_at, order.open_total = "paid", now, None


def reject_payment(session, payment: Payment, user_id: int) -> None:
    if payment.status != "unverified":
        raise PaymentDecisionError(f"payment {payment.id} is already {payment.status}")
    payment.status = "rejected"
    payment.decided_by, payment.decided_at = user_id, utcnow()
