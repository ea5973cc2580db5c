"""One transaction around a function of a session, run again after a conflict or a lost
connection; and the lookups a batch of texts shares.

`in_transaction(sessionmaker, fn, *args)` calls `fn(session, *args)`; `fn` must return
plain data, never live ORM objects, because the session is closed when it returns.
"""
from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)


# Conflicts another transaction caused; the whole transaction can simply run again.
# SQLite: "database is locked" (a writer upgraded its snapshot too late); MariaDB: 1213
# deadlock, 1205 lock wait timeout; PostgreSQL: 40001 serialization failure, 40P01
# deadlock.
_RETRY_ATTEMPTS = 5


def _is_conflict(error: DBAPIError) -> bool:
    if not isinstance(error, OperationalError):
        return False
    if getattr(error.orig, "sqlstate", None) in ("40001", "40P01"):
        return True
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return code in (1213, 1205) or "database is locked" in str(error.orig)


def is_outage(error: Exception) -> bool:
    """Whether `error` says the database cannot be reached or written now (so nothing
    may be deleted from a SIM and the work is tried again later), rather than that this
    one piece of work cannot be stored."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (OperationalError, InterfaceError))


def in_transaction(sessionmaker, fn, *args):
    """Run fn(session, *args) in one transaction; run it again after a lost connection or
    a conflict with another transaction (it was rolled back, so nothing is doubled)."""
    for attempt in range(1, _RETRY_ATTEMPTS + 1):
        try:
            with sessionmaker.begin() as session:
                return fn(session, *args)
        except DBAPIError as e:
            retry = e.connection_invalidated or _is_conflict(e)
            if attempt == _RETRY_ATTEMPTS or not retry:
                raise
            log.warning("database: %s; running the transaction again", e.orig)
            time.sleep(0.05 * attempt)


def batch_cached(session, key: str, load):
    """`load()`, remembered while a batch is being filed (see `batch`), else read fresh."""
    cache = session.info.get("batch")
    if cache is None:
        return load()
    if key not in cache:
        cache[key] = load()
    return cache[key]


def batch_map(session, key: str) -> dict | None:
    """A lookup table a batch filled in advance (see gateway.desk.inbox), or None outside one."""
    cache = session.info.get("batch")
    return cache.get(key) if cache is not None else None


class batch:
    """Within this block, lookups many texts repeat (the catalogue, edited reply
    templates) are read once: a batch of a hundred texts asks for them a hundred times."""

    def __init__(self, session):
        self.session = session

    def __enter__(self):
        self.session.info["batch"] = {}

    def __exit__(self, *exc):
        self.session.info.pop("batch", None)
