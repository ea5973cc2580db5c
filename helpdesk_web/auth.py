"""Login and logout with a session cookie, and the role checks every view goes through.

The signed cookie carries the user's id and session epoch. Logout, a new password and a
disabled account raise the epoch in the database, so every cookie issued before, on any
device, is refused from then on: the server ends the session, not just the browser.
"""
from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from gateway.db.models import User, utcnow
from gateway.desk import users

from .db import get_db

bp = Blueprint("auth", __name__)

# Everyone but a viewer may answer customers and move tickets along.
WRITERS = ("admin", "supervisor", "operator", "sales")


@bp.before_app_request
def load_user():
    """Read the user afresh on each request, so a disabled account is out at once."""
    g.user = None
    user_id = session.get("user_id")
    # The API has its own tokens, and a stylesheet needs no database round trip.
    if user_id is not None and request.blueprint != "api" and request.endpoint != "static":
        user = get_db().get(User, user_id)
        if user is not None and user.active and session.get("epoch") == user.session_epoch:
            g.user = user
        else:
            session.clear()


def start_session(user: User) -> None:
    """Make this browser's session `user`'s, at the user's current epoch."""
    session.clear()  # a fresh session: nothing from before the login carries over
    session["user_id"] = user.id
    session["epoch"] = user.session_epoch
    session.permanent = True


def login_required(view=None, *, roles=None):
    """Send strangers to the login page; refuse (403) a user whose role is not in `roles`."""
    if view is None:
        return functools.partial(login_required, roles=roles)

    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            # Back to a page after the login, never to a form's POST-only address.
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(_login_url(target))
        if roles is not None and g.user.role not in roles:
            abort(403, _("Your role (%(role)s) may not do this; ask an admin.",
                         role=g.user.role))
        return view(**kwargs)

    return wrapped


def _login_url(target: str | None) -> str:
    return url_for("auth.login", next=target) if target else url_for("auth.login")


def _safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else the start page.

    An attacker's link must not bounce a fresh login elsewhere: no scheme, no host, no
    `//` or `/\\` (browsers read both as another host), and no whitespace or control
    characters (browsers drop a tab or newline, turning `/\\t/evil` into `//evil`).
    """
    home = request.script_root + "/"
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return home
    if "\\" in target or any(not c.isprintable() or c.isspace() for c in target):
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return home
    return target


@bp.route("/login", methods=("GET", "POST"))
def login():
    if request.method == "POST":
        db = get_db()
        name = request.form.get("name", "")[:200]
        user = users.authenticate(db, name, request.form.get("password", ""), utcnow())
        if user is None:
            # One answer for an unknown name, a wrong password, a disabled or a locked
            # account: the page must not tell which names exist.
            flash(_("Wrong name or password, or the account is locked for a while after "
                    "too many failed attempts."), "error")
            return render_template("auth/login.html", name=name), 401
        # The client's address: behind a trusted proxy, the one it forwarded (proxy.py).
        users.audit(db, user.id, "login", "user", user.id, {"address": request.remote_addr})
        db.commit()
        start_session(user)
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", name="")


@bp.route("/logout", methods=("POST",))
def logout():
    if g.user is not None:
        db = get_db()
        users.end_sessions(db, g.user)
        users.audit(db, g.user.id, "logout", "user", g.user.id)
        db.commit()
    session.clear()
    flash(_("You are logged out."), "ok")
    return redirect(_login_url(None))
