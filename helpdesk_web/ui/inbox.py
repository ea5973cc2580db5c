"""The texts as Kalkun users know them: the inbox (with the texts marked for a person:
the inbound pipeline could not read or file them and wrote why in `Message.attention`),
the sent folder, the outbox with its retries, and a new text to a number or a contact.

Texts from carriers and short codes (TELKOMSEL, 3636) are in the inbox like any other,
with no way to answer them: no SMS can reach such a sender.
"""
from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from gateway.db.models import Contact, Message
from gateway.desk import health, outbox
from gateway.desk.users import audit
from gateway.sms.phone import is_reachable, normalise
from helpdesk_web import pager
from helpdesk_web.auth import WRITERS, login_required
from helpdesk_web.bounds import MAX_ID, int_arg, parse_int
from helpdesk_web.db import get_db, helpdesk, notify_queued

bp = Blueprint("inbox", __name__)

# Who may say a marked text has been dealt with, or send a failed one again; everyone
# may read the folders.
HANDLERS = ("admin", "supervisor", "operator")
# What a page keeps of its address across the "handled" button.
KEPT = ("attention", "before", "after", "limit")
SENT_STATES = ("sent", "delivered")
MAX_TO = 200  # characters of the recipient field: a number or a contact's name


@bp.app_template_global()
def answerable(number: str) -> bool:
    """False for a carrier or a short code: nothing we send can reach it."""
    return is_reachable(number)


@bp.route("/messages/inbox")
@login_required
def index():
    marked = int_arg("attention", 0, low=0, high=1) == 1
    query = select(Message).options(joinedload(Message.contact)).where(Message.direction == "in")
    if marked:
        query = query.where(Message.attention.is_not(None))
    return render_template("inbox/list.html", page=pager.page(query, Message.id),
                           marked=marked, can_handle=g.user.role in HANDLERS,
                           can_write=g.user.role in WRITERS)


@bp.route("/messages/sent")
@login_required
def sent():
    query = (select(Message).options(joinedload(Message.contact))
             .where(Message.direction == "out", Message.status.in_(SENT_STATES)))
    return render_template("inbox/sent.html", page=pager.page(query, Message.id))


@bp.route("/messages/outbox", endpoint="outbox")
@login_required
def outbox_list():
    status = request.args.get("status", "")
    states = (status,) if status in outbox.OUTBOX_STATES else outbox.OUTBOX_STATES
    query = (select(Message).options(joinedload(Message.contact))
             .where(Message.direction == "out", Message.status.in_(states)))
    # By `id + 0`: the few texts not yet sent are found by their status index and sorted,
    # rather than walking every text ever sent backwards by id looking for them.
    return render_template("inbox/outbox.html", page=pager.page(query, Message.id + 0),
                           status=status if status in outbox.OUTBOX_STATES else "",
                           states=outbox.OUTBOX_STATES, can_retry=g.user.role in HANDLERS)


@bp.route("/messages/<id:message_id>/retry", methods=("POST",))
@login_required(roles=HANDLERS)
def retry(message_id):
    db = get_db()
    try:
        retried = outbox.requeue(db, message_id,
                                 sent_maybe_ok=request.form.get("sent_maybe_ok") == "1")
    except LookupError as e:
        abort(404, str(e))
    except outbox.RetryRefused as e:
        db.rollback()
        flash(_("The text was not sent again: %(reason)s.", reason=str(e)), "error")
    else:
        message = retried.message
        audit(db, g.user.id, "message.retry", "message", message.id,
              {"from": retried.previous, "last_error": retried.last_error,
               "to": message.number})
        db.commit()
        notify_queued(message.id)
        flash(_("The text to %(number)s is queued again.", number=message.number), "ok")
    return redirect(url_for("inbox.outbox", status=request.args.get("status") or None,
                            _anchor=f"m{message_id}"))


@bp.route("/messages/new")
@login_required(roles=WRITERS)
def compose():
    db = get_db()
    contact = _contact_arg(db)
    to = contact.phone if contact else request.args.get("to", "")[:MAX_TO]
    return render_template("inbox/compose.html", to=to, text="", contact=contact)


