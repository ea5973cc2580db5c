"""The operator's screens: the ticket list, one ticket's conversation, reply and status."""
from __future__ import annotations

import json

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from gateway.db.models import (
    OPEN_TICKET_STATUSES,
    TICKET_KINDS,
    TICKET_STATUSES,
    Message,
    SoldItem,
    Ticket,
    TicketEvent,
    User,
    utcnow,
)
from gateway.desk import search, warranty
from gateway.desk.calls import CallFailed
from gateway.desk.outbox import OutboxError, queue_message
from gateway.desk.users import audit
from gateway.sms.phone import is_reachable
from helpdesk_web import pager
from helpdesk_web.auth import WRITERS, login_required
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("tickets", __name__)

STATUSES, KINDS = TICKET_STATUSES, TICKET_KINDS
CONVERSATION = 500  # newest messages shown on a ticket page
REPAIRERS = ("admin", "supervisor", "operator")  # who set a warranty claim's repair state


@bp.route("/")
@login_required
def index():
    status = request.args.get("status", "active")
    kind = request.args.get("kind", "")
    q = request.args.get("q", "").strip()

    query = select(Ticket).options(joinedload(Ticket.contact), joinedload(Ticket.assignee))
    if status == "active":
        query = query.where(Ticket.status.in_(OPEN_TICKET_STATUSES))
    elif status in STATUSES:
        query = query.where(Ticket.status == status)
    if kind in KINDS:
        query = query.where(Ticket.kind == kind)
    if q:
        query = query.where(search.tickets_matching(q, helpdesk().config.country))

    db = get_db()
    found = pager.page(query, Ticket.id)
    last_message = dict(db.execute(
        select(Message.ticket_id, func.max(Message.created_at))
        .where(Message.ticket_id.in_([t.id for t in found.items]))
        .group_by(Message.ticket_id)).all()) if found.items else {}
    return render_template("tickets/list.html", page=found, last_message=last_message,
                           status=status, kind=kind, q=q, statuses=STATUSES, kinds=KINDS)


def _ticket_or_404(db, ticket_id: int) -> Ticket:
    ticket = db.get(Ticket, ticket_id)
    if ticket is None:
        abort(404, f"there is no ticket {ticket_id}")
    return ticket


@bp.route("/tickets/<id:ticket_id>")
@login_required
def view(ticket_id):
    db = get_db()
    return _render_ticket(db, _ticket_or_404(db, ticket_id))


