"""Login, logout and the session: lockout (also under parallel attempts), one answer for
every refusal, a session that ends on the server, and `next` that stays on the site."""
from __future__ import annotations

import re
import statistics
import threading
import time
from urllib.parse import quote

import pytest
from conftest import CSRF_FIELD, PASSWORD, AuthActions
from helpers import page
from sqlalchemy import select

from gateway.db.models import AuditLog, User
from gateway.desk import users


def post_login(client, name, password, query=""):
    token = CSRF_FIELD.search(page(client.get("/login"))).group(1)
    return client.post("/login" + query, data={"name": name, "password": password,
                                                "csrf_token": token})


def refusal(response) -> str:
    """The login page's answer without its per-session CSRF token."""
    return CSRF_FIELD.sub("", page(response))


def test_pages_need_a_login(client, make_ticket):
    ticket = make_ticket()
    for path in ("/", f"/tickets/{ticket.id}", "/account", "/users", "/audit"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.location, path


def test_login_and_logout(client, auth, db):
    response = auth.login()
    assert response.status_code == 302 and response.location == "/"
    assert "operator (operator)" in page(client.get("/"))
    auth.logout()
    assert client.get("/").status_code == 302
    assert [r.action for r in db.scalars(select(AuditLog).order_by(AuditLog.id))] == \
        ["login", "logout"]
    assert db.scalar(select(User.last_login_at)) is not None


def test_login_without_csrf_token_is_refused(client, make_user):
    make_user("ani")
    response = client.post("/login", data={"name": "ani", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


# --- the session ends on the server ------------------------------------------------------

def _cookie(client) -> str:
    return client.get_cookie("session").value


def test_a_cookie_replayed_after_logout_is_refused(app, client, auth):
    auth.login()
    stolen = _cookie(client)
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    response = thief.get("/account")
    assert response.status_code == 302 and "/login" in response.location


def test_logout_ends_the_users_other_sessions_too(app, client, auth, make_user):
    make_user("ani")
    other = app.test_client()
    AuthActions(other, make_user, auth.db).login("ani")
    auth.login("ani")
    assert other.get("/account").status_code == 200
    auth.logout()
    assert other.get("/account").status_code == 302


@pytest.mark.parametrize("change", ["reset", "disable"])
def test_an_admins_reset_or_disable_ends_the_users_sessions(app, client, auth, db, make_user,
                                                            change):
    boss = make_user("boss", "admin")
    auth.login("ani", "operator")
    stolen = _cookie(client)
    ani = db.scalar(select(User).where(User.name == "ani"))
    if change == "reset":
        users.reset_password(db, ani, boss.id)
    else:
        users.set_active(db, ani, False, boss.id)
    db.commit()
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/account").status_code == 302
    assert client.get("/account").status_code == 302


def test_a_forged_epoch_is_refused(app, client, auth):
    auth.login()
    with client.session_transaction() as session:
        session["epoch"] = session["epoch"] + 1  # a cookie signed by us but not current
    assert client.get("/account").status_code == 302


# --- lockout -----------------------------------------------------------------------------

def test_every_refusal_looks_the_same(client, db, make_user):
    make_user("ani")
    make_user("off")
    users.set_active(db, db.scalar(select(User).where(User.name == "off")), False, None)
    make_user("shut")
    for _ in range(users.MAX_FAILED_LOGINS):
        post_login(client, "shut", "salah-salah")
    answers = {what: post_login(client, name, password) for what, name, password in (
        ("wrong password", "ani", "salah-salah"), ("unknown", "nobody", PASSWORD),
        ("disabled", "off", PASSWORD), ("locked, right password", "shut", PASSWORD))}
    assert {r.status_code for r in answers.values()} == {401}
    # The name typed is shown back; apart from it every answer is the same page.
    bodies = {what: re.sub(r'value="[^"]*" autocomplete="username"', "", refusal(r))
              for what, r in answers.items()}
    assert len(set(bodies.values())) == 1, bodies
    assert client.get("/").status_code == 302


def test_five_failed_logins_lock_the_account(client, auth, db, make_user):
    make_user("ani")
    for _ in range(5):
        post_login(client, "ani", "salah-salah")
    response = auth.login("ani")  # the right password, too late
    assert response.status_code == 401
    assert client.get("/").status_code == 302
    user = db.scalar(select(User).where(User.name == "ani"))
    assert user.locked_until is not None
    locked = db.scalars(select(AuditLog).where(AuditLog.action == "login.locked")).all()
    assert [row.target_id for row in locked] == [user.id]


def test_a_locked_name_answers_as_slowly_as_an_unknown_one(client, make_user):
    """A locked account still costs a hash check, so timing does not tell it from a name
    that does not exist."""
    make_user("ani")
    for _ in range(users.MAX_FAILED_LOGINS):
        post_login(client, "ani", "salah-salah")
    token = CSRF_FIELD.search(page(client.get("/login"))).group(1)

    def timed(name):
        start = time.perf_counter()
        response = client.post("/login", data={"name": name, "password": PASSWORD,
                                               "csrf_token": token})
        assert response.status_code == 401
        return time.perf_counter() - start

    locked, unknown = [], []
    for _ in range(5):  # interleaved, so load on the machine hits both alike
        locked.append(timed("ani"))
        unknown.append(timed("nobody"))
    ratio = statistics.median(locked) / statistics.median(unknown)
    assert 0.5 < ratio < 2, (locked, unknown)


def test_parallel_wrong_passwords_get_no_more_than_the_limit_of_checks(make_app, db,
                                                                       make_user, monkeypatch):
    make_user("ani")
    app = make_app(TESTING=True, WTF_CSRF_ENABLED=False)
    real_hash = db.scalar(select(User.password_hash).where(User.name == "ani"))
    checked = []
    verify = users._verify

    def counting(password_hash, password):
        if password_hash == real_hash:
            checked.append(password)
        return verify(password_hash, password)
    monkeypatch.setattr(users, "_verify", counting)

    attempts = 12
    barrier = threading.Barrier(attempts)
    statuses = []

    def attack(n):
        client = app.test_client()
        barrier.wait()
        statuses.append(client.post("/login", data={"name": "ani",
                                                    "password": f"guess-{n}"}).status_code)
    threads = [threading.Thread(target=attack, args=(n,)) for n in range(attempts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert statuses == [401] * attempts
    assert len(checked) <= users.MAX_FAILED_LOGINS, checked
    # Locked now: even the right password is refused.
    assert app.test_client().post("/login", data={"name": "ani", "password": PASSWORD}
                                  ).status_code == 401
    db.expire_all()
    assert db.scalar(select(User.locked_until).where(User.name == "ani")) is not None


# --- next stays on the site -------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "?next=" + quote("//evil.example/x", safe=""),
    "?next=//evil.example/x",
    "?next=" + quote("/\\evil.example", safe=""),
    "?next=" + quote("\\\\evil.example", safe=""),
    "?next=" + quote("https://evil.example/", safe=""),
    "?next=https://evil.example/",
    "?next=%2F%2Fevil.example",
    "?next=%252F%252Fevil.example",
    "?next=" + quote("javascript:alert(1)", safe=""),
    "?next=" + quote("/\t/evil.example", safe=""),
    "?next=" + quote("/\n/evil.example", safe=""),
    "?next=" + quote("http:evil.example", safe=""),
    "?next=",
])
def test_login_never_redirects_off_the_site(client, make_user, query):
    make_user("ani")
    response = post_login(client, "ani", PASSWORD, query)
    assert response.status_code == 302 and response.location == "/"


def test_login_goes_back_to_the_page_asked_for(client, make_user):
    make_user("ani")
    response = client.get("/messages/inbox?attention=1")
    assert response.status_code == 302
    login_url = response.location
    assert login_url.startswith("/login?next=")
    response = post_login(client, "ani", PASSWORD, login_url[len("/login"):])
    assert response.location == "/messages/inbox?attention=1"
