"""The operator's screens: the queue, one ticket's conversation, reply, notes, status,
priority, assignee and merge. The rules live in gateway.desk.tickets; these views read
the form, call it, and say what happened."""
from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, load_only

from gateway.db.models import (
    CLOSED_RANK,
    OPEN_TICKET_STATUSES,
    TICKET_KINDS,
    TICKET_STATUSES,
    CannedResponse,
    Contact,
    Message,
    SoldItem,
    Ticket,
    TicketEvent,
    User,
    utcnow,
)
from gateway.desk import search, warranty
from gateway.desk import tickets as desk
from gateway.desk.calls import CallFailed
from gateway.desk.outbox import OutboxError, queue_message
from gateway.desk.users import audit
from gateway.sms.phone import is_reachable
from helpdesk_web import i18n, pager
from helpdesk_web.auth import WRITERS, login_required
from helpdesk_web.bounds import MAX_ID, parse_int
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("tickets", __name__)

STATUSES, KINDS, PRIORITIES = TICKET_STATUSES, TICKET_KINDS, desk.PRIORITIES
# Newest texts shown on a ticket page: enough for a long conversation, and the page stays
# well under 100 KB for a thin client.
CONVERSATION = 150
HISTORY = 100  # newest timeline events (status, assignee, ...) shown
REPAIRERS = ("admin", "supervisor", "operator")  # who set a warranty claim's repair state
AGES = {"1h": dt.timedelta(hours=1), "4h": dt.timedelta(hours=4),
        "1d": dt.timedelta(days=1), "3d": dt.timedelta(days=3)}
# Texts read first for a page of a word search, per ticket it shows: a ticket's texts
# often hold the word more than once; too few costs one more query, not a wrong page.
SEARCH_READ_AHEAD = 4
DELIVERY = ("queued", "sending", "sent", "delivered", "failed", "unknown")
# What a bubble shows of a text (tickets/ticket.html): of 150 texts, the other columns are
# a third of the page's time on MariaDB, where PyMySQL reads each value in Python.
BUBBLE = (Message.id, Message.direction, Message.text, Message.status, Message.intent,
          Message.incomplete, Message.user_id, Message.created_at, Message.last_error)
QUEUE_ORDER = (Ticket.queue_rank, Ticket.queue_since, Ticket.id)  # migrations 0017, 0018


def _assignees(db) -> list[User]:
    """Who a ticket can be given to: active users who may answer."""
    return list(db.scalars(select(User).where(User.active.is_(True), User.role != "viewer")
                           .order_by(User.name)))


@bp.route("/tickets")
@login_required
def index():
    args = request.args
    status, kind = args.get("status", "active"), args.get("kind", "")
    assignee, age = args.get("assignee", ""), args.get("age", "")
    priority, q = args.get("priority", ""), args.get("q", "").strip()

    # Only the columns the list shows: a row of all three tables is some forty columns,
    # and reading them is most of the database's share of the page (PyMySQL is Python).
    query = select(Ticket).options(
        joinedload(Ticket.contact).load_only(Contact.id, Contact.phone, Contact.name),
        joinedload(Ticket.assignee).load_only(User.id, User.name))
    if status == "active":  # the rank too: one range of the queue's index (models)
        query = query.where(Ticket.status.in_(OPEN_TICKET_STATUSES),
                            Ticket.queue_rank < CLOSED_RANK)
    elif status in STATUSES:
        query = query.where(Ticket.status == status)
    if kind in KINDS:
        query = query.where(Ticket.kind == kind)
    if priority in PRIORITIES:
        query = query.where(Ticket.priority == priority)
    if assignee == "me":
        query = query.where(Ticket.assignee_id == g.user.id)
    elif assignee == "none":
        query = query.where(Ticket.assignee_id.is_(None))
    elif parse_int(assignee, 1, 2**31 - 1) is not None:
        query = query.where(Ticket.assignee_id == int(assignee))
    if age in AGES:
        query = query.where(Ticket.created_at < utcnow() - AGES[age])
    db = get_db()
    # A search answers newest first, so that each page continues the last; the queue
    # comes in its own order, page after page: the customers waiting for an answer
    # first, then by priority, then the longest wait (Ticket.queue_order).
    found = _search_page(db, query, q) if q else pager.page_by_key(query, QUEUE_ORDER)
    rows = found.items
    last = {}
    if rows:
        for ticket_id, at in db.execute(
                select(Message.ticket_id, func.max(Message.created_at))
                .where(Message.ticket_id.in_([t.id for t in rows]))
                .group_by(Message.ticket_id)):
            last[ticket_id] = at
    waiting = {t.id: t.waiting_since for t in rows}
    targets, now = desk.sla_targets(db), utcnow()
    clocks = {t.id: desk.sla_clock(t, targets.get(t.kind), now).next for t in rows}
    return render_template(
        "tickets/list.html", page=found, rows=rows, waiting=waiting, now=now,
        clocks=clocks, last=last,
        status=status, kind=kind, assignee=assignee, age=age, priority=priority, q=q,
        statuses=STATUSES, kinds=KINDS, priorities=PRIORITIES, ages=AGES,
        users=_assignees(db), can_write=g.user.role in WRITERS)


