"""Operators and API clients: argon2 passwords, login lockout, hashed API tokens, audit rows.

Every function works inside the caller's session and leaves the commit to the caller, so
a change and its audit row land in one transaction; only `authenticate` commits, so that
parallel attempts see each other's count.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update

from gateway.db.models import ApiToken, AuditLog, User, utcnow

ROLES = ("admin", "supervisor", "operator", "sales", "viewer")
MIN_PASSWORD = 8
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
# last_used_at is only a hint for the admin; writing it on every API call would make
# each read a write, so it is refreshed at most once a minute.
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)

_hasher = PasswordHasher()
# Verified against when the name is unknown, so a wrong name costs as long as a wrong
# password and the response time does not tell which names exist.
@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))  # made on first use, not at import


def generate_password() -> str:
    """A random 16-character password for a new account, shown to the admin once."""
    return secrets.token_urlsafe(12)


def create_user(session, name: str, role: str, password: str) -> User:
    """Add an account; ValueError with a sentence when the name, role or password is wrong."""
    name = (name or "").strip()
    if not name:
        raise ValueError("the user name is empty; choose a name such as 'ani'")
    if len(name) > 64:
        raise ValueError("the user name is longer than 64 characters; choose a shorter one")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if len(password or "") < MIN_PASSWORD:
        raise ValueError(f"the password is too short; use at least {MIN_PASSWORD} characters")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise ValueError(f"a user named {name!r} already exists; choose another name")
    user = User(name=name, role=role, password_hash=_hasher.hash(password), active=True,
                failed_logins=0)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ValueError(f"the password is too short; use at least {MIN_PASSWORD} characters")
    user.password_hash = _hasher.hash(password)


def is_locked(user: User | None, now: dt.datetime) -> bool:
    """True while too many failed logins keep this account shut."""
    return user is not None and user.locked_until is not None and user.locked_until > now


def authenticate(session, name: str, password: str, now: dt.datetime) -> User | None:
    """The active user with this name and password, or None; commits.

    Five failures in a row lock the account for 15 minutes; while it is locked even the
    right password is refused. A success clears the count. An unknown, disabled or locked
    name costs one hash check too, so neither the answer nor its time tells them apart.
    """
    user = session.scalar(select(User).where(User.name == (name or "").strip()))
    if user is None or not user.active or not _claim_attempt(session, user, now):
        _verify(_dummy_hash(), password)
        return None
    if not _verify(user.password_hash, password):
        # The attempt stays counted; the one that reaches the limit shuts the account.
        # After the lock runs out the user gets a fresh five tries, not one.
        locked = session.execute(
            update(User).where(User.id == user.id, User.failed_logins >= MAX_FAILED_LOGINS)
            .values(locked_until=now + LOCKOUT, failed_logins=0)
            .execution_options(synchronize_session=False)).rowcount
        if locked:
            audit(session, None, "login.locked", "user", user.id, {"name": user.name})
        session.commit()
        session.expire(user, _COUNTERS)
        return None
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.commit()
    return user


def _claim_attempt(session, user: User, now: dt.datetime) -> bool:
    """Count this attempt before its (slow) hash check, in one conditional UPDATE
    committed at once: of N parallel attempts at most the limit get a check, and the
    rest are refused as if the account were already locked."""
    claimed = session.execute(
        update(User).where(User.id == user.id, User.failed_logins < MAX_FAILED_LOGINS,
                           (User.locked_until.is_(None)) | (User.locked_until <= now))
        .values(failed_logins=User.failed_logins + 1)
        .execution_options(synchronize_session=False)).rowcount == 1
    session.commit()
    session.expire(user, _COUNTERS)  # the UPDATE bypassed the object
    return claimed


_COUNTERS = ("failed_logins", "locked_until")


def end_sessions(session, user: User) -> None:
    """Refuse every session cookie issued to `user` so far (see auth.load_user)."""
    session.execute(update(User).where(User.id == user.id)
                    .values(session_epoch=User.session_epoch + 1)
                    .execution_options(synchronize_session=False))
    session.expire(user, ["session_epoch"])


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return False


def _token_hash(raw: str) -> str:
    # A token is 256 random bits, so a fast hash is enough: nobody can guess one back.
    return hashlib.sha256(raw.encode()).hexdigest()


def create_token(session, name: str, user_name: str | None = None, *,
                 actor_id: int | None = None, via: str | None = None) -> str:
    """A new API token named `name`, acting as `user_name` if given (else with full API
    access, for an integration); the raw value is returned once and never stored.
    With `via` the creation is audited as done by `actor_id`."""
    user_id = None
    if user_name is not None:
        user = session.scalar(select(User).where(User.name == user_name))
        if user is None:
            raise ValueError(f"there is no user {user_name!r}; add one with `helpdesk user add`")
        user_id = user.id
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise ValueError("a token needs a name of 1 to 64 characters, such as 'erp'")
    raw = secrets.token_urlsafe(32)
    token = ApiToken(name=name, token_hash=_token_hash(raw), revoked=False, user_id=user_id)
    session.add(token)
    session.flush()
    if via is not None:
        audit(session, actor_id, "token.create", "api_token", token.id,
              {"name": name, "user": user_name, "via": via})
    return raw


def find_token(session, raw: str, now: dt.datetime | None = None) -> ApiToken | None:
    """The live (not revoked) token with this raw value, or None."""
    if not raw:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_hash(raw),
                                                  ApiToken.revoked.is_(False)))
    if token is not None:
        now = now or utcnow()
        if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
            token.last_used_at = now
    return token


def audit(session, user_id, action: str, target_type=None, target_id=None, detail=None) -> AuditLog:
    """Record who changed what; `detail` is any JSON-able value, stored as JSON text."""
    row = AuditLog(user_id=user_id, action=action, target_type=target_type,
                   target_id=target_id, created_at=utcnow(),
                   detail=None if detail is None else json.dumps(detail, ensure_ascii=False,
                                                                 default=str))
    session.add(row)
    return row


# -- the operator's day: accounts, tokens and the audit log ---------------------------------
LANGUAGES = ("id", "en")


def list_users(session) -> list[User]:
    """Every account, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def get_user(session, name_or_id) -> User:
    """The user with this name (str) or id (int); ValueError with a sentence when none."""
    if isinstance(name_or_id, int):
        user = session.get(User, name_or_id)
    else:
        user = session.scalar(select(User).where(User.name == (name_or_id or "").strip()))
    if user is None:
        raise ValueError(f"there is no user {name_or_id!r}; `helpdesk user list` shows them")
    return user


