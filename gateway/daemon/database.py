"""Every database call of the daemon, off the reactor thread, through typed components.

`db.outbox.claim(node, now, limit)` runs the domain's `outbox.claim(session, ...)` in one
transaction on a thread of a private pool and fires with plain data (buildbot's
master/db shape: one component per table family, callers never hand the pool raw
functions). A stop waits for the transactions in flight, then stops the pool off the
reactor thread: a WSGI request or a modem callback finishing may need that thread.
"""
from __future__ import annotations

import functools
import logging
import threading

from sqlalchemy.exc import DBAPIError
from twisted.application import service
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from gateway.db.transaction import in_transaction, is_outage
from gateway.desk import calls, health, inbox, outbox

log = logging.getLogger(__name__)


def pool_size(engine) -> int:
    """SQLite has one writer: one DB thread writes in turn instead of waiting in SQLite's
    sleeping busy handler. MariaDB locks rows and gains from a few threads."""
    return 1 if engine.dialect.name == "sqlite" else 4


def stop_off_reactor(reactor, stop) -> defer.Deferred:
    """Call a blocking `stop()` (a thread pool's join) on a thread of its own; fires
    when it has returned. The reactor keeps running meanwhile, so work in flight that
    needs the reactor to finish can finish."""
    done = defer.Deferred()

    def run():
        try:
            stop()
        except Exception:
            log.exception("stopping a thread pool failed")
        reactor.callFromThread(done.callback, None)

    threading.Thread(target=run, name="stop-pool", daemon=True).start()
    return done


class ReadPool:
    """Reads that must never wait behind the writers (the caller lookup): a thread pool
    and connections of their own, one connection kept per thread (no checkout, ping or
    ROLLBACK per read), from an autocommit engine (gateway.db.engine.make_read_engine).
    The SMS pipeline's transactions queue on Database's threads, never in front of these.

    With no reactor it reads at once on the calling thread, as Database does."""

    def __init__(self, engine, reactor=None, size=1):
        self.engine = engine
        self.reactor = reactor
        self.threadpool = (ThreadPool(minthreads=1, maxthreads=size, name="db-reads")
                           if reactor else None)
        self._local = threading.local()
        self._connections = []  # every thread's, closed at stop

    def start(self):
        if self.threadpool is not None:
            self.threadpool.start()

    @defer.inlineCallbacks
    def stop(self):
        if self.threadpool is not None:
            yield stop_off_reactor(self.reactor, self.threadpool.stop)
        for conn in self._connections:
            conn.close()
        self._connections.clear()
        self.engine.dispose()

    def run(self, fn, *args) -> defer.Deferred:
        """fn(connection, *args) on a reader thread; fires with what it returns."""
        if self.threadpool is None:
            return defer.maybeDeferred(self._read, fn, *args)
        return threads.deferToThreadPool(self.reactor, self.threadpool, self._read, fn, *args)

    def _read(self, fn, *args):
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self.engine.connect()
                self._connections.append(conn)
            try:
                return fn(conn, *args)
            except DBAPIError as e:  # a lost connection: once more on a new one
                if not e.connection_invalidated or attempt == 2:
                    raise
                self._local.conn = None
                self._connections.remove(conn)
                conn.close()


class Database(service.Service):
    """The daemon's database: starts first, stops last.

    With no reactor it runs each transaction at once on the calling thread: tests that
    drive time with a Clock, and benchmarks that time one step, use it that way.
    `reads`: a ReadPool for the caller lookup; without one it reads in a transaction."""

    name = "db"
    reads: ReadPool | None = None

    def __init__(self, sessionmaker, reactor=None, size=4, reads: ReadPool | None = None):
        self.sessionmaker = sessionmaker
        self.reactor = reactor
        self.threadpool = ThreadPool(minthreads=1, maxthreads=size, name="db") if reactor else None
        self.reads = reads
        self._in_flight: set[defer.Deferred] = set()

    def startService(self):
        super().startService()
        if self.threadpool is not None:
            self.threadpool.start()
        if self.reads is not None:
            self.reads.start()

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self._in_flight:
            yield defer.DeferredList(list(self._in_flight), consumeErrors=True)
        if self.threadpool is not None:
            yield stop_off_reactor(self.reactor, self.threadpool.stop)
        if self.reads is not None:
            yield self.reads.stop()

    def run(self, fn, *args) -> defer.Deferred:
        """fn(session, *args) in one transaction; the components are the callers."""
        if self.threadpool is None:
            return defer.maybeDeferred(in_transaction, self.sessionmaker, fn, *args)
        d = threads.deferToThreadPool(self.reactor, self.threadpool, in_transaction,
                                      self.sessionmaker, fn, *args)
        self._in_flight.add(d)

        def forget(result):
            self._in_flight.discard(d)
            return result
        return d.addBoth(forget)

    @functools.cached_property
    def inbox(self) -> InboxComponent:
        return InboxComponent(self)

    @functools.cached_property
    def outbox(self) -> OutboxComponent:
        return OutboxComponent(self)

    @functools.cached_property
    def modems(self) -> ModemsComponent:
        return ModemsComponent(self)

    @functools.cached_property
    def calls(self) -> CallsComponent:
        return CallsComponent(self)


