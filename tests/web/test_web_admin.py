"""The admin's screens: /users (add, disable, reset password, role), /users/tokens, /audit.

The acting users read English, so the assertions do not depend on the catalogue."""
from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from conftest import PASSWORD, AuthActions
from helpers import page
from sqlalchemy import select

from gateway.db.models import ApiToken, AuditLog, User
from gateway.desk import users

SECRET = re.compile(r'<code class="secret">([^<]+)</code>')



@pytest.fixture
def admin(auth, db, make_user):
    """Logged in as 'boss', an admin who reads English."""
    boss = make_user("boss", "admin")
    boss.language = "en"  # not through set_language: no audit row to count
    db.commit()
    auth.login("boss")
    return boss


def user(db, name) -> User:
    db.expire_all()
    return db.scalar(select(User).where(User.name == name))


def actions(db) -> list[str]:
    return [r.action for r in db.scalars(select(AuditLog).order_by(AuditLog.id))
            if not r.action.startswith(("login", "logout"))]


def can_log_in(app, make_user, db, name, password) -> bool:
    other = app.test_client()
    return AuthActions(other, make_user, db).login(name, password=password).status_code == 302


def test_users_page_lists_name_role_state_login_and_language(client, admin, db, make_user):
    ani = make_user("ani", "sales")
    users.set_language(db, ani, "id")
    users.set_active(db, make_user("old", "viewer"), False, admin.id)
    db.commit()
    html = page(client.get("/users"))
    row = html[html.index(f'id="user-{ani.id}"'):]
    row = row[:row.index("</tr>")]
    assert "ani" in row and 'value="sales" selected' in row and "active" in row
    assert "Bahasa Indonesia" in row
    old_row = html[html.index(f'id="user-{user(db, "old").id}"'):]
    assert "disabled" in old_row[:old_row.index("</tr>")]
    boss_row = html[html.index(f'id="user-{admin.id}"'):]
    assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d</td>", boss_row[:boss_row.index("</tr>")])


def test_add_a_user_with_a_password_and_with_a_generated_one(app, client, auth, admin, db,
                                                              make_user):
    response = auth.post("/users", {"name": "ani", "role": "operator",
                                    "password": "ani-password-1"})
    assert response.status_code == 302
    assert can_log_in(app, make_user, db, "ani", "ani-password-1")

    response = auth.post("/users", {"name": "budi", "role": "viewer", "password": ""})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    generated = SECRET.search(page(response)).group(1)
    assert len(generated) >= 16
    assert user(db, "budi").role == "viewer"
    assert can_log_in(app, make_user, db, "budi", generated)
    assert generated not in page(client.get("/users"))  # shown once
    assert actions(db) == ["user.create", "user.create"]


@pytest.mark.parametrize("form, complaint", [
    ({"name": "boss", "role": "operator", "password": "long-enough-1"}, "already exists"),
    ({"name": "ani", "role": "boss", "password": "long-enough-1"}, "unknown role"),
    ({"name": "ani", "role": "operator", "password": "short"}, "too short"),
    ({"name": "  ", "role": "operator", "password": "long-enough-1"}, "empty"),
    ({"name": "x" * 65, "role": "operator", "password": "long-enough-1"}, "longer than 64"),
])
def test_a_bad_new_user_is_refused_with_a_sentence(client, auth, admin, db, form, complaint):
    response = auth.post("/users", form, follow_redirects=True)
    assert response.status_code == 200
    assert complaint in page(response)
    assert len(users.list_users(db)) == 1 and actions(db) == []


def test_disable_and_enable(app, client, auth, admin, db, make_user):
    ani = make_user("ani")
    response = auth.post(f"/users/{ani.id}/active", {"active": "0"})
    assert response.status_code == 302
    assert not user(db, "ani").active
    assert not can_log_in(app, make_user, db, "ani", PASSWORD)
    auth.post(f"/users/{ani.id}/active", {"active": "1"})
    assert user(db, "ani").active
    assert can_log_in(app, make_user, db, "ani", PASSWORD)
    assert actions(db) == ["user.disable", "user.enable"]


