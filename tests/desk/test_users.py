"""Accounts, login lockout, API tokens and audit rows (gateway/users.py)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from gateway.db.models import ApiToken, AuditLog, User
from gateway.desk import users

NOW = dt.datetime(2026, 11, 23, 9, 0, 0)
PASSWORD = "rahasia-sekali"


def test_generated_passwords_are_long_and_different():
    passwords = {users.generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) >= 16 for p in passwords)


def test_password_is_stored_as_argon2_hash(db):
    user = users.create_user(db, "ani", "operator", PASSWORD)
    assert user.password_hash.startswith("$argon2")
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize("name, role, password, complaint", [
    ("ani", "boss", PASSWORD, "unknown role"),
    ("ani", "operator", "short", "too short"),
    ("  ", "operator", PASSWORD, "empty"),
])
def test_create_user_refuses_bad_input_with_a_sentence(db, name, role, password, complaint):
    with pytest.raises(ValueError, match=complaint):
        users.create_user(db, name, role, password)


def test_create_user_refuses_a_duplicate_name(db):
    users.create_user(db, "ani", "operator", PASSWORD)
    with pytest.raises(ValueError, match="already exists"):
        users.create_user(db, "ani", "viewer", PASSWORD)


def test_authenticate_right_and_wrong(db):
    users.create_user(db, "ani", "operator", PASSWORD)
    assert users.authenticate(db, "ani", PASSWORD, NOW).name == "ani"
    assert users.authenticate(db, "ani", "salah-salah", NOW) is None
    assert users.authenticate(db, "nobody", PASSWORD, NOW) is None


def test_five_failures_lock_the_account_for_fifteen_minutes(db):
    user = users.create_user(db, "ani", "operator", PASSWORD)
    for _ in range(5):
        assert users.authenticate(db, "ani", "salah-salah", NOW) is None
    assert user.locked_until == NOW + dt.timedelta(minutes=15)
    # While locked even the right password is refused.
    assert users.authenticate(db, "ani", PASSWORD, NOW + dt.timedelta(minutes=14)) is None
    assert users.is_locked(user, NOW + dt.timedelta(minutes=14))
    later = NOW + dt.timedelta(minutes=15, seconds=1)
    assert users.authenticate(db, "ani", PASSWORD, later) is user
    assert user.failed_logins == 0 and user.locked_until is None


def test_success_resets_the_failure_count(db):
    user = users.create_user(db, "ani", "operator", PASSWORD)
    for _ in range(4):
        users.authenticate(db, "ani", "salah-salah", NOW)
    assert user.failed_logins == 4
    assert users.authenticate(db, "ani", PASSWORD, NOW) is user
    assert user.failed_logins == 0
    users.authenticate(db, "ani", "salah-salah", NOW)
    assert user.locked_until is None  # four old failures plus one new do not lock


def test_disabled_user_cannot_log_in(db):
    user = users.create_user(db, "ani", "operator", PASSWORD)
    user.active = False
    assert users.authenticate(db, "ani", PASSWORD, NOW) is None


def test_weak_old_hash_is_upgraded_on_login(db):
    user = users.create_user(db, "ani", "operator", PASSWORD)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    old = user.password_hash
    assert users.authenticate(db, "ani", PASSWORD, NOW) is user
    assert user.password_hash != old
    assert not PasswordHasher().check_needs_rehash(user.password_hash)


def test_token_is_stored_only_as_its_sha256(db):
    raw = users.create_token(db, "erp")
    db.commit()
    row = db.scalar(select(ApiToken))
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in row.token_hash
    assert len(raw) >= 40


def test_find_token_marks_use_and_ignores_revoked_or_wrong(db):
    raw = users.create_token(db, "erp")
    token = users.find_token(db, raw, now=NOW)
    assert token.name == "erp" and token.last_used_at == NOW
    assert users.find_token(db, raw + "x") is None
    assert users.find_token(db, "") is None
    token.revoked = True
    db.flush()
    assert users.find_token(db, raw) is None


def test_audit_row_keeps_detail_as_json(db):
    user = users.create_user(db, "ani", "admin", PASSWORD)
    users.audit(db, user.id, "ticket.status", "ticket", 7, {"from": "new", "to": "open"})
    db.commit()
    row = db.scalar(select(AuditLog))
    assert (row.user_id, row.action, row.target_type, row.target_id) == (
        user.id, "ticket.status", "ticket", 7)
    assert json.loads(row.detail) == {"from": "new", "to": "open"}
    assert db.get(User, user.id).role == "admin"