def _search_page(db, query, q: str) -> pager.Page:
    """The page of the queue's search, newest first; on a full-text index that hands out
    its matches newest first it reads only about the page's own texts (gateway.desk.search
    page_of_tickets), whether the word is in ten texts or in a hundred thousand."""
    def run(condition):
        found = pager.page(query.where(condition), Ticket.id)
        return found, found.span
    return search.page_of_tickets(db, q, helpdesk().config.country, run,
                                  read_ahead=SEARCH_READ_AHEAD * (pager.limit() + 1))


@bp.route("/tickets/assign", methods=("POST",))
@login_required(roles=WRITERS)
def assign_many():
    """From the queue: claim one ticket (its row's button) or assign the ticked ones."""
    db = get_db()
    claim = request.form.get("claim", "")
    if claim:
        ticket = _ticket_or_404(db, _form_id(claim, "ticket"))
        _claim(db, ticket)
        return redirect(_back())
    ids = [_form_id(v, "ticket") for v in request.form.getlist("ticket")]
    if not ids:
        flash(_("Tick the tickets to assign first."), "error")
        return redirect(_back())
    assignee = _assignee_from_form(db)
    changed = 0
    for ticket in db.scalars(select(Ticket).where(Ticket.id.in_(ids))):
        try:
            changed += desk.assign(db, ticket, assignee, g.user.id)
        except desk.TicketError as e:
            db.rollback()
            flash(_("Not assigned: %(error)s.", error=str(e)), "error")
            return redirect(_back())
    db.commit()
    flash(_("%(n)s tickets assigned.", n=changed), "ok")
    return redirect(_back())


def _back() -> str:
    """Where the queue's forms return: the list with its filters, never off the site."""
    target = request.form.get("next", "")
    if target.startswith("/tickets") and "\\" not in target:
        return target
    return url_for("tickets.index")


def _form_id(value: str, what: str) -> int:
    number = parse_int(value, 1, 2**31 - 1)
    if number is None:
        abort(400, f"{what} must be a number, not {value[:24]!r}")
    return number


def _assignee_from_form(db) -> User | None:
    value = request.form.get("assignee", "")
    if value == "":
        return None  # nobody
    user = db.get(User, _form_id(value, "assignee"))
    if user is None:
        abort(400, f"there is no user {value}")
    return user


def _assign(db, ticket: Ticket, user: User | None) -> None:
    try:
        if desk.assign(db, ticket, user, g.user.id):
            flash(_("Ticket #%(number)s assigned to %(name)s.", number=ticket.number,
                    name=user.name) if user else
                  _("Ticket #%(number)s assigned to nobody.", number=ticket.number), "ok")
    except desk.TicketError as e:
        db.rollback()
        flash(_("Not assigned: %(error)s.", error=str(e)), "error")


def _claim(db, ticket: Ticket) -> None:
    try:
        if desk.claim(db, ticket, g.user):
            flash(_("Ticket #%(number)s assigned to %(name)s.", number=ticket.number,
                    name=g.user.name), "ok")
        db.commit()
    except desk.TicketError as e:
        db.rollback()
        flash(_("Not assigned: %(error)s.", error=str(e)), "error")


def _ticket_or_404(db, ticket_id: int) -> Ticket:
    ticket = db.get(Ticket, ticket_id)
    if ticket is None:
        abort(404, f"there is no ticket {ticket_id}")
    return ticket


