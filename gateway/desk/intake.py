"""What a whole inbound text does to the helpdesk: contact, ticket, order, payment, reply.

Runs inside the transaction that stores the text (rule 2 in the README), so a text and
everything it causes are committed together or not at all. What the text means comes
from gateway.desk.reader, a pure function; this module only acts on it.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from sqlalchemy import select

from gateway.db.models import (
    OPEN_TICKET_STATUSES,
    Contact,
    Message,
    Order,
    Product,
    Ticket,
    TicketEvent,
    WarrantyClaim,
    utcnow,
)
from gateway.db.transaction import batch_cached, batch_map
from gateway.desk import orders, payments, reader, replies, warranty
from gateway.desk.contacts import contact_for, open_ticket_for
from gateway.desk.outbox import queue_message
from gateway.sms.phone import is_reachable

# The reader's intents as the API names them: START is a registration back in.
API_INTENT = {"start": "register"}


@dataclass
class Inbound:
    """One text being filed, and what the handlers need around it."""
    session: object
    message: Message
    contact: Contact
    open_ticket: Ticket | None
    reading: reader.Reading
    config: object

    @property
    def language(self) -> str:
        return self.contact.language or self.config.language

    def reply(self, template: str, ticket: Ticket | None = None, **fields) -> None:
        """Queue an automatic answer, unless the sender cannot receive one. Within a batch
        it is written after the batch's rows (`send_replies`), once every new ticket has
        the number the answer tells; `ticket_number` comes from `ticket`."""
        if not is_reachable(self.message.number):
            return
        pending = batch_map(self.session, "replies")
        if pending is None:
            self.written()
            self._queue_reply(template, ticket, fields)
        else:
            pending.append(functools.partial(self._queue_reply, template, ticket, fields))

    def _queue_reply(self, template: str, ticket: Ticket | None, fields: dict) -> None:
        if ticket is not None:
            fields = {"ticket_number": ticket.number, **fields}
        text = replies.render(template, self.language, self.session, **fields)
        message = queue_message(self.session, self.message.number, text,
                                modem=self.message.modem, flush=False)
        message.ticket, message.contact = ticket, self.contact

    def written(self) -> None:
        """Write what is pending, where a handler needs the ids (an order's ticket)."""
        if self.session.new:
            self.session.flush()

    def attach(self, ticket: Ticket, kind: str = "message_in") -> Ticket:
        self.message.ticket = ticket
        if ticket.id is not None:
            ticket.updated_at = utcnow()
        if ticket.waiting_since is None:  # the customer waits from their first text on
            ticket.waiting_since = self.message.created_at or utcnow()
        self.session.add(TicketEvent(ticket=ticket, kind=kind, message=self.message))
        return ticket

    def new_ticket(self, kind: str) -> Ticket:
        ticket = Ticket(kind=kind, status="new", contact=self.contact,
                        subject=" ".join(self.message.text.split())[:200], created_at=utcnow())
        self.session.add(ticket)
        self.attach(ticket, "created")
        known = batch_map(self.session, "open_tickets")
        if known is not None:  # the sender's next text in this batch joins it
            known[self.contact.phone] = ticket
        return ticket

    def follow_up(self) -> Ticket:
        """Add the text to the open ticket (the customer answered: it is open again)."""
        ticket = self.open_ticket
        if ticket.status == "pending":
            ticket.status = "open"
        return self.attach(ticket)


def defer_replies(session) -> None:
    """Within this batch, automatic answers wait for `send_replies`: the batch's rows are
    then written together, not a few statements per text."""
    session.info["batch"]["replies"] = []


def send_replies(session) -> None:
    """Queue the answers `defer_replies` held back; the batch's rows must be written."""
    for queue_reply in session.info["batch"].pop("replies", []):
        queue_reply()


def receive(session, message: Message, config) -> None:
    """File an inbound text: read it, then act on what it means."""
    if not is_reachable(message.number):
        # A carrier or a short code (TELKOMSEL, 3636): kept for the inbox, where a
        # person reads it; no contact, no ticket, and never an answer.
        message.intent = "other"
        session.add(message)
        return
    contact = contact_for(session, message.number, write=False)
    message.contact = contact
    session.add(message)
    open_ticket = open_ticket_for(session, contact.id, contact.phone)
    open_orders = orders.open_orders(session, contact.id) if contact.id is not None else []
    context = reader.Context(
        has_open_ticket=open_ticket is not None,
        open_order_numbers=tuple(o.number for o in open_orders),
        product_codes=_product_codes(session),
        product_names=_product_names(session))
    reading = reader.read(message.text, context)
    message.intent = API_INTENT.get(reading.intent, reading.intent)
    if contact.blocked:
        return  # kept and read, but a blocked sender gets no answer and opens no ticket
    inbound = Inbound(session, message, contact, open_ticket, reading, config)
    HANDLERS.get(reading.intent, _question)(inbound)


def _product_codes(session) -> frozenset:
    return batch_cached(session, "product_codes", lambda: frozenset(session.scalars(
        select(Product.code).where(Product.active.is_(True)))))


def _product_names(session) -> reader.ProductNames:
    """The active products' names for the reader, so "beli flashdisk sandisk 2" is an
    order of that product's code."""
    return batch_cached(session, "product_names", lambda: reader.product_names(session.execute(
        select(Product.code, Product.name).where(Product.active.is_(True))).all()))


def _question(inbound: Inbound) -> None:
    """A reply on the open ticket, or a new question with an acknowledgement."""
    if inbound.open_ticket is not None:
        inbound.message.intent = "reply"
        inbound.follow_up()
        return
    inbound.message.intent = "other"
    ticket = inbound.new_ticket("question")
    inbound.reply("ack_new_ticket", ticket)


def _complaint(inbound: Inbound) -> None:
    # Plain words about a problem while a ticket is open are about that ticket; the
    # keyword KOMPLAIN is a deliberate new complaint.
    if inbound.open_ticket is not None and not inbound.reading.keyword:
        ticket = inbound.follow_up()
        if ticket.kind == "question":
            ticket.kind = "complaint"
        return
    ticket = inbound.new_ticket("complaint")
    inbound.reply("complaint_ack", ticket)


def _order(inbound: Inbound) -> None:
    reading = inbound.reading
    ticket = inbound.new_ticket("order")
    inbound.written()  # the order points at its ticket and text
    lines = [orders.Line(item.code, item.quantity) for item in reading.items]
    try:
        if "unknown_product" in reading.problems and not lines:
            raise orders.OrderProblem("unknown_product",
                                      code=_code_written(reading.body, reading.keyword))
        order = orders.create_order(inbound.session, inbound.contact.id, lines, reading.note,
                                    inbound.config.unique_code_max, ticket.id,
                                    inbound.message.id)
    except orders.OrderProblem as problem:
        # A person takes it from here; the customer hears why, never silence.
        inbound.session.add(TicketEvent(ticket_id=ticket.id, kind="note",
                                        detail=f"order not taken: {problem.reason}"))
        inbound.reply("order_problem", ticket, problem=problem.reason,
                      **_problem_fields(problem))
        return
    ticket.status = "pending"  # waiting for the customer's payment
    inbound.reply("order_created", ticket, order_number=order.number, total=order.total,
                  items=[{"code": i.code, "quantity": i.quantity} for i in order.items],
                  accounts=list(inbound.config.bank_accounts))


def _code_written(text: str, keyword: str | None) -> str:
    """The product code as the customer wrote it (after PESAN), to say it is unknown."""
    words = re.split(r"[\s#,.:]+", text.strip().upper())
    if keyword and words and words[0] == keyword.upper():
        words = words[1:]
    word = words[0] if words else ""
    return word if word.isalnum() and len(word) <= 20 else ""


def _problem_fields(problem) -> dict:
    fields = {"code": "", "stock": 0}
    fields.update({k: v for k, v in problem.fields.items() if k in ("code", "stock")})
    return fields


def _payment(inbound: Inbound) -> None:
    reading, session = inbound.reading, inbound.session
    inbound.written()
    order, reason = payments.match_order(session, inbound.contact.id, reading.amount,
                                         reading.order_number)
    ticket = session.get(Ticket, order.ticket_id) if order and order.ticket_id else None
    if ticket is not None and ticket.status in OPEN_TICKET_STATUSES:
        ticket.status = "open"  # sales has something to check now
        inbound.attach(ticket)
    else:
        ticket = inbound.new_ticket("payment")
    matched = reason in ("matched", "matched_other_sender")
    payments.record_payment(session, inbound.contact.id, reading.amount, reading.bank,
                            reading.payer_name, order if matched else None, inbound.message.id)
    if not matched:
        session.add(TicketEvent(ticket=ticket, kind="note",
                                detail=f"payment not matched to an order: {reason}"))
    inbound.reply("payment_received", ticket, amount=reading.amount or 0, reason=reason,
                  order_number=order.number if order else reading.order_number,
                  expected=order.total if order else 0)


def _status(inbound: Inbound) -> None:
    """The state of the sender's own ticket or order; nobody else's. Without a number
    ("pesanan saya sudah dikirim?") their latest order and open ticket are meant; with
    neither, a person answers a question in words on a new ticket (it may be about an
    order taken by phone), and a bare STATUS is told how to name one."""
    session, reference = inbound.session, inbound.reading.reference
    found = []
    number = reader.as_id(reference)  # None past any id: nothing to look up
    if number is not None:
        ticket = session.get(Ticket, number)
        order = session.get(Order, number)
        if order is not None and order.contact_id == inbound.contact.id:
            found.append(_order_state(order))
        if ticket is not None and ticket.contact_id == inbound.contact.id:
            found.append(_ticket_state(ticket))
    elif reference is None:
        order = _latest_order(session, inbound.contact.id)
        if order is not None:
            found.append(_order_state(order))
        if inbound.open_ticket is not None and (
                order is None or order.ticket_id != inbound.open_ticket.id):
            found.append(_ticket_state(inbound.open_ticket))
        if not found and inbound.reading.keyword is None:
            inbound.reply("ack_new_ticket", inbound.new_ticket("question"))
            return
    if inbound.open_ticket is not None:
        inbound.attach(inbound.open_ticket)
    if not found:
        inbound.reply("status_not_found", inbound.open_ticket, reference=(reference or "")[:12])
    for answer in found[:2]:
        inbound.reply("status_reply", inbound.open_ticket, **answer)


def _latest_order(session, contact_id: int | None) -> Order | None:
    if contact_id is None:  # a sender first seen in this text has none
        return None
    return session.scalar(select(Order).where(Order.contact_id == contact_id)
                          .order_by(Order.id.desc()).limit(1))


def _order_state(order: Order) -> dict:
    return dict(kind="order", number=order.number, status=order.status, total=order.total)


def _ticket_state(ticket: Ticket) -> dict:
    return dict(kind="ticket", number=ticket.number, status=ticket.status, total=0)


def _register(inbound: Inbound) -> None:
    name = (inbound.reading.name or "").strip()[:200]
    if name:
        inbound.contact.name = name
    inbound.contact.opted_out = False
    if inbound.open_ticket is not None:
        inbound.attach(inbound.open_ticket)
    if name:
        inbound.reply("registered", inbound.open_ticket, name=name)
    else:
        inbound.reply("started", inbound.open_ticket)


def _help(inbound: Inbound) -> None:
    if inbound.open_ticket is not None:
        inbound.attach(inbound.open_ticket)
    inbound.reply("help", inbound.open_ticket)


def _opt(opted_out: bool, template: str):
    def handler(inbound: Inbound) -> None:
        inbound.contact.opted_out = opted_out
        if inbound.open_ticket is not None:
            inbound.attach(inbound.open_ticket)
        inbound.reply(template, inbound.open_ticket)
    return handler


def _warranty(inbound: Inbound) -> None:
    """GARANSI <serial>: the item's warranty; with more text, a claim on a warranty ticket.
    Someone else's item is answered by its warranty alone, never its owner's data."""
    reading, session = inbound.reading, inbound.session
    serial = reading.serial
    item = warranty.lookup(session, serial) if serial else None
    note = (reading.note or "")[:1000] or None
    if item is None:
        # A person looks: a serial we do not know, or none that could be read.
        ticket = inbound.new_ticket("warranty")
        session.add(TicketEvent(ticket=ticket, kind="note", detail=(
            f"warranty: serial {serial} not found" if serial else
            f"warranty: no serial read ({', '.join(reading.problems) or 'none'})")))
        inbound.reply("warranty_not_found", ticket, serial=serial or "")
        return
    inbound.written()
    mine = item.contact_id == inbound.contact.id
    state = warranty.status(item)
    fields = dict(serial=item.serial, warranty=state.warranty,
                  until=warranty.date_text(state.until))
    if note is None:
        if inbound.open_ticket is not None:
            inbound.attach(inbound.open_ticket)
        product = session.get(Product, item.product_id) if mine else None
        inbound.reply("warranty_status", inbound.open_ticket,
                      product=product.name[:40] if product else "", **fields)
        return
    claim = _open_claim_of(session, item, inbound.contact.id)
    if claim is not None:  # the same claim again: the text joins its ticket
        ticket = session.get(Ticket, claim.ticket_id)
        if ticket.status == "pending":
            ticket.status = "open"
        inbound.attach(ticket)
    else:
        ticket = inbound.new_ticket("warranty")
        inbound.written()  # the claim points at its ticket
        warranty.open_claim(session, item, ticket)
        if not mine:
            session.add(TicketEvent(ticket=ticket, kind="note", detail=(
                "warranty: the sender is not the customer this item was sold to")))
    inbound.reply("warranty_claim_ack", ticket, **fields)


def _open_claim_of(session, item, contact_id: int):
    """This sender's claim on this item whose ticket is still open, if any."""
    return session.scalar(
        select(WarrantyClaim).join(Ticket, Ticket.id == WarrantyClaim.ticket_id)
        .where(WarrantyClaim.item_id == item.id, Ticket.contact_id == contact_id,
               Ticket.status.in_(OPEN_TICKET_STATUSES))
        .order_by(WarrantyClaim.id.desc()).limit(1))


HANDLERS = {
    "order": _order,
    "payment": _payment,
    "complaint": _complaint,
    "status": _status,
    "register": _register,
    "start": _opt(False, "started"),
    "stop": _opt(True, "stopped"),
    "help": _help,
    "warranty": _warranty,
    "reply": _question,
    "other": _question,
}
