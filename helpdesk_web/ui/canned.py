"""Admin pages for the ticket desk: canned responses (/canned) and SLA targets (/sla)."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gateway.db.models import TICKET_KINDS, CannedResponse
from gateway.desk import tickets as desk
from helpdesk_web.auth import login_required
from helpdesk_web.db import get_db

bp = Blueprint("canned", __name__)

CANNED_EDITORS = ("admin", "supervisor")
SLA_EDITORS = ("admin",)


@bp.route("/canned")
@login_required(roles=CANNED_EDITORS)
def index():
    db = get_db()
    edit = None
    if request.args.get("edit"):
        edit = db.get(CannedResponse, request.args.get("edit", type=int) or 0)
        if edit is None:
            abort(404, f"there is no canned response {request.args.get('edit')!r}")
    return render_template("canned/index.html", rows=desk.canned_responses(db), edit=edit,
                           form=None)


@bp.route("/canned", methods=("POST",))
@login_required(roles=CANNED_EDITORS)
def save():
    db = get_db()
    canned_id = request.form.get("id", type=int)
    title, body = request.form.get("title", ""), request.form.get("body", "")
    try:
        row = desk.save_canned(db, canned_id, title, body, g.user.id)
    except desk.TicketError as e:
        db.rollback()
        flash(_("The canned response was not saved: %(error)s.", error=str(e)), "error")
        return render_template("canned/index.html", rows=desk.canned_responses(db),
                               edit=db.get(CannedResponse, canned_id) if canned_id else None,
                               form={"title": title, "body": body}), 400
    db.commit()
    flash(_("Canned response %(title)s saved.", title=row.title), "ok")
    return redirect(url_for("canned.index"))


@bp.route("/canned/<id:canned_id>/delete", methods=("POST",))
@login_required(roles=CANNED_EDITORS)
def delete(canned_id):
    db = get_db()
    try:
        desk.delete_canned(db, canned_id, g.user.id)
    except desk.TicketError as e:
        abort(404, str(e))
    db.commit()
    flash(_("Canned response deleted."), "ok")
    return redirect(url_for("canned.index"))


@bp.route("/sla")
@login_required(roles=SLA_EDITORS)
def sla():
    return render_template("canned/sla.html", kinds=TICKET_KINDS,
                           targets=desk.sla_targets(get_db()))


@bp.route("/sla", methods=("POST",))
@login_required(roles=SLA_EDITORS)
def sla_save():
    db = get_db()
    try:
        for kind in TICKET_KINDS:
            desk.set_sla_target(db, kind, request.form.get(f"first_{kind}", ""),
                                request.form.get(f"resolve_{kind}", ""), g.user.id)
    except desk.TicketError as e:
        db.rollback()
        flash(_("The SLA targets were not saved: %(error)s.", error=str(e)), "error")
        return render_template("canned/sla.html", kinds=TICKET_KINDS,
                               targets=desk.sla_targets(db), form=request.form), 400
    db.commit()
    flash(_("SLA targets saved."), "ok")
    return redirect(url_for("canned.sla"))
