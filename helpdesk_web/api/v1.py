"""The JSON API under /api/v1, exactly the shapes the README documents.

Authentication is a Bearer token (users.create_token). A token made for a user acts
with that user's role, so a viewer's token reads but cannot send; a token for no user
is an integration's and may do everything the API offers.

Lists are newest first and paged by id cursors (helpdesk_web.pager): `before=ID` pages back
in time and `after=ID` forward; `next` is the value to pass again in the same parameter for
the following page, null at the end.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import joinedload, selectinload

from gateway.db.models import TICKET_KINDS as KINDS
from gateway.db.models import TICKET_STATUSES as STATUSES
from gateway.db.models import Call, Contact, Message, Order, Payment, Ticket, utcnow
from gateway.db.transaction import commit_retrying, is_conflict
from gateway.desk import broadcasts as broadcast_desk
from gateway.desk import crm, payments, users
from gateway.desk import health as health_module
from gateway.desk import tickets as ticket_desk
from gateway.desk.outbox import OutboxError, queue_message
from gateway.sms.phone import normalise
from helpdesk_web import pager
from helpdesk_web.api.serialize import (
    call_dict,
    contact_detail_dict,
    contact_dict,
    iso,
    message_dict,
    order_dict,
    payment_dict,
    ticket_dict,
)
from helpdesk_web.auth import WRITERS
from helpdesk_web.bounds import int_arg, json_int, json_object
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Who may say that money arrived, by API; the UI also lets a supervisor.
PAYMENT_DECIDERS = ("admin", "sales")


@bp.before_request
def require_token():
    if request.endpoint == "api.health":
        return
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        abort(401, "send an API token as 'Authorization: Bearer <token>'; "
                   "an admin creates one with `helpdesk token create NAME`")
    db = get_db()
    token = users.find_token(db, raw.strip())
    if token is None:
        abort(401, "this API token is unknown or revoked; ask an admin for a new one")
    user = token.user
    if user is not None and not user.active:
        abort(401, f"the user {user.name!r} behind this API token is disabled")
    try:
        db.commit()  # last_used_at
    except DBAPIError as e:  # a hint only: another UI process (on another Galera node)
        db.rollback()        # wrote it at the same moment, and its write stands
        if not is_conflict(e):
            raise
    g.token, g.api_user = token, user


def _require_role(roles, doing: str) -> None:
    """403 for a token whose user's role is not in `roles` (an integration's may all)."""
    if g.api_user is not None and g.api_user.role not in roles:
        abort(403, f"the role {g.api_user.role!r} may not {doing}; "
                   f"only {', '.join(roles)} may")


def _choice_arg(name: str, choices):
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        abort(400, f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _list(query, column, serialize):
    """One page of `query`, as {"items": [...], "next": cursor or None}."""
    found = pager.page(query, column)
    return jsonify(items=[serialize(r) for r in found.items], next=found.next)


def _phone_arg(name: str) -> str | None:
    """A number from the query string in E.164, or as written when it is not a phone
    number (alphanumeric senders such as 'TELKOMSEL' are stored as they came)."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    return normalise(value, helpdesk().config.country) or value


@bp.route("/health")
def health():
    config = helpdesk().config
    try:
        modems = health_module.modem_colours(get_db(), config, utcnow()).values()
        attention = health_module.attention_count(get_db())
    except SQLAlchemyError:
        current_app.logger.warning("health: the database is not answering", exc_info=True)
        # 503, so a proxy in front of several UI processes stops sending people here.
        return jsonify(status="down", db="down", attention=None, modems=[]), 503
    # `status` is what the modem's worker last recorded (up, down, unknown); `health` adds
    # the thresholds of [health]: green, yellow, red.
    # `host`: the gateway host whose daemon has the modem and writes its readings.
    items = [{"name": m["name"], "host": m["host"], "status": m["status"],
              "health": m["health"], "signal_percent": m["signal_percent"],
              "last_seen": iso(m["last_seen"])}
             for m in modems]
    if items and all(m["health"] == "red" for m in items):
        status = "down"  # no modem can carry a text
    elif all(m["health"] == "green" for m in items) and not attention:
        status = "ok"
    else:
        status = "degraded"  # a weak modem, or texts waiting for a person to read them
    return jsonify(status=status, db="ok", attention=attention, modems=items)