def _render_ticket(db, ticket: Ticket, reply_text: str = ""):
    messages = db.scalars(select(Message).where(Message.ticket_id == ticket.id)
                          .order_by(Message.id.desc()).limit(CONVERSATION)).all()[::-1]
    events = db.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
                        .order_by(TicketEvent.id)).all()
    user_ids = {m.user_id for m in messages} | {e.user_id for e in events}
    user_ids.discard(None)
    names = dict(db.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    claim = warranty.claim_for_ticket(db, ticket.id) if ticket.kind == "warranty" else None
    return render_template("tickets/ticket.html", ticket=ticket, messages=messages,
                           events=events, names=names, statuses=STATUSES,
                           can_write=g.user.role in WRITERS, reply_text=reply_text,
                           reachable=is_reachable(ticket.contact.phone), claim=claim,
                           replacement=db.get(SoldItem, claim.item.replaced_by_id)
                           if claim and claim.item.replaced_by_id else None,
                           warranty_status=warranty.status(claim.item) if claim else None,
                           repair_states=warranty.STATES,
                           can_repair=g.user.role in REPAIRERS)


@bp.route("/tickets/<id:ticket_id>/reply", methods=("POST",))
@login_required(roles=WRITERS)
def reply(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    # Browsers send CRLF from a textarea; on a phone each \r would cost a character.
    text = request.form.get("text", "").replace("\r\n", "\n").strip()
    if not is_reachable(ticket.contact.phone):
        flash(f"{ticket.contact.phone} tidak bisa menerima SMS (not a phone number).", "error")
        return _render_ticket(db, ticket, text), 400
    # Answer through the modem the customer wrote to, where the number knows us.
    modem = db.scalar(select(Message.modem).where(Message.ticket_id == ticket.id,
                                                  Message.direction == "in")
                      .order_by(Message.id.desc()).limit(1))
    try:
        message = queue_message(db, ticket.contact.phone, text, ticket_id=ticket.id,
                                user_id=g.user.id, contact_id=ticket.contact_id, modem=modem)
    except OutboxError as e:
        db.rollback()
        flash(f"Balasan tidak dikirim: {e}. (The reply was not queued.)", "error")
        return _render_ticket(db, ticket, text), 400
    db.add(TicketEvent(ticket_id=ticket.id, kind="message_out", message_id=message.id,
                       user_id=g.user.id, created_at=utcnow()))
    if ticket.status == "new":  # someone has picked it up
        _change_status(db, ticket, "open")
    audit(db, g.user.id, "ticket.reply", "ticket", ticket.id, {"message_id": message.id})
    db.commit()
    notify_queued(message.id)
    flash("Balasan masuk antrean kirim. (Reply queued.)", "ok")
    return redirect(url_for("tickets.view", ticket_id=ticket.id, _anchor="reply"))


@bp.route("/tickets/<id:ticket_id>/call", methods=("POST",))
@login_required(roles=WRITERS)
def call(ticket_id):
    """Click-to-call: Asterisk rings the operator's softphone, then the customer."""
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    click_to_call = helpdesk().click_to_call
    if click_to_call is None:
        flash("Telepon belum diatur: tambahkan [ami] di konfigurasi. "
              "(Click-to-call needs an [ami] section.)", "error")
        return redirect(url_for("tickets.view", ticket_id=ticket.id))
    try:
        call_id = click_to_call(g.user.id, ticket.contact.phone)
    except (CallFailed, ValueError) as e:
        flash(f"Panggilan gagal: {e}. (The call was not placed.)", "error")
        return redirect(url_for("tickets.view", ticket_id=ticket.id))
    audit(db, g.user.id, "ticket.call", "ticket", ticket.id, {"call_id": call_id})
    db.commit()
    flash("Telepon Anda akan berdering, lalu pelanggan ditelepon. "
          "(Your phone rings first, then the customer's.)", "ok")
    return redirect(url_for("tickets.view", ticket_id=ticket.id))


@bp.route("/tickets/<id:ticket_id>/status", methods=("POST",))
@login_required(roles=WRITERS)
def set_status(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    status = request.form.get("status", "")
    if status not in STATUSES:
        abort(400, f"unknown status {status!r}; choose one of {', '.join(STATUSES)}")
    if status != ticket.status:
        _change_status(db, ticket, status)
        db.commit()
        flash(f"Status: {status}.", "ok")
    return redirect(url_for("tickets.view", ticket_id=ticket.id))


@bp.route("/tickets/<id:ticket_id>/warranty", methods=("POST",))
@login_required(roles=REPAIRERS)
def set_repair_state(ticket_id):
    """A warranty claim's repair state; the customer is texted (replaced: with the new
    item's serial and warranty, by the shop's [warranty] replacement rule)."""
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    claim = warranty.claim_for_ticket(db, ticket.id)
    if claim is None:
        abort(404, f"ticket {ticket.id} has no warranty claim")
    state = request.form.get("state", "")
    config = helpdesk().config
    try:
        change = warranty.set_state(db, claim.id, state, g.user.id, config.language,
                                    rule=config.warranty_replacement,
                                    new_serial=request.form.get("new_serial", "")[:100])
    except warranty.WarrantyError as e:
        db.rollback()
        flash(f"Status perbaikan tidak diubah: {e}. (The repair state was not changed.)",
              "error")
        return redirect(url_for("tickets.view", ticket_id=ticket.id, _anchor="warranty"))
    db.commit()
    if change.message is not None:
        notify_queued(change.message.id)
    flash(f"Status perbaikan: {state}. (Repair state set; the customer is texted.)", "ok")
    return redirect(url_for("tickets.view", ticket_id=ticket.id, _anchor="warranty"))


def _change_status(db, ticket: Ticket, status: str) -> None:
    """Move the ticket, with a timeline event and an audit row, by the current user."""
    old, ticket.status = ticket.status, status
    if status in ("resolved", "closed"):
        ticket.closed_at = ticket.closed_at or utcnow()
    else:
        ticket.closed_at = None
    detail = {"from": old, "to": status}
    db.add(TicketEvent(ticket_id=ticket.id, kind="status", user_id=g.user.id,
                       detail=json.dumps(detail), created_at=utcnow()))
    audit(db, g.user.id, "ticket.status", "ticket", ticket.id, detail)
