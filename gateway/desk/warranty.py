"""Warranty by serial number: items sold, their warranty, claims and repair states.

Sales record the serial of each item sold (per order item, or a CSV of order number,
serial[, sold date]); `GARANSI <serial>` looks one up (gateway.desk.intake); a claim is a
`warranty` ticket tied to the item, whose repair state staff set here: each change texts
the customer and is audited. Everything runs in the caller's session; the caller commits,
or rolls back on WarrantyError (a sentence for the person who asked).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import func, select

from gateway.db.models import (
    WARRANTY_STATES,
    Contact,
    Message,
    Order,
    Product,
    SoldItem,
    Ticket,
    TicketEvent,
    WarrantyClaim,
    utcnow,
)
from gateway.desk import replies
from gateway.desk.outbox import OutboxError, queue_message
from gateway.desk.users import audit
from gateway.sms.phone import is_reachable

STATES = WARRANTY_STATES
RULES = ("rest", "new")
SERIAL = re.compile(r"[A-Z0-9/-]{4,40}")
MAX_CSV_LINES = 10_000
MAX_CSV_BYTES = 1024 * 1024
_MAX_ID = 2_147_483_647


class WarrantyError(ValueError):
    """Why a warranty change cannot be made as asked, as a sentence."""


class CsvRejected(WarrantyError):
    """A CSV with bad lines: nothing of it was recorded; `problems` says why, per line."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} line(s) are wrong, nothing was recorded: "
                         + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))


@dataclass(frozen=True)
class Status:
    """What GARANSI answers: `warranty` is valid, expired or none."""
    warranty: str
    until: dt.date | None


@dataclass
class Imported:
    added: list[SoldItem] = field(default_factory=list)
    unchanged: int = 0   # lines already recorded, as they are now (a re-import)


def normal_serial(text: str) -> str | None:
    """The serial as stored (upper case, trimmed), or None when it cannot be one."""
    serial = (text or "").strip().upper()
    return serial if SERIAL.fullmatch(serial) and any(c.isalnum() for c in serial) else None


def warranty_until(product: Product, sold_on: dt.date) -> dt.date | None:
    if product.warranty_days is None:
        return None
    return sold_on + dt.timedelta(days=product.warranty_days)


def status(item: SoldItem, today: dt.date | None = None) -> Status:
    today = today or utcnow().date()
    if item.warranty_until is None:
        return Status("none", None)
    return Status("valid" if today <= item.warranty_until else "expired", item.warranty_until)


def date_text(value: dt.date | None) -> str:
    return value.strftime("%d-%m-%Y") if value else ""


def lookup(session, serial: str | None) -> SoldItem | None:
    serial = normal_serial(serial or "")
    if serial is None:
        return None
    return session.scalar(select(SoldItem).where(SoldItem.serial == serial))


def items_of_order(session, order_id: int) -> list[SoldItem]:
    return session.scalars(select(SoldItem).where(SoldItem.order_id == order_id)
                           .order_by(SoldItem.id)).all()


# --- recording serials -----------------------------------------------------------------

def _sold_on(order: Order) -> dt.date:
    return (order.paid_at or order.created_at or utcnow()).date()


def record_serials(session, order_id: int, serials: dict[int, list[str]],
                   user_id: int | None = None, sold_on: dt.date | None = None
                   ) -> list[SoldItem]:
    """Record serials per order item ({order_item_id: [serial, ...]}); a serial already
    recorded for that same item is left as it is. Raises WarrantyError, nothing written."""
    order = session.get(Order, order_id) if 1 <= order_id <= _MAX_ID else None
    if order is None:
        raise WarrantyError(f"there is no order {order_id}")
    plan = _plan(session, order, [(item_id, s) for item_id, given in serials.items()
                                  for s in given], sold_on)
    added = _write(session, plan)
    if added:
        audit(session, user_id, "warranty.serials", "order", order.id,
              {"serials": [i.serial for i in added]})
    return added


def _plan(session, order: Order, pairs: list, sold_on: dt.date | None = None,
          problems: list[str] | None = None) -> list[tuple]:
    """Check every (order item id, or None for the first with room; serial[, sold date,
    line]); the new rows to write. A wrong one raises WarrantyError, or with `problems`
    is added there as "line N: ..." and the rest are checked too."""
    items = {i.id: i for i in order.items}
    counts = dict(session.execute(
        select(SoldItem.order_item_id, func.count()).where(
            SoldItem.order_id == order.id, SoldItem.replaces_id.is_(None))
        .group_by(SoldItem.order_item_id)).all())
    plan, seen = [], set()
    for item_id, raw, *more in pairs:
        day, line = (more + [None, None])[:2]
        try:
            row = _check(session, order, items, counts, seen, item_id, raw)
        except WarrantyError as e:
            if problems is None:
                raise
            problems.append(f"line {line}: {e}")
            continue
        if row is not None:
            plan.append((order, row[0], row[1], day or sold_on or _sold_on(order)))
    return plan


