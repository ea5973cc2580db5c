"""Accounts for the people who run the helpdesk (gateway/desk/users.py)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gateway.db.models import ApiToken, AuditLog
from gateway.desk import users

PASSWORD = "rahasia-sekali"


def actions(db):
    return [row.action for row in db.scalars(select(AuditLog).order_by(AuditLog.id))]


def test_disable_enable_writes_audit_and_blocks_login(db):
    boss = users.create_user(db, "boss", "admin", PASSWORD)
    ani = users.create_user(db, "ani", "operator", PASSWORD)
    users.set_active(db, ani, False, boss.id)
    assert users.authenticate(db, "ani", PASSWORD, users.utcnow()) is None
    users.set_active(db, ani, True, boss.id)
    assert users.authenticate(db, "ani", PASSWORD, users.utcnow()) is ani
    assert actions(db) == ["user.disable", "user.enable"]


def test_admin_cannot_disable_self_or_last_admin(db):
    boss = users.create_user(db, "boss", "admin", PASSWORD)
    with pytest.raises(ValueError, match="your own"):
        users.set_active(db, boss, False, boss.id)
    with pytest.raises(ValueError, match="last active admin"):
        users.set_active(db, boss, False, None)
    with pytest.raises(ValueError, match="last active admin"):
        users.set_role(db, boss, "viewer", None)
    other = users.create_user(db, "other", "admin", PASSWORD)
    users.set_active(db, boss, False, other.id)
    assert not boss.active


def test_reset_and_change_password(db):
    ani = users.create_user(db, "ani", "operator", PASSWORD)
    new = users.reset_password(db, ani, None, via="cli")
    assert users.authenticate(db, "ani", new, users.utcnow()) is ani
    with pytest.raises(ValueError, match="wrong"):
        users.change_own_password(db, ani, "nope-nope", "another-long-one")
    with pytest.raises(ValueError, match="too short"):
        users.change_own_password(db, ani, new, "short")
    users.change_own_password(db, ani, new, "another-long-one")
    assert users.authenticate(db, "ani", "another-long-one", users.utcnow()) is ani
    rows = list(db.scalars(select(AuditLog).order_by(AuditLog.id)))
    assert [r.action for r in rows] == ["user.password_reset", "user.password_change"]
    assert rows[0].user_id is None and json.loads(rows[0].detail)["via"] == "cli"


def test_set_role_and_language(db):
    ani = users.create_user(db, "ani", "operator", PASSWORD)
    users.set_role(db, ani, "supervisor", None)
    assert ani.role == "supervisor"
    with pytest.raises(ValueError, match="unknown role"):
        users.set_role(db, ani, "boss", None)
    users.set_language(db, ani, "en")
    assert ani.language == "en"
    with pytest.raises(ValueError, match="unknown language"):
        users.set_language(db, ani, "fr")
    db.commit()


def test_tokens_list_and_revoke(db):
    users.create_user(db, "ani", "operator", PASSWORD)
    raw = users.create_token(db, "shop", "ani")
    users.create_token(db, "shop")
    other = users.create_token(db, "crm")
    assert [t.name for t in users.list_tokens(db)] == ["crm", "shop", "shop"]
    assert users.revoke_tokens_named(db, "shop", None, "cli") == 2
    assert users.find_token(db, raw) is None and users.find_token(db, other) is not None
    with pytest.raises(ValueError, match="no API token named"):
        users.revoke_tokens_named(db, "nope", None)
    crm = db.scalar(select(ApiToken).where(ApiToken.name == "crm"))
    users.revoke_token(db, crm.id, None)
    assert crm.revoked
    with pytest.raises(ValueError, match="no API token"):
        users.revoke_token(db, 999999, None)


def test_audit_query_filters(db):
    boss = users.create_user(db, "boss", "admin", PASSWORD)
    ani = users.create_user(db, "ani", "operator", PASSWORD)
    users.set_role(db, ani, "sales", boss.id)
    users.set_active(db, ani, False, boss.id)
    users.audit(db, ani.id, "login", "user", ani.id)
    db.flush()
    assert [r.action for r in users.audit_log(db, user_id=boss.id)] == ["user.disable", "user.role"]
    assert [r.action for r in users.audit_log(db, action="user.")] == ["user.disable", "user.role"]
    assert [r.action for r in users.audit_log(db, action="login")] == ["login"]
    assert len(users.audit_log(db, target_type="user")) == 3
    assert users.audit_log(db, until=users.utcnow().replace(year=2000)) == []
