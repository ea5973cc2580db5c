"""Every database call of the daemon runs here, off the reactor thread.

`pool.run(fn, *args)` calls `fn(session, *args)` inside one transaction on a thread of
a private pool and returns a Deferred; `fn` must return plain data, never live ORM
objects, because the session is closed when it returns.
"""
from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from twisted.application import service
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

log = logging.getLogger(__name__)


def in_transaction(sessionmaker, fn, *args):
    """Run fn(session, *args) in one transaction, retrying once on a dropped connection."""
    for attempt in (1, 2):
        try:
            with sessionmaker.begin() as session:
                return fn(session, *args)
        except DBAPIError as e:
            if attempt == 2 or not e.connection_invalidated:
                raise
            log.warning("database connection was lost, retrying once: %s", e.orig)


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