class _Component:
    def __init__(self, db: Database):
        self.run = db.run
        self.read = db.reads.run if db.reads is not None else db.run


class InboxComponent(_Component):
    """messages and message_parts, as texts come in.

    One text never holds up another: a batch that fails for any reason but a database
    outage is split in halves and each stored again, down to the single text that
    fails, which is quarantined (kept as it came, marked for a person). One bad text in
    a batch of a hundred costs about fourteen extra transactions, once."""

    @defer.inlineCallbacks
    def store(self, modem: str, parts, config, now):
        """Fires with an inbox.StoreResult once the parts and what they caused are
        committed; its `deletable` names only what is safely stored."""
        try:
            result = yield self.run(inbox.store_batch, modem, parts, config, now)
        except Exception as e:
            if is_outage(e):
                raise
            if len(parts) == 1:
                result = yield self._quarantine(modem, e, now, parts=parts)
            else:
                half = len(parts) // 2
                first = yield self.store(modem, parts[:half], config, now)
                second = yield self.store(modem, parts[half:], config, now)
                result = inbox.StoreResult(first.deletable + second.deletable,
                                           first.messages + second.messages)
        return result

    @defer.inlineCallbacks
    def finish_expired(self, config, now):
        """File the multipart texts whose time is up; fires with their ids."""
        try:
            filed = yield self.run(inbox.finish_expired, config, now)
        except Exception as e:
            if is_outage(e):
                raise
            filed = []
            for group, modem in (yield self.run(inbox.expired_groups, config, now)):
                try:
                    filed += yield self.run(inbox.finish_expired, config, now, [group])
                except Exception as e:
                    if is_outage(e):
                        raise
                    result = yield self._quarantine(modem, e, now, group=group)
                    filed += result.messages
        return filed

    @defer.inlineCallbacks
    def _quarantine(self, modem, error, now, parts=(), group=None):
        reason = f"could not be filed: {type(error).__name__}: {error}"
        senders = (", ".join(sorted({p.sender or "(no number)" for p in parts})) if parts
                   else f"a multipart text ({group[:8]})")
        log.warning("modem %s: a text from %s %s; kept for a person", modem, senders, reason,
                    exc_info=(type(error), error, error.__traceback__))
        try:
            result = yield self.run(inbox.quarantine, modem, reason, now, list(parts), group)
        except Exception as e:
            if is_outage(e):
                raise
            # Not even storable as it came: it stays on the SIM, the others go on.
            log.exception("modem %s: the text from %s cannot be stored at all; it stays "
                          "on the SIM", modem, senders)
            result = inbox.StoreResult(deletable=[], messages=[])
        return result


class OutboxComponent(_Component):
    """messages, as texts go out: queued -> sending -> sent | failed | unknown."""

    def claim(self, node: str, now, limit: int, slot: int = 0, peers: int = 1) -> defer.Deferred:
        return self.run(outbox.claim, node, now, limit, slot, peers)

    def finish(self, outcome, now, max_attempts: int, node: str,
               claim_next: int = 0, slot: int = 0, peers: int = 1) -> defer.Deferred:
        """Record a send's outcome and claim the free modem's next texts, in one
        transaction: fires with (status, claimed)."""
        return self.run(outbox.finish, outcome, now, max_attempts, node, claim_next, slot,
                        peers)

    def beat(self, node: str, now, lease: float, held=()) -> defer.Deferred:
        """This host is alive; take over from dead ones and queue again this host's
        lost claims (not in `held`): fires with an outbox.Beat."""
        return self.run(outbox.beat, node, now, lease, tuple(held))


class ModemsComponent(_Component):
    """modems: readings, counters, alerts."""

    def record(self, name: str, readings, error, now, counts, host=None) -> defer.Deferred:
        return self.run(health.record, name, readings, error, now, counts, host)

    def send_alerts(self, config, now, alerted: set) -> defer.Deferred:
        """Fires with (alerts queued, the conditions now alerted)."""
        return self.run(health.send_alerts, config, now, alerted)


class CallsComponent(_Component):
    """calls, as Asterisk reports them."""

    def lookup(self, callerid, region) -> defer.Deferred:
        """What the dialplan is told, read on the ReadPool: never behind a write."""
        return self.read(calls.lookup_caller, callerid, region)

    def incoming(self, uniqueid, callerid, region, now) -> defer.Deferred:
        return self.run(calls.incoming_call, uniqueid, callerid, region, now)

    def answered(self, uniqueid, operator_channel, now) -> defer.Deferred:
        return self.run(calls.call_answered, uniqueid, operator_channel, now)

    def ended(self, *args) -> defer.Deferred:
        return self.run(calls.call_ended, *args)

    def click_to_call(self, user_id, number, region, uniqueid, now) -> defer.Deferred:
        return self.run(calls.click_to_call, user_id, number, region, uniqueid, now)

    def originate_failed(self, call_id, reason, now) -> defer.Deferred:
        return self.run(calls.originate_failed, call_id, reason, now)