MODEM_FIELDS = ("name", "host", "status", "health", "signal_percent", "battery_percent", "operator",
                "network", "imei", "last_seen", "last_error", "received_count", "sent_count",
                "failed_count", "balance", "balance_expiry", "balance_text", "balance_at",
                "balance_floor", "low_balance", "sim_used", "sim_size", "sim_full")


@bp.route("/modems")
def modems():
    """Every configured modem as the health monitor last recorded it (not paged: a
    gateway has a handful)."""
    rows = health_module.modem_colours(get_db(), helpdesk().config, utcnow()).values()
    items = []
    for m in rows:
        item = {field: m[field] for field in MODEM_FIELDS}
        item["last_seen"], item["balance_at"] = iso(m["last_seen"]), iso(m["balance_at"])
        expiry = m["balance_expiry"]
        item["balance_expiry"] = expiry.isoformat() if expiry else None
        items.append(item)
    return jsonify(items=items, next=None)


@bp.route("/messages")
def messages():
    query = select(Message)
    direction = _choice_arg("direction", ("in", "out"))
    if direction:
        query = query.where(Message.direction == direction)
    number = _phone_arg("number")
    if number:
        query = query.where(Message.number == number)
    ticket = int_arg("ticket")
    if ticket is not None:
        query = query.where(Message.ticket_id == ticket)
    return _list(query, Message.id, message_dict)


@bp.route("/messages", methods=("POST",))
def send_message():
    _require_role(WRITERS, "send texts")
    data = json_object('{"to": "0812 3456 7890", "text": "Halo"}')
    to, text = data.get("to"), data.get("text")
    if not isinstance(to, str) or not isinstance(text, str):
        abort(400, '"to" and "text" are both required and must be strings')
    number = normalise(to, helpdesk().config.country)
    if number is None:
        abort(400, f"{to!r} is not a phone number; write it like 0812 3456 7890 or "
                   "+62 812 3456 7890")
    db = get_db()
    contact_id = db.scalar(select(Contact.id).where(Contact.phone == number))
    user_id = g.api_user.id if g.api_user is not None else None
    try:
        message = queue_message(db, number, text, user_id=user_id, contact_id=contact_id)
    except OutboxError as e:
        abort(400, f"the message was not queued: {e}")
    users.audit(db, user_id, "message.send", "message", message.id,
                {"to": number, "token": g.token.name})
    db.commit()
    notify_queued(message.id)
    response = jsonify(id=message.id, status="queued")
    response.headers["Location"] = url_for("api.message", message_id=message.id)
    return response, 202


@bp.route("/messages/<id:message_id>")
def message(message_id):
    row = get_db().get(Message, message_id)
    if row is None:
        abort(404, f"there is no message {message_id}")
    return jsonify(message_dict(row))


# --- broadcasts (gateway.desk.broadcasts) ---------------------------------------------------

def _skipped_list(pairs) -> list[dict]:
    return [{"number": number, "reason": reason} for number, reason in pairs]


@bp.route("/broadcasts", methods=("POST",))
def create_broadcast():
    """{"text", "group" | "tag" | "numbers": [...]} -> 202 with the id and who was skipped
    (opted out, blocked); with "preview": true, 200 with the same figures and nothing made."""
    _require_role(broadcast_desk.BROADCASTERS, "send broadcasts")
    data = json_object('{"text": "Halo {name}, promo hari ini", "group": "Pelanggan"}')
    text, dry = data.get("text"), data.get("preview", False)
    audience = {k: data.get(k) for k in ("group", "tag", "numbers") if data.get(k) is not None}
    if not isinstance(text, str):
        abort(400, '"text" is required and must be a string')
    if not isinstance(dry, bool):
        abort(400, '"preview" must be true or false')
    if any(not isinstance(audience.get(k, ""), str) for k in ("group", "tag")) or not (
            isinstance(audience.get("numbers", []), list)
            and all(isinstance(n, str) for n in audience.get("numbers", []))):
        abort(400, '"group" and "tag" must be strings and "numbers" a list of strings')
    db = get_db()
    user_id = g.api_user.id if g.api_user is not None else None
    try:
        found = broadcast_desk.resolve(db, helpdesk().config.country, **audience)
        plan = broadcast_desk.preview(found, text)
        made = None if dry else broadcast_desk.create(db, plan, user_id,
                                                      via=f"api:{g.token.name}")
    except broadcast_desk.BroadcastError as e:
        abort(400, f"the broadcast was not made: {e}")
    body = {"id": made.id if made else None, "status": made.status if made else "preview",
            "total": plan.total, "recipients": plan.recipients, "texts": plan.texts,
            "parts": plan.max_parts, "coding": plan.coding,
            "skipped_opted_out": plan.skipped_count("opted_out"),
            "skipped_blocked": plan.skipped_count("blocked"),
            "skipped": _skipped_list(plan.skipped)}
    if made is None:
        return jsonify(body)
    db.commit()
    response = jsonify(body)
    response.headers["Location"] = url_for("api.broadcast", broadcast_id=made.id)
    return response, 202


