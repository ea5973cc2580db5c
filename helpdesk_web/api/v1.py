"""The JSON API under /api/v1, exactly the shapes of CONTRACT.md.

Authentication is a Bearer token (users.create_token). A token made for a user acts
with that user's role, so a viewer's token reads but cannot send; a token for no user
is an integration's and may do everything the API offers.

Lists are newest first. `before=ID` pages back in time and `after=ID` forward; `next` is
the value to pass again in the same parameter for the following page, null at the end.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, g, jsonify, request, url_for
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload, selectinload

from gateway.db.models import TICKET_KINDS as KINDS
from gateway.db.models import TICKET_STATUSES as STATUSES
from gateway.db.models import Call, Contact, Message, Order, Payment, Ticket, utcnow
from gateway.desk import health as health_module
from gateway.desk import users
from gateway.desk.outbox import OutboxError, queue_message
from gateway.sms.phone import normalise
from helpdesk_web.api.serialize import (
    call_dict,
    contact_dict,
    iso,
    message_dict,
    order_dict,
    payment_dict,
    ticket_dict,
)
from helpdesk_web.auth import WRITERS
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


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
    db.commit()  # last_used_at
    g.token, g.api_user = token, user


def _require_writer():
    if g.api_user is not None and g.api_user.role not in WRITERS:
        abort(403, f"the role {g.api_user.role!r} may read but not change anything")


def _int_arg(name: str, default=None):
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        abort(400, f"{name} must be a whole number, not {value!r}")


def _choice_arg(name: str, choices):
    value = request.args.get(name) or None
    if value is not None and value not in choices:
        abort(400, f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _page(query, column, serialize):
    """One page of `query` by id cursor, as {"items": [...], "next": cursor or None}."""
    limit = _int_arg("limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        abort(400, f"limit must be between 1 and {MAX_LIMIT}")
    before, after = _int_arg("before"), _int_arg("after")
    if before is not None:
        query = query.where(column < before)
    if after is not None:
        # Forward from the cursor in id order, so no row between pages is skipped.
        query = query.where(column > after).order_by(column.asc())
    else:
        query = query.order_by(column.desc())
    rows = get_db().scalars(query.limit(limit + 1)).unique().all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = rows[-1].id if more else None
    if after is not None:
        rows.reverse()
    return jsonify(items=[serialize(r) for r in rows], next=cursor)


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
    except SQLAlchemyError:
        current_app.logger.warning("health: the database is not answering", exc_info=True)
        # 503, so a proxy in front of several UI processes stops sending people here.
        return jsonify(status="down", db="down", modems=[]), 503
    # `status` is what the modem's worker last recorded (up, down, unknown); `health` adds
    # the thresholds of [health]: green, yellow, red.
    items = [{"name": m["name"], "status": m["status"], "health": m["health"],
              "signal_percent": m["signal_percent"], "last_seen": iso(m["last_seen"])}
             for m in modems]
    if items and all(m["health"] == "red" for m in items):
        status = "down"  # no modem can carry a text
    elif all(m["health"] == "green" for m in items):
        status = "ok"
    else:
        status = "degraded"
    return jsonify(status=status, db="ok", modems=items)


@bp.route("/messages")
def messages():
    query = select(Message)
    direction = _choice_arg("direction", ("in", "out"))
    if direction:
        query = query.where(Message.direction == direction)
    number = _phone_arg("number")
    if number:
        query = query.where(Message.number == number)
    ticket = _int_arg("ticket")
    if ticket is not None:
        query = query.where(Message.ticket_id == ticket)
    return _page(query, Message.id, message_dict)


@bp.route("/messages", methods=("POST",))
def send_message():
    _require_writer()
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        abort(400, 'send a JSON object such as {"to": "0812 3456 7890", "text": "Halo"}')
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


@bp.route("/messages/<int:message_id>")
def message(message_id):
    row = get_db().get(Message, message_id)
    if row is None:
        abort(404, f"there is no message {message_id}")
    return jsonify(message_dict(row))


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
    contact = _int_arg("contact")
    if contact is not None:
        query = query.where(Ticket.contact_id == contact)
    return _page(query, Ticket.id, ticket_dict)


@bp.route("/tickets/<int:ticket_id>")
def ticket(ticket_id):
    row = get_db().scalar(_ticket_query().where(Ticket.id == ticket_id))
    if row is None:
        abort(404, f"there is no ticket {ticket_id}")
    return jsonify(ticket_dict(row))


@bp.route("/contacts")
def contacts():
    query = select(Contact)
    phone = _phone_arg("phone")
    if phone:
        query = query.where(Contact.phone == phone)
    return _page(query, Contact.id, contact_dict)


@bp.route("/orders")
def orders():
    return _page(select(Order).options(selectinload(Order.items)), Order.id, order_dict)


@bp.route("/payments")
def payments():
    return _page(select(Payment), Payment.id, payment_dict)


@bp.route("/calls")
def calls():
    return _page(select(Call), Call.id, call_dict)