def _check(session, order, items, counts, seen, item_id, raw):
    serial = normal_serial(raw)
    if serial is None:
        raise WarrantyError(f"{raw.strip()[:40]!r} is not a serial number: 4 to 40 "
                            "letters, digits, - or /")
    if serial in seen:
        raise WarrantyError(f"serial {serial} is given twice")
    seen.add(serial)
    existing = session.scalar(select(SoldItem).where(SoldItem.serial == serial))
    if existing is not None:
        if existing.order_id == order.id and (item_id is None
                                              or existing.order_item_id == item_id):
            return None  # recorded already, as asked: a re-import changes nothing
        raise WarrantyError(f"serial {serial} is already sold (order "
                            f"{existing.order_id or '-'})")
    if item_id is None:
        free = [i for i in order.items if counts.get(i.id, 0) < i.quantity]
        if not free:
            raise WarrantyError(f"order {order.number} has serials for all its "
                                f"{sum(i.quantity for i in order.items)} item(s) already")
        item = free[0]
    else:
        item = items.get(item_id)
        if item is None:
            raise WarrantyError(f"order {order.number} has no item {item_id}")
        if counts.get(item.id, 0) >= item.quantity:
            raise WarrantyError(f"order {order.number} has {item.quantity}x {item.code}: "
                                "no more serials fit that quantity")
    counts[item.id] = counts.get(item.id, 0) + 1
    return item, serial


def _write(session, plan) -> list[SoldItem]:
    added = []
    for order, item, serial, sold_on in plan:
        product = session.get(Product, item.product_id)
        row = SoldItem(serial=serial, product_id=product.id, order_id=order.id,
                       order_item_id=item.id, contact_id=order.contact_id, sold_on=sold_on,
                       warranty_until=warranty_until(product, sold_on), created_at=utcnow())
        session.add(row)
        added.append(row)
    session.flush()
    return added


def import_csv(session, data: bytes | str, user_id: int | None = None) -> Imported:
    """Record the serials of a CSV: order number, serial[, sold date YYYY-MM-DD], one item
    a line (a header line is skipped). All lines or none: CsvRejected names each bad one."""
    if isinstance(data, bytes):
        if len(data) > MAX_CSV_BYTES:
            raise CsvRejected([f"the file is over {MAX_CSV_BYTES // 1024} KiB"])
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise CsvRejected(["the file is not UTF-8 text"]) from None
    rows = list(csv.reader(io.StringIO(data)))
    if len(rows) > MAX_CSV_LINES:
        raise CsvRejected([f"the file has {len(rows)} lines; at most {MAX_CSV_LINES} at once"])
    problems: list[str] = []
    by_order: dict[int, list[tuple[int, str, dt.date | None]]] = {}
    for number, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if number == 1 and not cells[0].lstrip("#").isdigit():
            continue  # a header
        if len(cells) not in (2, 3):
            problems.append(f"line {number}: expected order number, serial[, sold date], "
                            f"found {len(cells)} fields")
            continue
        order_text = cells[0].lstrip("#")
        order_id = int(order_text) if order_text.isdigit() and len(order_text) <= 10 else 0
        if not 1 <= order_id <= _MAX_ID:
            problems.append(f"line {number}: {cells[0][:20]!r} is not an order number")
            continue
        sold_on = None
        if len(cells) == 3 and cells[2]:
            try:
                sold_on = dt.date.fromisoformat(cells[2])
            except ValueError:
                problems.append(f"line {number}: {cells[2][:20]!r} is not a date like "
                                "2026-11-23")
                continue
        by_order.setdefault(order_id, []).append((number, cells[1], sold_on))
    plan = []
    for order_id, lines in by_order.items():
        order = session.get(Order, order_id)
        if order is None:
            problems.extend(f"line {n}: there is no order {order_id}" for n, _, _ in lines)
            continue
        plan.extend(_plan(session, order, [(None, serial, day, n) for n, serial, day in lines],
                          problems=problems))
    serials = [p[2] for p in plan]
    twice = {s for s in serials if serials.count(s) > 1}
    if twice:  # in two orders of one file
        problems.append(f"serials given for two orders: {', '.join(sorted(twice))}")
    if problems:
        raise CsvRejected(sorted(problems, key=_line_number))
    total = sum(len(lines) for lines in by_order.values())
    result = Imported(added=_write(session, plan))
    result.unchanged = total - len(result.added)
    if result.added:
        audit(session, user_id, "warranty.import", "order", None,
              {"serials": [i.serial for i in result.added]})
    return result


def _line_number(problem: str) -> int:
    m = re.match(r"line (\d+):", problem)
    return int(m.group(1)) if m else 0


# --- claims and repair states ----------------------------------------------------------