@bp.route("/messages/new", methods=("POST",))
@login_required(roles=WRITERS)
def send():
    db = get_db()
    to = " ".join(request.form.get("to", "").split())[:MAX_TO]
    text = request.form.get("text", "").replace("\r\n", "\n").strip()
    contact, number, problem = _recipient(db, to)
    if problem is None and contact is not None and contact.opted_out:
        problem = _("%(number)s asked for no more texts (STOP); nothing was sent",
                    number=contact.phone)
    if problem is None and contact is not None and getattr(contact, "blocked", False):
        problem = _("%(number)s is blocked; nothing was sent", number=contact.phone)
    message = None
    if problem is None:
        # Through the modem this number last wrote to, where it knows us.
        modem = db.scalar(select(Message.modem).where(Message.number == number,
                                                      Message.direction == "in")
                          .order_by(Message.id.desc()).limit(1))
        try:
            message = outbox.queue_message(db, number, text, user_id=g.user.id,
                                           contact_id=contact.id if contact else None,
                                           modem=modem)
        except outbox.OutboxError as e:
            problem = str(e)
    if problem is not None:
        db.rollback()
        flash(_("The text was not queued: %(reason)s.", reason=problem), "error")
        return render_template("inbox/compose.html", to=to, text=text, contact=None), 400
    audit(db, g.user.id, "message.send", "message", message.id, {"to": number})
    db.commit()
    notify_queued(message.id)
    flash(_("The text to %(number)s is queued.", number=number), "ok")
    return redirect(url_for("inbox.outbox", _anchor=f"m{message.id}"))


def _contact_arg(db) -> Contact | None:
    raw = request.args.get("contact", "")
    contact_id = parse_int(raw, 1, MAX_ID) if raw else None
    return db.get(Contact, contact_id) if contact_id is not None else None


def _recipient(db, to: str) -> tuple[Contact | None, str | None, str | None]:
    """(the contact, the number, None) for a number in any written form or a contact's
    exact name; else (None, None, a sentence saying what is wrong)."""
    if not to:
        return None, None, _("write a phone number or a contact's name")
    number = normalise(to, helpdesk().config.country)
    if number is not None:
        return db.scalar(select(Contact).where(Contact.phone == number)), number, None
    found = db.scalars(select(Contact).where(func.lower(Contact.name) == to.lower())
                       .limit(2)).all()
    if len(found) > 1:
        return None, None, _("several contacts are called %(name)s; write the number",
                             name=to)
    if not found:
        return None, None, _("%(to)s is neither a phone number (0812 3456 7890) nor a "
                             "contact's name", to=to)
    if not is_reachable(found[0].phone):
        return None, None, _("%(number)s cannot receive texts", number=found[0].phone)
    return found[0], found[0].phone, None


@bp.route("/messages/<id:message_id>/handled", methods=("POST",))
@login_required(roles=HANDLERS)
def handled(message_id):
    db = get_db()
    message = db.get(Message, message_id)
    if message is None or message.direction != "in":
        abort(404, f"there is no inbound text {message_id}")
    reason = message.attention
    # Only the click that clears the mark writes the audit row: two people at once, or a
    # double click, leave one.
    cleared = reason is not None and db.execute(
        update(Message).where(Message.id == message.id, Message.attention == reason)
        .values(attention=None).execution_options(synchronize_session=False)).rowcount == 1
    if cleared:
        audit(db, g.user.id, "message.handled", "message", message.id, {"attention": reason})
        db.commit()
        flash(_("The text from %(number)s is marked handled.", number=message.number), "ok")
    else:
        flash(_("The text from %(number)s was already handled.", number=message.number), "ok")
    kept = {k: request.args[k] for k in KEPT if request.args.get(k)}
    return redirect(url_for("inbox.index", **kept, _anchor=f"m{message.id}"))


@bp.app_template_global()
def attention_count() -> int:
    """Marked texts, for the link in every page's header; read once per request."""
    if "attention_count" not in g:
        try:
            g.attention_count = health.attention_count(get_db())
        except SQLAlchemyError:  # an error page must still render when the database fails
            current_app.logger.warning("attention count: the database did not answer",
                                       exc_info=True)
            g.attention_count = 0
    return g.attention_count
