"""Every database call of the daemon runs here, off the reactor thread.

`pool.run(fn, *args)` calls `fn(session, *args)` inside one transaction on a thread of
a private pool and returns a Deferred; `fn` must return plain data, never live ORM
objects, because the session is closed when it returns.
"""
from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError, OperationalError
from twisted.application import service
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

log = logging.getLogger(__name__)


# Conflicts another transaction caused; the whole transaction can simply run again.
# SQLite: "database is locked" (a writer upgraded its snapshot too late); MariaDB: 1213
# deadlock, 1205 lock wait timeout.
_RETRY_ATTEMPTS = 5


def _is_conflict(error: DBAPIError) -> bool:
    if not isinstance(error, OperationalError):
        return False
    code = error.orig.args[0] if error.orig is not None and error.orig.args else None
    return code in (1213, 1205) or "database is locked" in str(error.orig)


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
    """A lookup table a batch filled in advance (see inbound_store), or None outside one."""
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


def pool_size(engine) -> int:
    """SQLite has one writer: one DB thread writes in turn instead of waiting in SQLite's
    sleeping busy handler. MariaDB locks rows and gains from a few threads."""
    return 1 if engine.dialect.name == "sqlite" else 4


class DBPool(service.Service):
    """A small thread pool that owns the database work; starts first, stops last."""

    name = "db"

    def __init__(self, sessionmaker, reactor, size=4):
        self.sessionmaker = sessionmaker
        self.reactor = reactor
        self.threadpool = ThreadPool(minthreads=1, maxthreads=size, name="db")

    def startService(self):
        super().startService()
        self.threadpool.start()

    def stopService(self):
        super().stopService()
        self.threadpool.stop()

    def run(self, fn, *args):
        return threads.deferToThreadPool(self.reactor, self.threadpool,
                                         in_transaction, self.sessionmaker, fn, *args)


class InlineDBPool:
    """Runs the same transaction synchronously: for tests that drive time with a Clock."""

    def __init__(self, sessionmaker):
        self.sessionmaker = sessionmaker

    def run(self, fn, *args):
        from twisted.internet import defer

        return defer.maybeDeferred(in_transaction, self.sessionmaker, fn, *args)
