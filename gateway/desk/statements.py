"""Bank statement credits matched to open orders, and confirmed through the payments' own
path (gateway.desk.payments.confirm): audited, the customer told by SMS, stock taken.

`record` files a read statement (gateway.imports.bank) in the caller's session: each new
credit once (its fingerprint is unique), matched first by the order's unique total, then
by the customer's SMS confirmation; anything less certain waits for a person. The caller
commits. `confirm_line` is the one click; `confirm_all` confirms lines one transaction
each, for [bank] auto_confirm.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select, update

from gateway.db.models import BankStatementLine, Order, Payment, utcnow
from gateway.db.transaction import commit_retrying
from gateway.desk import payments
from gateway.desk.orders import OPEN_ORDER
from gateway.desk.users import audit

MATCHED, CONFIRMED, AMBIGUOUS, UNMATCHED = "matched", "confirmed", "ambiguous", "unmatched"
BY_TOTAL, BY_SMS = "total", "sms"
_CHUNK = 500  # fingerprints per IN (...) query


class LineNotFound(LookupError):
    pass


@dataclass
class Recorded:
    """What an import did, for the summary the CLI prints and the page flashes."""
    new: int = 0
    known: int = 0  # imported before: nothing changed
    by_total: int = 0
    by_sms: int = 0
    ambiguous: int = 0
    unmatched: int = 0
    matched_ids: list[int] = field(default_factory=list)  # waiting for confirmation


def record(session, statement, user_id: int | None, file_name: str | None) -> Recorded:
    """File the statement's credits that are new, each with what it matched."""
    result = Recorded()
    fingerprints = [line.fingerprint for line in statement.credits]
    known = set()
    for i in range(0, len(fingerprints), _CHUNK):
        known.update(session.scalars(select(BankStatementLine.fingerprint).where(
            BankStatementLine.fingerprint.in_(fingerprints[i:i + _CHUNK]))))
    # An order or a payment another waiting line already points at is not matched again:
    # a second transfer of the same amount is for a person to look at.
    waiting = session.execute(select(BankStatementLine.order_id, BankStatementLine.payment_id)
                              .where(BankStatementLine.status == MATCHED)).all()
    claimed_orders = {o for o, _p in waiting if o is not None}
    claimed_payments = {p for _o, p in waiting if p is not None}
    rows = []
    for line in statement.credits:
        if line.fingerprint in known:
            result.known += 1
            continue
        known.add(line.fingerprint)
        status, by, order, payment, reason = _match(session, line, statement.layout.bank,
                                                    claimed_orders, claimed_payments)
        if status == MATCHED:
            claimed_orders.add(order.id)
            if payment is not None:
                claimed_payments.add(payment.id)
            result.by_total += by == BY_TOTAL
            result.by_sms += by == BY_SMS
        else:
            result.ambiguous += status == AMBIGUOUS
            result.unmatched += status == UNMATCHED
        row = BankStatementLine(
            fingerprint=line.fingerprint, bank=statement.layout.bank[:32],
            account=(line.account or None) and line.account[:40], booked_on=line.booked_on,
            description=line.description[:500], amount=line.amount, status=status,
            matched_by=by, order_id=order.id if order else None,
            payment_id=payment.id if payment else None, reason=reason and reason[:300],
            file_name=file_name and file_name[:200], imported_by=user_id, imported_at=utcnow())
        session.add(row)
        rows.append(row)
        result.new += 1
    session.flush()
    result.matched_ids = [row.id for row in rows if row.status == MATCHED]
    if not rows:
        return result  # the same statement again: nothing changes, not even the audit
    audit(session, user_id, "bank.import", "bank_statement", None,
          {"file": file_name, "bank": statement.layout.name, "account": statement.account,
           "new": result.new, "known": result.known, "by_total": result.by_total,
           "by_sms": result.by_sms, "ambiguous": result.ambiguous,
           "unmatched": result.unmatched, "debits": statement.debits,
           "unreadable": len(statement.unreadable)})
    return result


def _match(session, line, bank: str, claimed_orders: set, claimed_payments: set):
    """(status, matched_by, order, payment, reason) for one credit."""
    if line.sen:
        return UNMATCHED, None, None, None, "the amount has sen; no order's total has"
    order = session.scalar(select(Order).where(Order.open_total == line.amount,
                                               Order.status == OPEN_ORDER))
    if order is not None:
        if not _before_booking(order, line):
            return (AMBIGUOUS, BY_TOTAL, order, None, _too_late(order))
        if order.id in claimed_orders:
            return (AMBIGUOUS, BY_TOTAL, order, None,
                    f"order {order.number} is already matched by another statement line")
        # The customer's text for it, if one came: confirming that one tells them once.
        payment = session.scalar(select(Payment).where(
            Payment.order_id == order.id, Payment.status == payments.UNVERIFIED)
            .order_by(Payment.id).limit(1))
        return MATCHED, BY_TOTAL, order, payment, None
    candidates = [p for p in session.scalars(select(Payment).where(
        Payment.status == payments.UNVERIFIED, Payment.amount == line.amount)
        .order_by(Payment.id)) if p.id not in claimed_payments]
    if not candidates:
        return (UNMATCHED, None, None, None,
                "no open order has this total and no customer's SMS confirmation this amount")
    # The payer's name in the bank's text decides between customers who texted the same
    # amount; then the bank they said they paid from. BRI's text carries no name, so one
    # confirmation of exactly this amount is enough on its own.
    named = [p for p in candidates if p.payer_name and names_in(p.payer_name, line.description)]
    pool = named or candidates
    if len(pool) > 1:
        same_bank = [p for p in pool if p.bank and _bank_in(p.bank, bank, line.description)]
        pool = same_bank if len(same_bank) == 1 else pool
    if len(pool) > 1:
        return (AMBIGUOUS, BY_SMS, None, None, "SMS confirmations of this amount by several "
                "customers: payments " + ", ".join(str(p.id) for p in pool[:10]))
    payment = pool[0]
    if payment.order_id is None:
        return (AMBIGUOUS, BY_SMS, None, payment,
                f"payment {payment.id} names no order; match it to one first")
    order = session.get(Order, payment.order_id)
    if not _before_booking(order, line):
        return AMBIGUOUS, BY_SMS, order, payment, _too_late(order)
    if order.status != OPEN_ORDER or order.id in claimed_orders:
        return (AMBIGUOUS, BY_SMS, order, payment,
                f"order {order.number} of payment {payment.id} is not waiting for this money")
    return MATCHED, BY_SMS, order, payment, None