def test_the_last_active_admin_stays(client, auth, admin, db):
    html = page(auth.post(f"/users/{admin.id}/active", {"active": "0"}, follow_redirects=True))
    assert "your own account" in html
    html = page(auth.post(f"/users/{admin.id}/role", {"role": "viewer"}, follow_redirects=True))
    assert "last active admin" in html
    boss = user(db, "boss")
    assert boss.active and boss.role == "admin" and actions(db) == []


def test_reset_password_shows_it_once_and_ends_the_users_sessions(app, client, auth, admin, db,
                                                                  make_user):
    ani = make_user("ani")
    ani_browser = app.test_client()
    AuthActions(ani_browser, make_user, db).login("ani")
    response = auth.post(f"/users/{ani.id}/password", {})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    new = SECRET.search(page(response)).group(1)
    assert ani_browser.get("/account").status_code == 302
    assert not can_log_in(app, make_user, db, "ani", PASSWORD)
    assert can_log_in(app, make_user, db, "ani", new)
    row = db.scalar(select(AuditLog).where(AuditLog.action == "user.password_reset"))
    assert row.user_id == admin.id and row.target_id == ani.id
    assert new not in (row.detail or "")


def test_an_admin_resetting_their_own_password_stays_logged_in(client, auth, admin):
    response = auth.post(f"/users/{admin.id}/password", {})
    assert response.status_code == 200
    assert client.get("/users").status_code == 200


def test_change_role(client, auth, admin, db, make_user):
    ani = make_user("ani")
    auth.post(f"/users/{ani.id}/role", {"role": "supervisor"})
    assert user(db, "ani").role == "supervisor"
    html = page(auth.post(f"/users/{ani.id}/role", {"role": "king"}, follow_redirects=True))
    assert "unknown role" in html and user(db, "ani").role == "supervisor"
    row = db.scalar(select(AuditLog).where(AuditLog.action == "user.role"))
    detail = json.loads(row.detail)
    assert (row.user_id, detail["from"], detail["to"]) == (admin.id, "operator", "supervisor")


def test_missing_user_is_a_404_with_words(client, auth, admin):
    response = auth.post("/users/999999/password", {})
    assert response.status_code == 404 and "There is no user 999999" in page(response)


# --- API tokens --------------------------------------------------------------------------

def test_create_list_and_revoke_a_token(client, auth, admin, db, make_user):
    make_user("ani", "sales")
    response = auth.post("/users/tokens", {"name": "erp", "user": "ani"})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    raw = SECRET.search(page(response)).group(1)
    api = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/tickets", headers=api).status_code == 200

    token = db.scalar(select(ApiToken).where(ApiToken.name == "erp"))
    html = page(client.get("/users/tokens"))
    row = html[html.index(f'id="token-{token.id}"'):]
    row = row[:row.index("</tr>")]
    assert "erp" in row and "ani (sales)" in row and "live" in row
    assert "never" not in row  # it was just used
    assert raw not in html

    assert auth.post(f"/users/tokens/{token.id}/revoke", {}).status_code == 302
    assert client.get("/api/v1/tickets", headers=api).status_code == 401
    assert "revoked" in page(client.get("/users/tokens"))
    assert actions(db) == ["token.create", "token.revoke"]


def test_an_integration_token_and_bad_token_input(client, auth, admin, db):
    auth.post("/users/tokens", {"name": "shop", "user": ""})
    assert db.scalar(select(ApiToken).where(ApiToken.name == "shop")).user_id is None
    html = page(auth.post("/users/tokens", {"name": " "}, follow_redirects=True))
    assert "needs a name" in html
    html = page(auth.post("/users/tokens", {"name": "x", "user": "ghost"},
                          follow_redirects=True))
    assert "no user" in html
    assert auth.post("/users/tokens/999999/revoke", {}).status_code == 404


# --- audit -------------------------------------------------------------------------------

def _audit_rows(db, boss, ani):
    rows = [(boss.id, "user.create", "user", ani.id, dt.datetime(2026, 11, 30, 16, 59)),
            (ani.id, "ticket.status", "ticket", 7, dt.datetime(2026, 11, 30, 17, 1)),
            (ani.id, "payment.confirm", "payment", 3, dt.datetime(2026, 12, 1, 9, 0)),
            (boss.id, "user.role", "user", ani.id, dt.datetime(2026, 12, 2, 1, 0))]
    for user_id, action, target_type, target_id, at in rows:
        db.add(AuditLog(user_id=user_id, action=action, target_type=target_type,
                        target_id=target_id, created_at=at))
    db.commit()


