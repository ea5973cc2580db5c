"""Login and logout with a session cookie, and the role checks every view goes through."""
from __future__ import annotations

import functools

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

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
        if user is not None and user.active:
            g.user = user
        else:
            session.clear()


def login_required(view=None, *, roles=None):
    """Send strangers to the login page; refuse (403) a user whose role is not in `roles`."""
    if view is None:
        return functools.partial(login_required, roles=roles)

    @functools.wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if roles is not None and g.user.role not in roles:
            abort(403)
        return view(**kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    # Only a path on this site: an attacker's link must not bounce a fresh login elsewhere.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("tickets.index")


@bp.route("/login", methods=("GET", "POST"))
def login():
    if request.method == "POST":
        db = get_db()
        name = request.form.get("name", "")
        now = utcnow()
        user = users.authenticate(db, name, request.form.get("password", ""), now)
        if user is None:
            locked = db.scalar(select(User).where(User.name == name.strip()))
            if users.is_locked(locked, now):
                users.audit(db, locked.id, "login.locked", "user", locked.id)
                error = ("Akun ini dikunci sementara karena terlalu banyak percobaan gagal. "
                         "Coba lagi nanti. (This account is locked for now.)")
            else:
                error = "Nama atau kata sandi salah. (Wrong name or password.)"
            db.commit()  # keep the failure count
            flash(error, "error")
            return render_template("auth/login.html", name=name), 401
        users.audit(db, user.id, "login", "user", user.id)
        db.commit()
        session.clear()  # a fresh session: nothing from before the login carries over
        session["user_id"] = user.id
        session.permanent = True
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", name="")


@bp.route("/logout", methods=("POST",))
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