def _before_booking(order: Order, line) -> bool:
    """Whether the order was placed by the end of the day the bank booked the credit.
    Unique codes come free again once an order is paid, so an older statement's transfer
    can carry the total of an order placed since: that money paid something else. The
    order's time is UTC and the booking day local: a day's slack covers any zone."""
    return order.created_at < dt.datetime.combine(line.booked_on, dt.time()) \
        + dt.timedelta(days=2)


def _too_late(order: Order) -> str:
    return (f"order {order.number} was placed after the bank booked this transfer; "
            "it paid something else")


def names_in(name: str, description: str) -> bool:
    """Whether every word of the payer's name begins a word of the bank's text
    ('Budi S' in 'TRSF E-BANKING CR 0112/FTSCY/WS95031 BUDI SANTOSO')."""
    words = description.upper().replace(".", " ").replace(",", " ").split()
    wanted = name.upper().replace(".", " ").replace(",", " ").split()
    return bool(wanted) and all(any(w.startswith(part) for w in words) for part in wanted)


def _bank_in(payer_bank: str, bank: str, description: str) -> bool:
    payer_bank = payer_bank.upper()
    return payer_bank == bank.upper() or payer_bank in description.upper().split()


def confirm_line(session, line_id: int, actor: payments.Actor, language: str) \
        -> payments.Decision:
    """The one click: confirm the payment of a matched line, in the caller's session
    (the caller commits, or rolls back on PaymentDecisionError)."""
    now = utcnow()
    # Claimed with a conditional UPDATE, so a second click or another host hears that
    # it is taken (a row lock alone holds on one Galera node only).
    taken = session.execute(
        update(BankStatementLine)
        .where(BankStatementLine.id == line_id, BankStatementLine.status == MATCHED)
        .values(status=CONFIRMED, decided_by=actor.user_id, decided_at=now)
        .execution_options(synchronize_session=False)).rowcount
    line = session.scalar(select(BankStatementLine).where(BankStatementLine.id == line_id)
                          .execution_options(populate_existing=True))
    if line is None:
        raise LineNotFound(f"there is no statement line {line_id}")
    if not taken:
        raise payments.PaymentConflict(f"statement line {line_id} is {line.status}, "
                                       "not waiting for confirmation")
    order = session.get(Order, line.order_id)
    payment = session.get(Payment, line.payment_id) if line.payment_id else None
    if payment is None or payment.status != payments.UNVERIFIED:
        # The customer texted after the import, or never: their text's payment if there
        # is one now, else the payment the statement itself proves.
        payment = session.scalar(select(Payment).where(
            Payment.order_id == order.id, Payment.status == payments.UNVERIFIED)
            .order_by(Payment.id).limit(1)) or payments.record_payment(
            session, order.contact_id, line.amount, line.bank, None, order, None)
    decision = payments.confirm(session, payment.id, actor, language, order_id=order.id)
    line.payment_id, line.reason = payment.id, None
    detail = {"payment_id": payment.id, "order_id": order.id, "amount": line.amount,
              "matched_by": line.matched_by}
    if actor.token is not None:
        detail["token"] = actor.token
    audit(session, actor.user_id, "bank.confirm", "bank_statement_line", line.id, detail)
    return decision


@dataclass
class Confirmed:
    decisions: list = field(default_factory=list)  # payments.Decision, committed
    refused: list = field(default_factory=list)  # (line id, why), left waiting


def confirm_all(session, line_ids, actor: payments.Actor, language: str) -> Confirmed:
    """Confirm each line in its own transaction (this commits): one refused (stock sold
    out, an order cancelled meanwhile) stays waiting with the reason, the rest go on."""
    result = Confirmed()
    for line_id in line_ids:
        try:
            decision = commit_retrying(session, confirm_line, session, line_id, actor,
                                       language)
        except payments.PaymentDecisionError as e:
            session.rollback()
            session.execute(update(BankStatementLine)
                            .where(BankStatementLine.id == line_id)
                            .values(reason=str(e)[:300])
                            .execution_options(synchronize_session=False))
            session.commit()
            result.refused.append((line_id, str(e)))
        else:
            result.decisions.append(decision)
    return result


def waiting_lines(session, since, limit: int = 200) -> tuple[list, list]:
    """In one query: matched lines waiting for their click (oldest first), and the lines
    imported since `since` that a person must sort out (newest first)."""
    rows = session.scalars(select(BankStatementLine).where(or_(
        BankStatementLine.status == MATCHED,
        and_(BankStatementLine.status == AMBIGUOUS, BankStatementLine.imported_at >= since)))
        .order_by(BankStatementLine.id).limit(limit)).all()
    return ([r for r in rows if r.status == MATCHED],
            [r for r in reversed(rows) if r.status == AMBIGUOUS])