@bp.route("/broadcasts/<id:broadcast_id>")
def broadcast(broadcast_id):
    db = get_db()
    row = broadcast_desk.find(db, broadcast_id)
    if row is None:
        abort(404, f"there is no broadcast {broadcast_id}")
    progress = broadcast_desk.progress(db, row)
    return jsonify(id=row.id, status=row.status, total=row.total, sent=progress.sent,
                   skipped_opted_out=progress.skipped.get("opted_out", 0),
                   skipped_blocked=progress.skipped.get("blocked", 0),
                   pending=progress.pending, in_outbox=progress.in_outbox,
                   failed=progress.failed, cancelled=progress.cancelled,
                   audience=row.audience, text=row.text, created_at=iso(row.created_at),
                   finished_at=iso(row.finished_at),
                   skipped=_skipped_list(broadcast_desk.skipped_numbers(db, row.id)))


_ACTIONS = {"pause": broadcast_desk.pause, "resume": broadcast_desk.resume,
            "cancel": broadcast_desk.cancel}


@bp.route("/broadcasts/<id:broadcast_id>/pause", methods=("POST",), defaults={"action": "pause"})
@bp.route("/broadcasts/<id:broadcast_id>/resume", methods=("POST",),
          defaults={"action": "resume"})
@bp.route("/broadcasts/<id:broadcast_id>/cancel", methods=("POST",),
          defaults={"action": "cancel"})
def change_broadcast(broadcast_id, action):
    """pause (the texts still waiting in the outbox are taken back), resume, cancel:
    200 with the status, 409 when the broadcast's status does not allow it."""
    _require_role(broadcast_desk.BROADCASTERS, "change broadcasts")
    db = get_db()
    user_id = g.api_user.id if g.api_user is not None else None
    try:
        row = _ACTIONS[action](db, broadcast_id, user_id, via=f"api:{g.token.name}")
    except LookupError:
        abort(404, f"there is no broadcast {broadcast_id}")
    except broadcast_desk.BroadcastError as e:
        db.rollback()
        abort(409, str(e))
    db.commit()
    progress = broadcast_desk.progress(db, row)
    return jsonify(id=row.id, status=row.status, pending=progress.pending,
                   in_outbox=progress.in_outbox, cancelled=progress.cancelled)


def _ticket_query():
    return select(Ticket).options(joinedload(Ticket.contact), joinedload(Ticket.assignee))


@bp.route("/tickets")
def tickets():
    query = _ticket_query()
    status = _choice_arg("status", STATUSES)
    if status:
        query = query.where(Ticket.status == status)
    kind = _choice_arg("kind", KINDS)
    if kind:
        query = query.where(Ticket.kind == kind)
    contact = int_arg("contact")
    if contact is not None:
        query = query.where(Ticket.contact_id == contact)
    return _list(query, Ticket.id, ticket_dict)


@bp.route("/tickets/<id:ticket_id>")
def ticket(ticket_id):
    row = get_db().scalar(_ticket_query().where(Ticket.id == ticket_id))
    if row is None:
        abort(404, f"there is no ticket {ticket_id}")
    return jsonify(ticket_dict(row))


