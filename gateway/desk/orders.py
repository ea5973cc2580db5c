"""Orders against the catalogue, with unique-code totals; their payments are in
gateway.desk.payments.

Runs inside the transaction of the text that caused it (or of the sales person's click).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gateway.db.models import Order, OrderItem, Product, utcnow
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


def prefetch_open_orders(session, contact_ids, *, with_items=False) -> dict[int, list[Order]]:
    """Open orders of several contacts in one query (and their items in one more), for a
    batch's lookup table or a page that lists them."""
    found = {contact_id: [] for contact_id in contact_ids}
    if not found:
        return found
    query = select(Order).where(Order.contact_id.in_(contact_ids), Order.status == OPEN_ORDER)
    if with_items:
        query = query.options(selectinload(Order.items))
    for order in session.scalars(query.order_by(Order.id)):
        found[order.contact_id].append(order)
    return found
