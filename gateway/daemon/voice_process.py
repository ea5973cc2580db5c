"""FastAGI in a process of its own, so a caller's lookup never waits for the GIL.

While a burst of texts is filed, the DB thread runs Python almost without pause; in the
same process the lookup then waits for the GIL at each step (socket read, query, answer),
and its p99 passed 80 ms (docs/benchmarks-agi.md). Here the daemon binds the FastAGI port
itself, so a taken port still stops start-up at once, and hands the listening socket to
a child, `python -m gateway.daemon.voice_process`, that serves it with its own reactor
and database connections (gateway/voice/fastagi.py, unchanged).

- The child reads the same configuration (its path and the environment are inherited).
- A missed-call text the child queues is announced on its stdout ("queued 123"), so
  the daemon wakes its outbox at once.
- The child stops when its stdin closes (the daemon stopped or died), after its
  calls in flight are written. A child that exits while the daemon runs is started
  again (1 s, doubling to 30 s); calls that come meanwhile wait in the socket's backlog.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys

from twisted.application import service
from twisted.internet import defer, error, protocol

from gateway.config import listen_address
from gateway.secret import read as read_secret

log = logging.getLogger(__name__)

CHILD_FD = 3          # the listening socket, in the child
RESTART_FIRST, RESTART_MAX = 1.0, 30.0
STOP_GRACE = 10.0     # seconds a child has to finish its calls' writes at a stop


def bind(listen: str) -> socket.socket:
    """The FastAGI socket on 'host:port', listening; CannotListenError as Twisted's own."""
    host, port = listen_address(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as e:
        raise error.CannotListenError(host, port, e) from None
    sock.set_inheritable(True)
    sock.setblocking(False)   # the child's reactor accepts until there is nothing left
    return sock


class VoiceProcess(service.Service):
    """The FastAGI child, started with the daemon and stopped before its database."""

    name = "agi"

    def __init__(self, config, reactor, on_queued=None):
        # The child reads the secret too; read here, a missing one stops start-up with
        # `helpdesk init`'s hint instead of a child that fails again and again.
        read_secret(config.agi_secret_file, "FastAGI secret")
        self.config, self.reactor, self.on_queued = config, reactor, on_queued
        # Bound now, before any service starts: a taken port stops start-up cleanly.
        self.sock: socket.socket | None = bind(config.agi_listen)
        self.child: _Child | None = None
        self._delay = RESTART_FIRST
        self._restart = None

    def startService(self):
        super().startService()
        self._spawn()

    def _spawn(self):
        self._restart = None
        self.child = _Child(self)
        config_path = self.config.path if os.path.exists(self.config.path) else ""
        self.reactor.spawnProcess(
            self.child, sys.executable,
            [sys.executable, "-m", "gateway.daemon.voice_process", config_path,
             str(self.sock.family.value)],
            env=os.environ.copy(), childFDs={0: "w", 1: "r", 2: 2, CHILD_FD: self.sock.fileno()})

    def child_ended(self, child, reason):
        if child is not self.child:
            return
        self.child = None
        if not self.running:
            return
        log.error("FastAGI process ended (%s); starting it again in %.0f s",
                  reason.getErrorMessage(), self._delay)
        self._restart = self.reactor.callLater(self._delay, self._spawn)
        self._delay = min(self._delay * 2, RESTART_MAX)

    def child_ready(self):
        self._delay = RESTART_FIRST

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self._restart is not None and self._restart.active():
            self._restart.cancel()
        child = self.child
        if child is not None and child.transport is not None:
            child.transport.closeStdin()    # the child finishes its writes, then exits
            timer = self.reactor.callLater(STOP_GRACE, child.kill)
            yield child.ended
            if timer.active():
                timer.cancel()
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _Child(protocol.ProcessProtocol):
    MAX_LINE = 256    # "queued 123"; anything longer is not ours

    def __init__(self, owner: VoiceProcess):
        self.owner = owner
        self.buffer = b""
        self.ended = defer.Deferred()

    def outReceived(self, data: bytes):
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        self.buffer = self.buffer[-self.MAX_LINE:]
        for line in lines:
            self.line(line[:self.MAX_LINE].decode("ascii", "replace"))

    def line(self, line: str):
        word, _, rest = line.partition(" ")
        if word == "ready":
            self.owner.child_ready()
        elif word == "queued" and rest.isdigit() and self.owner.on_queued is not None:
            self.owner.on_queued(int(rest))

    def kill(self):
        try:
            self.transport.signalProcess("KILL")
        except error.ProcessExitedAlready:
            pass

    def processEnded(self, reason):
        self.owner.child_ended(self, reason)
        self.ended.callback(None)


# -- the child --------------------------------------------------------------------------

class _StdinWatch(protocol.Protocol):
    """Stops the child's reactor when the daemon closes the pipe (or dies)."""

    def __init__(self, reactor):
        self.reactor = reactor

    def connectionLost(self, reason=protocol.connectionDone):
        if self.reactor.running:
            self.reactor.stop()


def main(argv: list[str]) -> int:
    from twisted.internet import reactor, stdio

    from gateway import config as config_module
    from gateway.daemon.database import Database, ReadPool
    from gateway.daemon.logs import setup_logging
    from gateway.db.engine import make_engine, make_read_engine, make_sessionmaker
    from gateway.voice.fastagi import agi_factory

    config_path, family = argv[1], socket.AddressFamily(int(argv[2]))
    setup_logging()
    # A Ctrl-C or systemd's SIGTERM reaches the whole process group: the daemon stops,
    # then closes our stdin, and we stop once the calls in flight are written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    config = config_module.load(config_path or None)
    engine = make_engine(config.database_url)
    single_writer = engine.dialect.name == "sqlite"
    reads = ReadPool(make_read_engine(config.database_url), reactor,
                     size=1 if single_writer else 2)
    db = Database(make_sessionmaker(engine), reactor, size=1 if single_writer else 2,
                  reads=reads)

    factory = agi_factory(config, db.calls, reactor,
                          on_queued=lambda message_id: _tell(f"queued {message_id}"))
    port = reactor.adoptStreamPort(CHILD_FD, family, factory)
    os.close(CHILD_FD)   # adoptStreamPort listens on a copy of it
    stdio.StandardIO(_StdinWatch(reactor), stdout=os.open(os.devnull, os.O_WRONLY))
    # The threads start with the reactor, so a failure before it leaves none behind.
    reactor.callWhenRunning(db.startService)
    reactor.callWhenRunning(_tell, "ready")
    reactor.addSystemEventTrigger("before", "shutdown", port.stopListening)
    reactor.addSystemEventTrigger("before", "shutdown", db.stopService)
    reactor.run(installSignalHandlers=False)
    return 0


def _tell(line: str) -> None:
    """A line for the daemon; none if it is gone (our stdin closing then stops us)."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main(sys.argv))
