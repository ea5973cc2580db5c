"""Payments: matched to an order as the customer's text arrives, then confirmed or rejected
by sales.

A decision (`confirm`, `reject`) is all of it in the caller's session: the double-click
guard, the order paid and its stock taken, the SMS to the customer, the ticket's notes and
the audit row. The caller commits, or rolls back on PaymentDecisionError; the operator UI,
the API and the CLI all decide through here.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from gateway.db.models import Contact, Message, Order, Payment, Product, Ticket, TicketEvent, utcnow
from gateway.desk import replies
from gateway.desk.orders import OPEN_ORDER, open_orders
from gateway.desk.outbox import OutboxError, queue_message
from gateway.desk.users import audit
from gateway.sms.phone import is_reachable

UNVERIFIED = "unverified"


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
                      payer_name=payer_name, status=UNVERIFIED, created_at=utcnow())
    session.add(payment)
    session.flush()
    return payment


class PaymentDecisionError(ValueError):
    """A sentence for the sales person: why this decision cannot be made as asked."""


class PaymentConflict(PaymentDecisionError):
    """The payment, its order or the stock is no longer as the decision needs it: a second
    click, an order paid meanwhile, stock sold out."""


class PaymentNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Actor:
    """Who decides: a user, or an API token acting for none (user_id None)."""
    user_id: int | None
    name: str  # for the ticket's note: "confirmed ... by sari"
    token: str | None = None  # the API token's name, kept in the audit row


@dataclass(frozen=True)
class Decision:
    payment: Payment
    order: Order | None
    contact: Contact
    message: Message | None  # the SMS to the customer; None if their number cannot get one


def confirm_payment(session, payment: Payment, order: Order | None, user_id: int | None) -> None:
    """Sales saw the money: the payment is confirmed, the order paid and its stock taken."""
    _undecided(payment)
    if order is None:
        raise PaymentDecisionError("choose the order this payment is for")
    if order.status != OPEN_ORDER:
        raise PaymentConflict(f"order {order.number} is {order.status}, not awaiting payment")
    for item in order.items:
        product = session.get(Product, item.product_id)
        if product.stock is not None:
            if product.stock < item.quantity:
                raise PaymentConflict(
                    f"only {product.stock} of {product.code} left in stock for "
                    f"{item.quantity} ordered; restock or cancel the order first")
            product.stock -= item.quantity
    now = utcnow()
    payment.status, payment.order_id = "confirmed", order.id
    payment.decided_by, payment.decided_at = user_id, now
    order.status, order.paid_at, order.open_total = "paid", now, None


def reject_payment(session, payment: Payment, user_id: int | None) -> None:
    _undecided(payment)
    payment.status = "rejected"
    payment.decided_by, payment.decided_at = user_id, utcnow()


def _undecided(payment: Payment) -> None:
    if payment.status != UNVERIFIED:
        raise PaymentConflict(f"payment {payment.id} is already {payment.status}")


def confirm(session, payment_id: int, actor: Actor, language: str,
            order_id: int | None = None) -> Decision:
    """Confirm the payment for `order_id` (else the order it matched) and tell the customer
    in their language, else `language`."""
    payment = _locked_payment(session, payment_id)
    _undecided(payment)  # before the order: a second click hears "already confirmed"
    order = _order_to_confirm(session, payment, order_id)
    if order is not None:
        _lock_products(session, order)
    confirm_payment(session, payment, order, actor.user_id)
    contact = session.get(Contact, payment.contact_id)
    message = _tell(session, contact, payment, order.ticket_id, actor, "payment_confirmed",
                    language, amount=payment.amount, order_number=order.number)
    _note(session, order.ticket_id, actor, message,
          f"payment {payment.id} of {replies.rupiah(payment.amount)} confirmed for order "
          f"{order.number} by {actor.name}")
    _audit(session, actor, "payment.confirm", payment, message, order_id=order.id)
    return Decision(payment, order, contact, message)


def match(session, payment_id: int, order_id: int, actor: Actor) -> tuple[Payment, Order]:
    """Sales say which of the customer's open orders an unverified payment is for (the
    text named none, or the wrong one); confirming it is a separate step. Audited; the
    same row locks as `confirm`, so a second click hears that it is already matched."""
    payment = _locked_payment(session, payment_id)
    _undecided(payment)
    if payment.order_id == order_id:
        raise PaymentConflict(f"payment {payment.id} is already matched to order {order_id}")
    order = session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                           .execution_options(populate_existing=True))
    if order is None:
        raise PaymentDecisionError(f"there is no order {order_id}")
    if order.contact_id != payment.contact_id:
        raise PaymentDecisionError(
            f"order {order.number} belongs to another customer; choose one of theirs")
    if order.status != OPEN_ORDER:
        raise PaymentConflict(f"order {order.number} is {order.status}, not awaiting payment")
    before, payment.order_id = payment.order_id, order.id
    detail = {"from_order_id": before, "order_id": order.id, "amount": payment.amount}
    if actor.token is not None:
        detail["token"] = actor.token
    audit(session, actor.user_id, "payment.match", "payment", payment.id, detail)
    return payment, order


def reject(session, payment_id: int, actor: Actor, language: str) -> Decision:
    """Sales found no such money: reject the payment and tell the customer."""
    payment = _locked_payment(session, payment_id)
    reject_payment(session, payment, actor.user_id)
    ticket = _payment_ticket(session, payment)
    ticket_id = ticket.id if ticket else None
    contact = session.get(Contact, payment.contact_id)
    message = _tell(session, contact, payment, ticket_id, actor, "payment_rejected", language,
                    amount=payment.amount, ticket_number=ticket.number if ticket else "-")
    _note(session, ticket_id, actor, message,
          f"payment {payment.id} of {replies.rupiah(payment.amount)} rejected by {actor.name}")
    _audit(session, actor, "payment.reject", payment, message)
    return Decision(payment, None, contact, message)


def _locked_payment(session, payment_id: int) -> Payment:
    """The payment as committed now, row-locked until the caller commits.

    A double click sends two requests: the second waits here, then reads the first one's
    decision and is refused, so stock is never taken twice and the customer gets one SMS.
    SQLite ignores FOR UPDATE and reads outside a transaction until the first write, so a
    write comes first: it takes SQLite's one writer lock (and the row lock on MariaDB).
    On MariaDB Galera the lock holds on one node only: two clicks on two nodes both get
    here, both write the payment row, and the second to commit fails certification; the
    caller runs the decision again (gateway.db.transaction.commit_retrying), and then it
    is refused here as already decided.
    """
    session.execute(update(Payment).where(Payment.id == payment_id)
                    .values(status=Payment.status)
                    .execution_options(synchronize_session=False))
    payment = session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update()
                             .execution_options(populate_existing=True))
    if payment is None:
        raise PaymentNotFound(f"there is no payment {payment_id}")
    return payment


def _order_to_confirm(session, payment: Payment, chosen: int | None) -> Order | None:
    """The order sales chose, else the one the payment matched, row-locked."""
    order_id = chosen if chosen is not None else payment.order_id
    if order_id is None:
        return None  # confirm_payment says to choose one
    order = session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                           .execution_options(populate_existing=True))
    if order is None:
        raise PaymentDecisionError(f"there is no order {order_id}")
    if chosen is not None and order.id != payment.order_id \
            and order.contact_id != payment.contact_id:
        raise PaymentDecisionError(
            f"order {order.number} belongs to another customer; choose one of theirs")
    return order


def _lock_products(session, order: Order) -> None:
    # Two confirmations of different orders for one product must not both read the same
    # stock and write back their own difference; lock in id order to avoid deadlocks.
    ids = sorted({item.product_id for item in order.items})
    if ids:
        session.scalars(select(Product).where(Product.id.in_(ids)).order_by(Product.id)
                        .with_for_update().execution_options(populate_existing=True)).all()


def _payment_ticket(session, payment: Payment) -> Ticket | None:
    """The ticket the customer knows this payment by: its SMS's, else its order's."""
    ticket_id = None
    if payment.message_id is not None:
        ticket_id = session.scalar(select(Message.ticket_id)
                                   .where(Message.id == payment.message_id))
    if ticket_id is None and payment.order_id is not None:
        ticket_id = session.scalar(select(Order.ticket_id).where(Order.id == payment.order_id))
    return session.get(Ticket, ticket_id) if ticket_id is not None else None


def _tell(session, contact: Contact, payment: Payment, ticket_id, actor: Actor, template: str,
          language: str, **fields) -> Message | None:
    """Queue the reply `template` to the customer, through the modem their payment SMS
    came in on; None when their number cannot receive a text."""
    if not is_reachable(contact.phone):
        return None
    text = replies.render(template, contact.language or language, session, **fields)
    modem = None
    if payment.message_id is not None:
        modem = session.scalar(select(Message.modem).where(Message.id == payment.message_id))
    if modem is None:
        modem = session.scalar(select(Message.modem).where(Message.contact_id == contact.id,
                                                           Message.direction == "in")
                               .order_by(Message.id.desc()).limit(1))
    try:
        return queue_message(session, contact.phone, text, ticket_id=ticket_id,
                             user_id=actor.user_id, contact_id=contact.id, modem=modem)
    except OutboxError as e:  # an admin's template edit can make the text too long
        raise PaymentDecisionError(f"the SMS to the customer cannot be sent: {e}") from e


def _note(session, ticket_id, actor: Actor, message: Message | None, detail: str) -> None:
    if ticket_id is None:
        return
    now = utcnow()
    session.add(TicketEvent(ticket_id=ticket_id, kind="note", user_id=actor.user_id,
                            detail=detail, created_at=now))
    if message is not None:
        session.add(TicketEvent(ticket_id=ticket_id, kind="message_out", message_id=message.id,
                                user_id=actor.user_id, created_at=now))


def _audit(session, actor: Actor, action: str, payment: Payment, message: Message | None,
           **detail) -> None:
    detail.update(amount=payment.amount, message_id=message.id if message else None)
    if actor.token is not None:
        detail["token"] = actor.token
    audit(session, actor.user_id, action, "payment", payment.id, detail)
