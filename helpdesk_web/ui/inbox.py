"""The texts that came in, newest first, and those marked for a person: the inbound
pipeline could not read or file them and wrote why in `Message.attention`."""
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
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from gateway.db.models import Message
from gateway.desk import health
from gateway.desk.users import audit
from helpdesk_web import pager
from helpdesk_web.auth import login_required
from helpdesk_web.bounds import int_arg
from helpdesk_web.db import get_db

bp = Blueprint("inbox", __name__)

# Who may say a marked text has been dealt with; everyone may read them.
HANDLERS = ("admin", "supervisor", "operator")
# What a page keeps of its address across the "handled" button.
KEPT = ("attention", "before", "after", "limit")


@bp.route("/messages/inbox")
@login_required
def index():
    marked = int_arg("attention", 0, low=0, high=1) == 1
    query = select(Message).options(joinedload(Message.contact)).where(Message.direction == "in")
    if marked:
        query = query.where(Message.attention.is_not(None))
    return render_template("inbox/list.html", page=pager.page(query, Message.id),
                           marked=marked, can_handle=g.user.role in HANDLERS)


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
        flash(f"SMS dari {message.number} sudah ditangani. (Marked handled.)", "ok")
    else:
        flash(f"SMS dari {message.number} sudah ditangani sebelumnya. (Already handled.)", "ok")
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
