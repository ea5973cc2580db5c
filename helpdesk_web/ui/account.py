"""Each person's own account: a new password, and the language of the UI."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gateway.desk import users
from helpdesk_web.auth import login_required, start_session
from helpdesk_web.db import get_db
from helpdesk_web.i18n import LANGUAGES, refresh

bp = Blueprint("account", __name__)


@bp.route("/account")
@login_required
def index():
    return render_template("account/index.html", languages=LANGUAGES,
                           min_password=users.MIN_PASSWORD)


@bp.route("/account/password", methods=("POST",))
@login_required
def password():
    db, user = get_db(), g.user
    old, new = request.form.get("old", ""), request.form.get("new", "")
    if new != request.form.get("confirm", ""):
        error = _("The two new passwords differ; type the same one twice.")
    elif len(new) < users.MIN_PASSWORD:
        error = _("The new password is too short; use at least %(n)s characters.",
                  n=users.MIN_PASSWORD)
    else:
        try:
            users.change_own_password(db, user, old, new)
            error = None
        except ValueError:  # the only refusal left: the current password
            error = _("The current password is wrong.")
    if error:
        db.rollback()
        flash(error, "error")
        return render_template("account/index.html", languages=LANGUAGES,
                               min_password=users.MIN_PASSWORD), 400
    db.commit()
    # Every other session of this user has ended; this browser carries on.
    start_session(user)
    flash(_("Your password is changed; you are logged out everywhere else."), "ok")
    return redirect(url_for("account.index"))


@bp.route("/account/language", methods=("POST",))
@login_required
def language():
    db, choice = get_db(), request.form.get("language", "")
    if choice not in LANGUAGES:
        flash(_("Choose one of the languages listed."), "error")
        return render_template("account/index.html", languages=LANGUAGES,
                               min_password=users.MIN_PASSWORD), 400
    users.set_language(db, g.user, choice)
    db.commit()
    refresh()  # this very answer speaks the new language
    flash(_("The language is changed."), "ok")
    return redirect(url_for("account.index"))