@bp.route("/tickets/<id:ticket_id>", methods=("PATCH",))
def update_ticket(ticket_id):
    """{"status"?, "assignee"? (a user's name, null for nobody)}: the ticket as it is now."""
    _require_role(WRITERS, "change tickets")
    data = json_object('{"status": "pending", "assignee": "ani"}')
    unknown = sorted(set(data) - {"status", "assignee"})
    if unknown:
        abort(400, f"only \"status\" and \"assignee\" can be changed, not {', '.join(unknown)}")
    if "status" in data and (not isinstance(data["status"], str)
                             or data["status"] not in STATUSES):
        abort(400, f'"status" must be one of {", ".join(STATUSES)}')
    if "assignee" in data and data["assignee"] is not None \
            and not isinstance(data["assignee"], str):
        abort(400, '"assignee" must be a user\'s name, or null for nobody')
    db = get_db()
    row = db.scalar(_ticket_query().where(Ticket.id == ticket_id))
    if row is None:
        abort(404, f"there is no ticket {ticket_id}")
    actor = g.api_user.id if g.api_user is not None else None
    try:
        if "assignee" in data:
            who = data["assignee"]
            ticket_desk.assign(db, row, None if who is None else
                               ticket_desk.find_assignee(db, who), actor)
        if "status" in data:
            ticket_desk.set_status(db, row, data["status"], actor)
    except ticket_desk.TicketError as e:
        db.rollback()
        abort(400, str(e))
    db.commit()
    return jsonify(ticket_dict(db.scalar(_ticket_query().where(Ticket.id == ticket_id))))


@bp.route("/contacts")
def contacts():
    query = select(Contact)
    phone = _phone_arg("phone")
    if phone:
        query = query.where(Contact.phone == phone)
    return _list(query, Contact.id, contact_dict)


@bp.route("/contacts/<id:contact_id>")
def contact(contact_id):
    """The contact with its CRM fields and one page of its timeline, newest first:
    `limit` entries, `before` the "timeline_next" of the page before."""
    db = get_db()
    row = db.get(Contact, contact_id)
    if row is None:
        abort(404, f"there is no contact {contact_id}")
    limit = int_arg("limit", pager.DEFAULT_LIMIT, low=1, high=pager.MAX_LIMIT)
    try:
        timeline = crm.timeline(db, row, limit, request.args.get("before") or None)
    except ValueError as e:
        abort(400, str(e))
    return jsonify(contact_detail_dict(row, timeline))


@bp.route("/orders")
def orders():
    return _list(select(Order).options(selectinload(Order.items)), Order.id, order_dict)


@bp.route("/payments", endpoint="payments")
def payment_list():
    return _list(select(Payment), Payment.id, payment_dict)


@bp.route("/calls")
def calls():
    return _list(select(Call).options(joinedload(Call.operator)), Call.id, call_dict)


@bp.route("/payments/<id:payment_id>/confirm", methods=("POST",))
def confirm_payment(payment_id):
    """Confirm against the order the payment matched, or {"order_id": N}."""
    _require_role(PAYMENT_DECIDERS, "decide payments")
    data = json_object('{"order_id": 12}, or nothing to confirm the matched order',
                       required=False)
    return _decide(payments.confirm, payment_id, order_id=json_int(data, "order_id"))


@bp.route("/payments/<id:payment_id>/reject", methods=("POST",))
def reject_payment(payment_id):
    _require_role(PAYMENT_DECIDERS, "decide payments")
    return _decide(payments.reject, payment_id)


def _decide(decide, payment_id: int, **kwargs):
    """Run a payment decision for the token and commit it; the payment as it is now."""
    user, db = g.api_user, get_db()
    actor = payments.Actor(user.id if user else None,
                           user.name if user else f"API token {g.token.name!r}", g.token.name)
    try:  # committed here; a conflict (two UI processes on two Galera nodes) runs it again
        decision = commit_retrying(db, decide, db, payment_id, actor,
                                   helpdesk().config.language, **kwargs)
    except payments.PaymentNotFound as e:
        abort(404, str(e))
    except payments.PaymentConflict as e:  # decided already, order paid, stock gone
        abort(409, str(e))
    except payments.PaymentDecisionError as e:
        abort(400, str(e))
    if decision.message is not None:
        notify_queued(decision.message.id)
    return jsonify(payment_dict(decision.payment))
