"""The daemon as one Twisted MultiService: database first, then modems, pipelines, web."""
from __future__ import annotations

import logging
import os
import sys
import threading

from twisted.application import internet, service
from twisted.internet import defer, endpoints, threads
from twisted.python.threadpool import ThreadPool
from twisted.web.server import Site
from twisted.web.wsgi import WSGIResource

from gateway import secret
from gateway.config import listen_endpoint
from gateway.daemon.broadcasts import BroadcastFeeder
from gateway.daemon.database import Database, pool_size, stop_off_reactor
from gateway.daemon.health import HealthMonitor
from gateway.daemon.inbound import InboundPoller, MultipartSweeper
from gateway.daemon.outbox import OutboxDispatcher, node_name
from gateway.daemon.periodic import DailySummaryJob
from gateway.daemon.statistics import PlannerStatistics
from gateway.daemon.voice_process import VoiceProcess
from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.schema import check_current
from gateway.db.transaction import in_transaction
from gateway.desk import health, outbox
from gateway.modem.worker import ModemWorker
from gateway.voice.ami import ami_service

log = logging.getLogger(__name__)


class SequentialMultiService(service.MultiService):
    """Stops its children one after another, last started first, each once the one
    before has finished: the pipelines end their commit-then-delete before the modems
    and the database they need are gone."""

    @defer.inlineCallbacks
    def stopService(self):
        service.Service.stopService(self)
        for child in reversed(list(self)):
            log.debug("stopping %s", child.name or child)
            try:
                yield defer.maybeDeferred(child.stopService)
            except Exception:
                log.exception("stopping %s failed; stopping the rest", child)


class WebThreadPool(service.Service):
    """The WSGI thread pool, started and stopped with the daemon. Its stop joins the
    threads off the reactor: a request in flight writes its answer through the reactor,
    so joining on the reactor thread would wait for ever."""

    def __init__(self, reactor, size=10):
        self.reactor = reactor
        self.pool = ThreadPool(minthreads=2, maxthreads=size, name="web")

    def startService(self):
        super().startService()
        self.pool.start()

    def stopService(self):
        super().stopService()
        return stop_off_reactor(self.reactor, self.pool.stop)


class BuiltOnFirstRequest:
    """A WSGI app built by `build()` when the first request comes, once: start-up files
    the SIM's first texts without waiting for the UI's imports and routes (about a
    quarter of a second), and the first page pays for them instead."""

    def __init__(self, build):
        self._build = build
        self._app = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        app = self._app
        if app is None:
            with self._lock:  # the web threads' first requests wait for one build
                if self._app is None:
                    self._app = self._build()
                app = self._app
        return app(environ, start_response)


def web_service(config, sessionmaker, reactor, on_queued=None,
                click_to_call=None) -> service.MultiService:
    """The operator UI and JSON API: Flask under twisted.web's WSGIResource."""
    secret_key = secret.read(config.secret_file)  # a missing key stops start-up, clearly

    def build():
        from helpdesk_web import create_app
        return create_app(config, sessionmaker, secret_key=secret_key,
                          on_queued=on_queued, click_to_call=click_to_call)

    web = service.MultiService()
    threads = WebThreadPool(reactor)
    threads.setServiceParent(web)
    site = Site(WSGIResource(reactor, threads.pool, BuiltOnFirstRequest(build)))
    endpoint = endpoints.serverFromString(reactor, listen_endpoint(config.web_listen))
    listener = internet.StreamServerEndpointService(endpoint, site)
    listener._raiseSynchronously = True  # a taken port stops start-up with a clear error
    listener.setServiceParent(web)
    return web


def _group(name: str, parent) -> service.MultiService:
    group = service.MultiService()
    group.setName(name)
    group.setServiceParent(parent)
    return group


SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005


def make_service(config, reactor, with_modems=True) -> service.MultiService:
    """Build the whole daemon; raises SchemaOutdated before anything starts."""
    # A thread that wakes (a modem's read, a web request) waits for the GIL while a DB
    # thread files texts in Python: up to one switch interval per wake-up. 1 ms instead
    # of 5 made the caller lookup's p50 during a burst a third lower when it still ran in
    # this process, the filing no slower (docs/benchmarks-agi.md, interleaved runs).
    sys.setswitchinterval(SWITCH_INTERVAL)
    engine = make_engine(config.database_url)
    check_current(engine)
    sessions = make_sessionmaker(engine)
    node = node_name(config)
    names = [m.name for m in config.modems]
    # Start-up bookkeeping, before any service runs (README rule 4: sending -> unknown).
    in_transaction(sessions, health.register_modems, names)
    stale = in_transaction(sessions, outbox.mark_unknown_after_restart, node)
    if stale:
        log.warning("%d texts were being sent when the gateway stopped; marked unknown", stale)

    top = SequentialMultiService()
    # The caller lookup runs in a process of its own (gateway/daemon/voice_process.py).
    db = Database(sessions, reactor, size=pool_size(engine))
    db.setServiceParent(top)  # first in, last out
    PlannerStatistics(db, reactor).setServiceParent(top)
    dispatcher = None
    if with_modems:
        for modem in config.modems:
            if modem.is_dummy:  # a simulated modem is a directory Gammu fills in at Init
                os.makedirs(modem.gammu["Device"], exist_ok=True)
        # Each group stops its members at once (a hung modem costs one wait, not one
        # per modem), and the groups in turn: pipelines before modems before database.
        modems = _group("modems", top)
        workers = [ModemWorker(m, reactor) for m in config.modems]
        for worker in workers:
            worker.setServiceParent(modems)
        pipelines = _group("pipelines", top)
        dispatcher = OutboxDispatcher(workers, db, config, reactor, node=node)
        for worker in workers:
            InboundPoller(worker, db, config, reactor,
                          on_stored=lambda _ids: dispatcher.wake()).setServiceParent(pipelines)
        MultipartSweeper(db, config, reactor).setServiceParent(pipelines)
        HealthMonitor(workers, db, config, reactor).setServiceParent(pipelines)
        dispatcher.setServiceParent(pipelines)
        BroadcastFeeder(db, config, reactor, len(workers),
                        on_queued=dispatcher.wake).setServiceParent(pipelines)
        if config.daily_summary_to:
            DailySummaryJob(db, config, reactor,
                            on_queued=dispatcher.wake).setServiceParent(pipelines)

    def on_queued(_message_id):
        if dispatcher is not None:
            reactor.callFromThread(dispatcher.wake)

    if with_modems:  # `helpdesk run` answers Asterisk; `helpdesk web` (scale-out) does not
        VoiceProcess(config, reactor, on_queued=on_queued).setServiceParent(top)
    ami, click_to_call = ami_service(config, db.calls, reactor)  # (None, None) without [ami]
    place_call = None
    if ami is not None:
        ami.setServiceParent(top)

        def place_call(user_id, number):  # on a WSGI thread: wait for Asterisk's answer
            return threads.blockingCallFromThread(reactor, click_to_call.call, user_id, number)
    web_service(config, sessions, reactor, on_queued, place_call).setServiceParent(top)
    return top
