"""One transaction around a function of a session, run again after a conflict or a lost
connection; and the lookups a batch of texts shares.

`in_transaction(sessionmaker, fn, *args)` calls `fn(session, *args)`; `fn` must return
plain data, never live ORM objects, because the session is closed when it returns.
"""
from __future__ import annotations

import collections
import logging
import random
import threading
import time

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)


# Conflicts another transaction caused; the whole transaction can simply run again.
# SQLite: "database is locked" (a writer upgraded its snapshot too late); MariaDB: 1213
# deadlock, 1205 lock wait timeout; PostgreSQL: 40001 serialization failure, 40P01
# deadlock. On MariaDB Galera a row lock holds on one node only: two nodes that wrote
# the same row both go on, and the one certified second gets 1213 at COMMIT (or at its
# next statement, when the winner's write set aborts it).
_RETRY_ATTEMPTS = 8


def is_conflict(error: Exception) -> bool:
    if not isinstance(error, OperationalError):
        return False
    if getattr(error.orig, "sqlstate", None) in ("40001", "40P01"):
        return True
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return code in (1213, 1205) or "database is locked" in str(error.orig)


class ConflictCounter:
    """Conflicts retried since start, by the work that met them (thread-safe): the
    figure that says whether hosts sharing a database get in each other's way."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: collections.Counter = collections.Counter()

    def add(self, what: str) -> int:
        with self._lock:
            self._counts[what] += 1
            return sum(self._counts.values())

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())


conflicts = ConflictCounter()


def _pause(attempt: int) -> None:
    # Jittered: two hosts that met on a row must not meet again on the next try.
    time.sleep(random.uniform(0.01, 0.05) * attempt)


def _note_conflict(what: str, error: DBAPIError, attempt: int) -> None:
    total = conflicts.add(what)
    log.warning("database conflict in %s (try %d): %s; running the transaction again "
                "(%d conflicts retried since start)", what, attempt, error.orig, total)


def commit_retrying(session, fn, *args, **kwargs):
    """fn(*args, **kwargs), then commit the caller's `session` (a web request's); after a
    conflict (Galera's certification failure: two UI processes on two nodes decided the
    same thing at once) roll back and run it again, so the second hears the first's
    answer ("already confirmed"), never an error page. Any other error is the caller's,
    with the session rolled back."""
    what = getattr(fn, "__qualname__", repr(fn))
    for attempt in range(1, _RETRY_ATTEMPTS + 1):
        try:
            result = fn(*args, **kwargs)
            session.commit()
            return result
        except DBAPIError as e:
            session.rollback()
            if attempt == _RETRY_ATTEMPTS or not is_conflict(e):
                raise
            _note_conflict(what, e, attempt)
            _pause(attempt)


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
            conflict = is_conflict(e)
            if attempt == _RETRY_ATTEMPTS or not (conflict or e.connection_invalidated):
                raise
            if conflict:
                _note_conflict(getattr(fn, "__qualname__", repr(fn)), e, attempt)
            else:
                log.warning("database: %s; running the transaction again", e.orig)
            _pause(attempt)


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
