"""/account: each person changes their own password and chooses the UI's language."""
from __future__ import annotations

import pytest
from conftest import PASSWORD, AuthActions
from flask_babel import force_locale, get_locale, gettext
from helpers import page
from sqlalchemy import select

from gateway.db.models import AuditLog, User

NEW = "a-new-password-1"



@pytest.fixture
def ani(auth, db, make_user):
    """Logged in as 'ani', an operator who reads English."""
    user = make_user("ani", "operator")
    user.language = "en"
    db.commit()
    auth.login("ani")
    return user


def can_log_in(app, make_user, db, password) -> bool:
    return AuthActions(app.test_client(), make_user, db).login(
        "ani", password=password).status_code == 302


def test_account_page_shows_both_forms(client, ani):
    html = page(client.get("/account"))
    assert "Change password" in html and 'name="confirm"' in html
    assert '<option value="en" selected>English</option>' in html
    assert 'minlength="8"' in html


def test_change_password(app, client, auth, ani, db, make_user):
    phone = app.test_client()  # another session of ani's
    AuthActions(phone, make_user, db).login("ani")
    response = auth.post("/account/password", {"old": PASSWORD, "new": NEW, "confirm": NEW})
    assert response.status_code == 302
    assert client.get("/account").status_code == 200  # this browser stays logged in
    assert phone.get("/account").status_code == 302  # the other session has ended
    assert can_log_in(app, make_user, db, NEW)
    assert not can_log_in(app, make_user, db, PASSWORD)
    assert db.scalar(select(AuditLog.action).where(AuditLog.action == "user.password_change"))


@pytest.mark.parametrize("form, complaint", [
    ({"old": "wrong-password", "new": NEW, "confirm": NEW}, "current password is wrong"),
    ({"old": PASSWORD, "new": NEW, "confirm": NEW + "x"}, "differ"),
    ({"old": PASSWORD, "new": "short", "confirm": "short"}, "at least 8 characters"),
    ({}, "at least 8"),
])
def test_a_refused_password_change_says_why(app, client, auth, ani, db, make_user, form,
                                            complaint):
    response = auth.post("/account/password", form)
    assert response.status_code == 400
    assert complaint in page(response)
    assert can_log_in(app, make_user, db, PASSWORD)
    assert client.get("/account").status_code == 200


def test_choosing_a_language_applies_at_once(client, auth, db, make_user):
    make_user("ani", "operator")
    auth.login("ani")
    with client:
        client.get("/account")
        assert str(get_locale()) == "id"  # [web] language, the default
    response = auth.post("/account/language", {"language": "en"})
    assert response.status_code == 302
    with client:
        html = page(client.get("/account"))
        assert str(get_locale()) == "en"
    assert "Change password" in html and "The language is changed." in html
    assert '<option value="en" selected>' in html
    db.expire_all()
    assert db.scalar(select(User.language).where(User.name == "ani")) == "en"
    auth.post("/account/language", {"language": "id"})
    with client:
        html = page(client.get("/account"))
        with force_locale("id"):
            assert gettext("Change password") in html


def test_an_unknown_language_is_refused(client, auth, ani, db):
    response = auth.post("/account/language", {"language": "fr"})
    assert response.status_code == 400 and "Choose one of the languages" in page(response)
    assert db.scalar(select(User.language).where(User.name == "ani")) == "en"


def test_every_role_has_an_account_page(client, auth):
    for role in ("admin", "supervisor", "operator", "sales", "viewer"):
        auth.login(f"user-{role}", role)
        assert client.get("/account").status_code == 200, role
        auth.logout()


def test_hostile_name_is_escaped(client, auth, make_user):
    auth.login("<script>x</script>", "viewer")
    html = page(client.get("/account"))
    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
