"""The admin's screens: users and roles, API tokens, and the audit log.

Views stay thin: every change goes through gateway.desk.users, which keeps the last
active admin and writes the audit row; a refusal comes back as a sentence in a flash.
A new password or token is shown once, on the page that answers the POST (never put in
a flash, which would travel in the session cookie).
"""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from gateway.db.models import AuditLog, User, utcnow
from gateway.desk import users
from helpdesk_web import pager
from helpdesk_web.auth import login_required, start_session
from helpdesk_web.bounds import int_arg
from helpdesk_web.db import get_db, helpdesk

bp = Blueprint("admin", __name__)

ADMINS = ("admin",)
# Who may read the audit log: a supervisor watches the day, too.
AUDITORS = ("admin", "supervisor")


def _user(user_id: int) -> User:
    user = get_db().get(User, user_id)
    if user is None:
        abort(404, _("There is no user %(id)s.", id=user_id))
    return user


def _refused(error: ValueError):
    flash(_("Not changed: %(reason)s", reason=str(error)), "error")
    return redirect(url_for("admin.user_list"))


def _shown_once(**context):
    """The page with a new secret; no cache may keep it."""
    response = make_response(render_template("admin/secret.html", **context))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/users")
@login_required(roles=ADMINS)
def user_list():
    return render_template("admin/users.html", users=users.list_users(get_db()),
                           roles=users.ROLES, now=utcnow())


@bp.route("/users", methods=("POST",))
@login_required(roles=ADMINS)
def user_add():
    db = get_db()
    name, role = request.form.get("name", ""), request.form.get("role", "")
    password = request.form.get("password", "")
    generated = not password
    if generated:
        password = users.generate_password()
    try:
        user = users.create_user(db, name, role, password)
    except ValueError as e:
        db.rollback()
        return _refused(e)
    users.audit(db, g.user.id, "user.create", "user", user.id,
                {"name": user.name, "role": user.role, "via": "web"})
    db.commit()
    if not generated:
        flash(_("User %(name)s added.", name=user.name), "ok")
        return redirect(url_for("admin.user_list"))
    return _shown_once(title=_("User %(name)s added", name=user.name),
                       label=_("Password"), secret=password,
                       back=url_for("admin.user_list"))


@bp.route("/users/<id:user_id>/active", methods=("POST",))
@login_required(roles=ADMINS)
def user_active(user_id):
    db, user = get_db(), _user(user_id)
    active = request.form.get("active") == "1"
    try:
        users.set_active(db, user, active, g.user.id)
    except ValueError as e:
        db.rollback()
        return _refused(e)
    db.commit()
    flash(_("%(name)s can log in again.", name=user.name) if active
          else _("%(name)s is disabled: logged out, no login, no API tokens.",
                 name=user.name), "ok")
    return redirect(url_for("admin.user_list"))


@bp.route("/users/<id:user_id>/password", methods=("POST",))
@login_required(roles=ADMINS)
def user_password(user_id):
    db, user = get_db(), _user(user_id)
    password = users.reset_password(db, user, g.user.id)
    db.commit()
    if user.id == g.user.id:  # the reset ended every session; keep this one
        start_session(user)
    return _shown_once(title=_("New password for %(name)s", name=user.name),
                       label=_("Password"), secret=password,
                       back=url_for("admin.user_list"))


@bp.route("/users/<id:user_id>/role", methods=("POST",))
@login_required(roles=ADMINS)
def user_role(user_id):
    db, user = get_db(), _user(user_id)
    try:
        users.set_role(db, user, request.form.get("role", ""), g.user.id)
    except ValueError as e:
        db.rollback()
        return _refused(e)
    db.commit()
    flash(_("%(name)s is now %(role)s.", name=user.name, role=user.role), "ok")
    return redirect(url_for("admin.user_list"))


# -- API tokens -------------------------------------------------------------------------

@bp.route("/users/tokens")
@login_required(roles=ADMINS)
def token_list():
    db = get_db()
    return render_template("admin/tokens.html", tokens=users.list_tokens(db),
                           users=users.list_users(db))


@bp.route("/users/tokens", methods=("POST",))
@login_required(roles=ADMINS)
def token_create():
    db = get_db()
    name = request.form.get("name", "")
    owner = request.form.get("user") or None
    try:
        raw = users.create_token(db, name, owner, actor_id=g.user.id, via="web")
    except ValueError as e:
        db.rollback()
        flash(_("Not changed: %(reason)s", reason=str(e)), "error")
        return redirect(url_for("admin.token_list"))
    db.commit()
    return _shown_once(title=_("API token %(name)s created", name=name.strip()),
                       label=_("Token"), secret=raw, back=url_for("admin.token_list"))


@bp.route("/users/tokens/<id:token_id>/revoke", methods=("POST",))
@login_required(roles=ADMINS)
def token_revoke(token_id):
    db = get_db()
    try:
        token = users.revoke_token(db, token_id, g.user.id)
    except ValueError:
        abort(404, _("There is no API token %(id)s.", id=token_id))
    db.commit()
    flash(_("API token %(name)s is revoked.", name=token.name), "ok")
    return redirect(url_for("admin.token_list"))


# -- the audit log ----------------------------------------------------------------------

def _day(name: str) -> dt.datetime | None:
    """The query argument `name` (YYYY-MM-DD, the shop's calendar) as naive UTC midnight."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        abort(400, _("%(name)s must be a date such as 2026-12-31, not %(value)s.",
                     name=name, value=value[:24]))
    local = dt.datetime.combine(day, dt.time(), ZoneInfo(helpdesk().config.timezone))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


@bp.route("/audit")
@login_required(roles=AUDITORS)
def audit():
    db = get_db()
    since, until = _day("from"), _day("to")
    if until is not None:
        until += dt.timedelta(days=1)  # the "to" day is included
    query = users.audit_query(user_id=int_arg("user"),
                              action=request.args.get("action", "").strip()[:64] or None,
                              target_type=request.args.get("target", "").strip()[:32] or None,
                              since=since, until=until)
    page = pager.page(query, AuditLog.id)
    everyone = users.list_users(db)
    return render_template("admin/audit.html", page=page, users=everyone,
                           names={u.id: u.name for u in everyone}, args=request.args,
                           details={row.id: _detail(row.detail) for row in page.items})


def _detail(text: str | None) -> str:
    """An audit row's JSON detail as `key: value; ...` for a person to read."""
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        return "; ".join(f"{k}: {'' if v is None else v}" for k, v in value.items())
    return str(value)