def _other_active_admins(session, user: User) -> int:
    return session.scalar(select(func.count()).select_from(User).where(
        User.role == "admin", User.active.is_(True), User.id != user.id)) or 0


def set_active(session, user: User, active: bool, actor_id: int | None, via: str = "web") -> None:
    """Disable or enable `user`; an admin cannot disable themselves or the last active admin."""
    if user.active == active:
        return
    if not active:
        if actor_id is not None and actor_id == user.id:
            raise ValueError("you cannot disable your own account; ask another admin")
        if user.role == "admin" and not _other_active_admins(session, user):
            raise ValueError(f"{user.name!r} is the last active admin; make another admin first")
    user.active = active
    if active:
        user.failed_logins, user.locked_until = 0, None
    else:
        end_sessions(session, user)
    audit(session, actor_id, "user.enable" if active else "user.disable", "user", user.id,
          {"name": user.name, "via": via})
    session.flush()


def reset_password(session, user: User, actor_id: int | None, password: str | None = None,
                   via: str = "web") -> str:
    """Give `user` a new password (generated unless given) and return it, to show once."""
    password = generate_password() if password is None else password
    set_password(user, password)
    user.failed_logins, user.locked_until = 0, None
    end_sessions(session, user)
    audit(session, actor_id, "user.password_reset", "user", user.id,
          {"name": user.name, "via": via})
    session.flush()
    return password


def change_own_password(session, user: User, old: str, new: str) -> None:
    """The user's own change: the old password is checked first. Every session of the
    user ends; the caller gives the current one the new epoch to keep it."""
    if not _verify(user.password_hash, old):
        raise ValueError("the current password is wrong")
    set_password(user, new)
    end_sessions(session, user)
    audit(session, user.id, "user.password_change", "user", user.id, {"name": user.name})
    session.flush()


def set_role(session, user: User, role: str, actor_id: int | None, via: str = "web") -> None:
    """Change `user`'s role; the last active admin keeps theirs."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if user.role == role:
        return
    if user.role == "admin" and user.active and not _other_active_admins(session, user):
        raise ValueError(f"{user.name!r} is the last active admin; make another admin first")
    old, user.role = user.role, role
    audit(session, actor_id, "user.role", "user", user.id,
          {"name": user.name, "from": old, "to": role, "via": via})
    session.flush()


def set_language(session, user: User, language: str | None) -> None:
    """The user's UI language, `id` or `en` (None: the default)."""
    language = language or None
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    if user.language == language:
        return
    user.language = language
    audit(session, user.id, "user.language", "user", user.id, {"language": language})
    session.flush()


def list_tokens(session) -> list[ApiToken]:
    """Every API token, newest first, with its user loaded."""
    from sqlalchemy.orm import joinedload

    return list(session.scalars(select(ApiToken).options(joinedload(ApiToken.user))
                                .order_by(ApiToken.id.desc())))


def revoke_token(session, token_id: int, actor_id: int | None, via: str = "web") -> ApiToken:
    """Revoke one token by id; ValueError when there is none."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise ValueError(f"there is no API token {token_id}")
    if not token.revoked:
        token.revoked = True
        audit(session, actor_id, "token.revoke", "api_token", token.id,
              {"name": token.name, "via": via})
        session.flush()
    return token


def revoke_tokens_named(session, name: str, actor_id: int | None, via: str = "web") -> int:
    """Revoke every live token called `name`; how many. ValueError when none has the name."""
    tokens = list(session.scalars(select(ApiToken).where(ApiToken.name == name)))
    if not tokens:
        raise ValueError(f"there is no API token named {name!r}; `helpdesk token list` shows them")
    live = [t for t in tokens if not t.revoked]
    for token in live:
        revoke_token(session, token.id, actor_id, via)
    return len(live)


def audit_query(*, user_id: int | None = None, action: str | None = None,
                target_type: str | None = None, since: dt.datetime | None = None,
                until: dt.datetime | None = None):
    """A select of audit rows with these filters (not ordered: page it by AuditLog.id).

    `action` matches exactly or as a prefix ending in '.' ('user.' is every user action);
    `until` is exclusive.
    """
    query = select(AuditLog)
    if user_id is not None:
        query = query.where(AuditLog.user_id == user_id)
    if action:
        query = query.where(AuditLog.action.startswith(action, autoescape=True)
                            if action.endswith(".") else AuditLog.action == action)
    if target_type:
        query = query.where(AuditLog.target_type == target_type)
    if since is not None:
        query = query.where(AuditLog.created_at >= since)
    if until is not None:
        query = query.where(AuditLog.created_at < until)
    return query


def audit_log(session, limit: int = 100, **filters) -> list[AuditLog]:
    """The newest audit rows matching `filters` (see audit_query)."""
    return list(session.scalars(audit_query(**filters).order_by(AuditLog.id.desc()).limit(limit)))
