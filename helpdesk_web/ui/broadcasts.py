"""Broadcasts: one text to a contact group, a tag or a list of numbers. A preview (who
gets it, who is skipped for STOP or blocked, the SMS parts and the cost in texts) comes
before the send; the daemon feeds the texts to the outbox within [broadcasts] window.
The rules live in gateway.desk.broadcasts."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from gateway.db.models import Broadcast, ContactGroup, utcnow
from gateway.desk import broadcasts, crm
from helpdesk_web.auth import login_required
from helpdesk_web.db import get_db, helpdesk

bp = Blueprint("broadcasts", __name__)

BROADCASTERS = broadcasts.BROADCASTERS
KINDS = ("group", "tag", "numbers")
MAX_NUMBERS_TEXT = 800_000  # characters of pasted or uploaded numbers (50,000 lines)


def reason_names() -> dict[str, str]:
    return {"opted_out": _("opted out (STOP)"), "blocked": _("blocked"),
            "not_a_phone": _("not a phone number"), "too_long": _("text too long")}


def status_names() -> dict[str, str]:
    return {"running": _("running"), "paused": _("paused"), "cancelled": _("cancelled"),
            "done": _("done")}


def _form() -> dict:
    form = {"kind": request.form.get("kind", "group"),
            "group": request.form.get("group", "").strip()[:100],
            "tag": request.form.get("tag", "").strip()[:40],
            "numbers": request.form.get("numbers", "")[:MAX_NUMBERS_TEXT],
            "text": request.form.get("text", "").replace("\r\n", "\n").strip()}
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        data = upload.read(MAX_NUMBERS_TEXT + 1)
        try:
            uploaded = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            uploaded = None
            form["file_problem"] = _("The file is not UTF-8 text; save it as CSV (UTF-8).")
        if uploaded is not None:
            form["numbers"] = (form["numbers"] + "\n" + uploaded).strip()[:MAX_NUMBERS_TEXT]
    return form


def _plan(db, form: dict) -> broadcasts.Preview:
    """The preview of what the form asks for; BroadcastError with the reason."""
    if form.get("file_problem"):
        raise broadcasts.BroadcastError(form["file_problem"])
    kind = form["kind"] if form["kind"] in KINDS else "group"
    country = helpdesk().config.country
    if kind == "numbers":
        if not form["numbers"].strip():
            raise broadcasts.BroadcastError(_("Paste the numbers or choose a file of them."))
        audience = broadcasts.resolve(
            db, country, numbers=broadcasts.parse_numbers(form["numbers"], country))
    elif kind == "tag":
        audience = broadcasts.resolve(db, country, tag=form["tag"])
    else:
        audience = broadcasts.resolve(db, country, group=form["group"])
    return broadcasts.preview(audience, form["text"])


def _page(form=None, plan=None, problem=None, status=200):
    db = get_db()
    items = broadcasts.progress_of(db, broadcasts.recent(db))
    config = helpdesk().config
    return render_template(
        "broadcasts/index.html", items=items, form=form or {"kind": "group"}, plan=plan,
        problem=problem, groups=db.scalars(select(ContactGroup.name).order_by(
            ContactGroup.name)).all(), tags=crm.tag_names(db),
        can_send=g.user.role in BROADCASTERS, reasons=reason_names(),
        statuses=status_names(), window=config.broadcast_window,
        days=config.broadcast_days, in_window=broadcasts.in_window(config, utcnow())), status


@bp.route("/broadcasts")
@login_required
def index():
    return _page()


@bp.route("/broadcasts/preview", methods=("POST",))
@login_required(roles=BROADCASTERS)
def preview():
    form = _form()
    try:
        plan = _plan(get_db(), form)
    except broadcasts.BroadcastError as e:
        return _page(form, problem=str(e), status=400)
    return _page(form, plan)


@bp.route("/broadcasts", methods=("POST",))
@login_required(roles=BROADCASTERS)
def create():
    form = _form()
    db = get_db()
    try:
        plan = _plan(db, form)
        made = broadcasts.create(db, plan, g.user.id)
    except broadcasts.BroadcastError as e:
        db.rollback()
        return _page(form, problem=str(e), status=400)
    db.commit()
    flash(_("Broadcast %(id)s made: %(n)s texts to send, %(skipped)s skipped.", id=made.id,
            n=plan.recipients, skipped=len(plan.skipped)), "ok")
    return redirect(url_for("broadcasts.view", broadcast_id=made.id))


def _broadcast_or_404(db, broadcast_id: int) -> Broadcast:
    broadcast = db.get(Broadcast, broadcast_id)
    if broadcast is None:
        abort(404, _("There is no broadcast %(id)s.", id=broadcast_id))
    return broadcast


@bp.route("/broadcasts/<id:broadcast_id>")
@login_required
def view(broadcast_id):
    db = get_db()
    broadcast = _broadcast_or_404(db, broadcast_id)
    config = helpdesk().config
    return render_template(
        "broadcasts/view.html", b=broadcast, progress=broadcasts.progress(db, broadcast),
        skipped=broadcasts.skipped_numbers(db, broadcast.id), reasons=reason_names(),
        statuses=status_names(), can_send=g.user.role in BROADCASTERS,
        window=config.broadcast_window, in_window=broadcasts.in_window(config, utcnow()))


def _act(broadcast_id: int, change, done: str):
    db = get_db()
    _broadcast_or_404(db, broadcast_id)
    try:
        change(db, broadcast_id, g.user.id)
    except broadcasts.BroadcastError as e:
        db.rollback()
        flash(str(e), "error")
        return redirect(url_for("broadcasts.view", broadcast_id=broadcast_id))
    db.commit()
    flash(done, "ok")
    return redirect(url_for("broadcasts.view", broadcast_id=broadcast_id))


@bp.route("/broadcasts/<id:broadcast_id>/pause", methods=("POST",))
@login_required(roles=BROADCASTERS)
def pause(broadcast_id):
    return _act(broadcast_id, broadcasts.pause,
                _("Paused; the texts not yet with a modem wait until it is resumed."))


@bp.route("/broadcasts/<id:broadcast_id>/resume", methods=("POST",))
@login_required(roles=BROADCASTERS)
def resume(broadcast_id):
    return _act(broadcast_id, broadcasts.resume, _("Resumed."))


@bp.route("/broadcasts/<id:broadcast_id>/cancel", methods=("POST",))
@login_required(roles=BROADCASTERS)
def cancel(broadcast_id):
    return _act(broadcast_id, broadcasts.cancel,
                _("Cancelled; nobody else will be sent this broadcast."))