def claim_for_ticket(session, ticket_id: int) -> WarrantyClaim | None:
    return session.scalar(select(WarrantyClaim).where(WarrantyClaim.ticket_id == ticket_id))


def open_claim(session, item: SoldItem, ticket: Ticket) -> WarrantyClaim:
    now = utcnow()
    claim = WarrantyClaim(ticket_id=ticket.id, item_id=item.id, state="received",
                          created_at=now, updated_at=now, received_at=now)
    session.add(claim)
    session.flush()
    return claim


@dataclass(frozen=True)
class Change:
    claim: WarrantyClaim
    message: Message | None   # the SMS to the customer; None if their number takes none
    replacement: SoldItem | None = None


def set_state(session, claim_id: int, state: str, user_id: int | None, language: str,
              *, rule: str = "rest", new_serial: str | None = None,
              today: dt.date | None = None) -> Change:
    """Move a claim to `state`, text the customer and audit it. "replaced" needs the new
    item's serial; its warranty follows `rule` ("rest" of the original, or a "new" one)."""
    claim = session.get(WarrantyClaim, claim_id) if 1 <= claim_id <= _MAX_ID else None
    if claim is None:
        raise WarrantyError(f"there is no warranty claim {claim_id}")
    if state not in STATES:
        raise WarrantyError(f"unknown repair state {state!r}; choose one of {', '.join(STATES)}")
    if state == claim.state:
        raise WarrantyError(f"the claim is already {state}")
    replacement = None
    if state == "replaced":
        replacement = replace_item(session, claim.item, new_serial, rule, today)
    now = utcnow()
    old, claim.state, claim.updated_at = claim.state, state, now
    setattr(claim, f"{state}_at", now)
    ticket = session.get(Ticket, claim.ticket_id)
    contact = session.get(Contact, ticket.contact_id)
    item = replacement or claim.item
    message = _tell(session, contact, ticket, user_id, language, serial=claim.item.serial,
                    state=state, ticket_number=ticket.number,
                    new_serial=replacement.serial if replacement else "",
                    until=date_text(item.warranty_until))
    detail = {"claim": claim.id, "from": old, "to": state,
              "message_id": message.id if message else None}
    if replacement is not None:
        detail.update(replacement=replacement.serial, rule=rule,
                      warranty_until=str(replacement.warranty_until))
    session.add(TicketEvent(ticket_id=ticket.id, kind="warranty", user_id=user_id,
                            detail=f"repair state {old} -> {state}"
                            + (f", replaced by {replacement.serial}" if replacement else ""),
                            created_at=now))
    if message is not None:
        session.add(TicketEvent(ticket_id=ticket.id, kind="message_out",
                                message_id=message.id, user_id=user_id, created_at=now))
    audit(session, user_id, "warranty.state", "ticket", ticket.id, detail)
    return Change(claim, message, replacement)


def replace_item(session, item: SoldItem, new_serial: str | None, rule: str,
                 today: dt.date | None = None) -> SoldItem:
    """A new item in place of `item`: same product, order and customer; its warranty the
    rest of the original ("rest") or a new period from today ("new")."""
    if rule not in RULES:
        raise WarrantyError(f"unknown replacement rule {rule!r}")
    serial = normal_serial(new_serial or "")
    if serial is None:
        raise WarrantyError("a replacement needs the new item's serial number: 4 to 40 "
                            "letters, digits, - or /")
    if item.replaced_by_id is not None:
        raise WarrantyError(f"serial {item.serial} has been replaced already")
    if session.scalar(select(SoldItem.id).where(SoldItem.serial == serial)) is not None:
        raise WarrantyError(f"serial {serial} is already sold")
    today = today or utcnow().date()
    product = session.get(Product, item.product_id)
    until = item.warranty_until if rule == "rest" else warranty_until(product, today)
    new = SoldItem(serial=serial, product_id=item.product_id, order_id=item.order_id,
                   order_item_id=item.order_item_id, contact_id=item.contact_id,
                   sold_on=today, warranty_until=until, replaces_id=item.id,
                   created_at=utcnow())
    session.add(new)
    session.flush()
    item.replaced_by_id = new.id
    return new


def _tell(session, contact: Contact, ticket: Ticket, user_id, language: str,
          **fields) -> Message | None:
    if not is_reachable(contact.phone):
        return None
    text = replies.render("warranty_state", contact.language or language, session, **fields)
    modem = session.scalar(select(Message.modem).where(Message.ticket_id == ticket.id,
                                                       Message.direction == "in")
                           .order_by(Message.id.desc()).limit(1))
    try:
        return queue_message(session, contact.phone, text, ticket_id=ticket.id,
                             user_id=user_id, contact_id=contact.id, modem=modem)
    except OutboxError as e:
        raise WarrantyError(f"the SMS to the customer cannot be sent: {e}") from e