def shown_actions(html) -> list[str]:
    return re.findall(r'<tr id="audit-\d+">.*?<td>[^<]*</td>\s*<td>[^<]*</td>\s*<td>([^<]+)</td>',
                      html, re.S)


def test_audit_is_newest_first_and_filters(client, auth, admin, db, make_user):
    ani = make_user("ani")
    db.execute(AuditLog.__table__.delete())  # the logins
    db.commit()
    _audit_rows(db, admin, ani)

    def shown(query=""):
        return shown_actions(page(client.get("/audit" + query)))

    assert shown() == ["user.role", "payment.confirm", "ticket.status", "user.create"]
    assert shown(f"?user={ani.id}") == ["payment.confirm", "ticket.status"]
    assert shown("?action=user.") == ["user.role", "user.create"]
    assert shown("?action=user.role") == ["user.role"]
    assert shown("?target=payment") == ["payment.confirm"]
    # Days are the shop's (Asia/Jakarta, UTC+7): 30 Nov 17:01 UTC is 1 Dec 00:01 there.
    assert shown("?from=2026-12-01&to=2026-12-01") == ["payment.confirm", "ticket.status"]
    assert shown("?from=2026-12-02") == ["user.role"]
    assert shown("?to=2026-11-30") == ["user.create"]
    html = page(client.get("/audit"))
    assert "2026-12-02 08:00:00" in html  # 01:00 UTC, shown in Jakarta time
    assert "boss" in html and "ani" in html


def test_audit_pages_with_the_pager(client, auth, admin, db):
    db.execute(AuditLog.__table__.delete())
    for n in range(5):
        users.audit(db, admin.id, f"thing.{n}", "thing", n)
    db.commit()
    first = page(client.get("/audit?limit=2&action=thing."))
    assert shown_actions(first) == ["thing.4", "thing.3"]
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "action=thing." in older
    assert shown_actions(page(client.get(older))) == ["thing.2", "thing.1"]


@pytest.mark.parametrize("query", ["?from=yesterday", "?to=2026-13-01", "?user=abc",
                                   "?limit=0"])
def test_bad_audit_filters_are_a_400_with_words(client, admin, query):
    response = client.get("/audit" + query)
    assert response.status_code == 400
    assert "must be" in page(response)


def test_supervisor_reads_the_audit_but_not_the_users(client, auth):
    auth.login("sup", "supervisor")
    assert client.get("/audit").status_code == 200
    assert client.get("/users").status_code == 403
    assert client.get("/users/tokens").status_code == 403


@pytest.mark.parametrize("role", ["operator", "sales", "viewer"])
def test_other_roles_get_403(client, auth, role, make_user):
    target = make_user("target")
    auth.login("someone", role)
    for path in ("/users", "/users/tokens", "/audit"):
        assert client.get(path).status_code == 403, path
    for path in ("/users", f"/users/{target.id}/password", f"/users/{target.id}/active",
                 "/users/tokens"):
        assert auth.post(path, {"name": "x", "role": "admin", "active": "0"}
                         ).status_code == 403, path


# --- escaping ----------------------------------------------------------------------------

HOSTILE = "<script>x</script>"


def test_hostile_names_and_details_are_escaped(client, auth, admin, db, make_user):
    evil = make_user(HOSTILE, "operator")
    users.set_role(db, evil, "sales", admin.id)
    users.audit(db, evil.id, HOSTILE, HOSTILE[:32], 1, {"note": HOSTILE})
    users.create_token(db, HOSTILE, HOSTILE, actor_id=admin.id, via="web")
    db.commit()
    for path in ("/users", "/users/tokens", "/audit", f"/audit?user={evil.id}"):
        html = page(client.get(path))
        assert HOSTILE not in html, path
        assert "&lt;script&gt;x&lt;/script&gt;" in html, path