@bp.route("/tickets/<id:ticket_id>")
@login_required
def view(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    reply_text = ""
    canned_id = parse_int(request.args.get("canned", ""), 1, 2**31 - 1)
    if canned_id is not None:  # the no-JavaScript way to pick a canned response
        canned = db.get(CannedResponse, canned_id)
        if canned is None:
            flash(_("That canned response no longer exists."), "error")
        else:
            reply_text = canned.body
    return _render_ticket(db, ticket, reply_text)


def _render_ticket(db, ticket: Ticket, reply_text: str = "", note_text: str = ""):
    messages = db.scalars(select(Message).options(load_only(*BUBBLE))
                          .where(Message.ticket_id == ticket.id)
                          .order_by(Message.id.desc()).limit(CONVERSATION)).all()[::-1]
    notes = db.scalars(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id,
                                                 TicketEvent.kind == "note")
                       .order_by(TicketEvent.id.desc()).limit(CONVERSATION)).all()[::-1]
    events = db.scalars(select(TicketEvent).where(
        TicketEvent.ticket_id == ticket.id,
        TicketEvent.kind.not_in(("note", "message_in", "message_out")))
        .order_by(TicketEvent.id.desc()).limit(HISTORY)).all()[::-1]
    # Texts and notes in one column, in time order; notes look different (and are ours).
    conversation = sorted([("msg", m) for m in messages] + [("note", n) for n in notes],
                          key=lambda item: (item[1].created_at, item[0] == "note", item[1].id))
    user_ids = {m.user_id for m in messages} | {e.user_id for e in events + notes}
    user_ids.discard(None)
    names = dict(db.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    claim = warranty.claim_for_ticket(db, ticket.id) if ticket.kind == "warranty" else None
    target = desk.sla_targets(db).get(ticket.kind)
    can_write = g.user.role in WRITERS
    return render_template(
        "tickets/ticket.html", ticket=ticket, conversation=conversation, events=events,
        names=names, statuses=STATUSES, priorities=PRIORITIES, can_write=can_write,
        reply_text=reply_text, note_text=note_text, shown_all=len(messages) < CONVERSATION,
        reachable=is_reachable(ticket.contact.phone), claim=claim,
        replacement=db.get(SoldItem, claim.item.replaced_by_id)
        if claim and claim.item.replaced_by_id else None,
        warranty_status=warranty.status(claim.item) if claim else None,
        repair_states=warranty.STATES, can_repair=g.user.role in REPAIRERS,
        sla=desk.sla_clock(ticket, target), users=_assignees(db) if can_write else [],
        canned=desk.canned_responses(db) if can_write else [])


def _to_ticket(ticket: Ticket, anchor: str | None = None):
    return redirect(url_for("tickets.view", ticket_id=ticket.id, _anchor=anchor))


@bp.route("/tickets/<id:ticket_id>/reply", methods=("POST",))
@login_required(roles=WRITERS)
def reply(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    # Browsers send CRLF from a textarea; on a phone each \r would cost a character.
    text = request.form.get("text", "").replace("\r\n", "\n").strip()
    if not is_reachable(ticket.contact.phone):
        flash(_("%(phone)s cannot receive texts (it is not a phone number).",
                phone=ticket.contact.phone), "error")
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
        flash(_("The reply was not queued: %(error)s.", error=str(e)), "error")
        return _render_ticket(db, ticket, text), 400
    db.add(TicketEvent(ticket_id=ticket.id, kind="message_out", message_id=message.id,
                       user_id=g.user.id, created_at=utcnow()))
    if ticket.status == "new":  # someone has picked it up
        desk.set_status(db, ticket, "open", g.user.id)
    audit(db, g.user.id, "ticket.reply", "ticket", ticket.id, {"message_id": message.id})
    db.commit()
    notify_queued(message.id)
    flash(_("Reply queued."), "ok")
    return _to_ticket(ticket, "reply")


@bp.route("/tickets/<id:ticket_id>/note", methods=("POST",))
@login_required(roles=WRITERS)
def note(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    try:
        event = desk.add_note(db, ticket, request.form.get("text", ""), g.user.id)
    except desk.TicketError as e:
        db.rollback()
        flash(_("The note was not saved: %(error)s.", error=str(e)), "error")
        return _render_ticket(db, ticket, note_text=request.form.get("text", "")), 400
    db.commit()
    flash(_("Note saved (the customer does not see it)."), "ok")
    return _to_ticket(ticket, f"n{event.id}")


@bp.route("/tickets/<id:ticket_id>/claim", methods=("POST",))
@login_required(roles=WRITERS)
def claim_one(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    _claim(db, ticket)
    return _to_ticket(ticket)


@bp.route("/tickets/<id:ticket_id>/assign", methods=("POST",))
@login_required(roles=WRITERS)
def assign(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    _assign(db, ticket, _assignee_from_form(db))
    db.commit()
    return _to_ticket(ticket)


@bp.route("/tickets/<id:ticket_id>/priority", methods=("POST",))
@login_required(roles=WRITERS)
def set_priority(ticket_id):
    return _set_label(ticket_id, "priority", desk.set_priority,
                      lambda word: _("Priority: %(priority)s.", priority=word))


def _set_label(ticket_id, field: str, setter, said):
    """A status or priority from the form, through the domain; a flash when it changed."""
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    value = request.form.get(field, "")
    try:
        if setter(db, ticket, value, g.user.id):
            flash(said(_label(value)), "ok")
    except desk.TicketError as e:
        abort(400, str(e))
    db.commit()
    return _to_ticket(ticket)


@bp.route("/tickets/<id:ticket_id>/merge", methods=("POST",))
@login_required(roles=WRITERS)
def merge(ticket_id):
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    value = request.form.get("into", "").strip().lstrip("#")
    target_id = parse_int(value, 1, MAX_ID)
    try:
        if target_id is None:
            raise desk.TicketError(f"write the number of the ticket to merge into, not "
                                   f"{value[:24]!r}")
        target = desk.merge(db, ticket, target_id, g.user.id)
    except desk.TicketError as e:
        db.rollback()
        flash(_("Not merged: %(error)s.", error=str(e)), "error")
        return _to_ticket(ticket, "merge")
    db.commit()
    flash(_("Ticket #%(source)s merged into this one.", source=ticket_id), "ok")
    return _to_ticket(target)


@bp.route("/tickets/<id:ticket_id>/call", methods=("POST",))
@login_required(roles=WRITERS)
def call(ticket_id):
    """Click-to-call: Asterisk rings the operator's softphone, then the customer."""
    db = get_db()
    ticket = _ticket_or_404(db, ticket_id)
    click_to_call = helpdesk().click_to_call
    if click_to_call is None:
        flash(_("Click-to-call is not set up: add an [ami] section to the configuration."),
              "error")
        return _to_ticket(ticket)
    try:
        call_id = click_to_call(g.user.id, ticket.contact.phone)
    except (CallFailed, ValueError) as e:
        flash(_("The call was not placed: %(error)s.", error=str(e)), "error")
        return _to_ticket(ticket)
    audit(db, g.user.id, "ticket.call", "ticket", ticket.id, {"call_id": call_id})
    db.commit()
    flash(_("Your phone rings first, then the customer's."), "ok")
    return _to_ticket(ticket)


@bp.route("/tickets/<id:ticket_id>/status", methods=("POST",))
@login_required(roles=WRITERS)
def set_status(ticket_id):
    return _set_label(ticket_id, "status", desk.set_status,
                      lambda word: _("Status: %(status)s.", status=word))


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
        flash(_("The repair state was not changed: %(error)s.", error=str(e)), "error")
        return _to_ticket(ticket, "warranty")
    db.commit()
    if change.message is not None:
        notify_queued(change.message.id)
    flash(_("Repair state: %(state)s. The customer is texted.", state=state), "ok")
    return _to_ticket(ticket, "warranty")


def N_(message: str) -> str:
    """Marks a message for the catalogue (a keyword of pybabel extract) without
    translating it here: it is translated where it is shown."""
    return message


# Statuses, priorities and delivery states: one gettext call per label shown, not one
# per word of this list (a queue page shows hundreds of labels).
LABELS = frozenset((
    N_("new"), N_("open"), N_("pending"), N_("resolved"), N_("closed"),
    N_("low"), N_("normal"), N_("high"), N_("urgent"),
    N_("queued"), N_("sending"), N_("sent"), N_("delivered"), N_("failed"), N_("unknown"),
    N_("received"),
))


def _label(value: str) -> str:
    """A status, priority or delivery state in the user's language."""
    return i18n.label(value) if value in LABELS else value


@bp.app_template_filter("ticket_label")
def label_filter(value) -> str:
    return _label(str(value))


@bp.app_template_global("duration")
def duration(minutes: int) -> str:
    """A span as a person says it: 2 d 3 h, 4 h 5 min, 12 min."""
    minutes = max(0, int(minutes))
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return _("%(d)s d %(h)s h", d=days, h=hours)
    if hours:
        return _("%(h)s h %(m)s min", h=hours, m=mins)
    return _("%(m)s min", m=mins)


@bp.app_template_global("minutes_since")
def minutes_since(then: dt.datetime | None, now: dt.datetime) -> int:
    return 0 if then is None else int((now - then).total_seconds() // 60)


@bp.app_template_global("event_text")
def event_text(event: TicketEvent) -> str:
    """One timeline event as a sentence; the raw detail for kinds not known here."""
    try:
        detail = json.loads(event.detail) if event.detail else {}
    except ValueError:
        detail = {}
    if not isinstance(detail, dict):
        detail = {}
    nobody = _("nobody")
    if event.kind in ("status", "priority") and "to" in detail:
        what = _("status") if event.kind == "status" else _("priority")
        return _("%(what)s: %(old)s → %(new)s", what=what, old=_label(str(detail.get("from"))),
                 new=_label(str(detail["to"])))
    if event.kind == "assign" and "to" in detail:
        return _("assignee: %(old)s → %(new)s", old=detail.get("from") or nobody,
                 new=detail["to"] or nobody)
    if event.kind == "merged" and "into" in detail:
        return _("merged into ticket #%(number)s", number=detail["into"])
    if event.kind == "merged" and "from" in detail:
        return _("ticket #%(number)s merged into this one", number=detail["from"])
    return f"{event.kind} · {event.detail}" if event.detail else event.kind
