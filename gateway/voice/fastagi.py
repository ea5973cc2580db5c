"""FastAGI: Asterisk asks the daemon who is calling before any phone rings.

A small Twisted protocol of our own, because pyst2's `asterisk.fastagi` does not run
on Python 3 (and a blocking server would stall callers). One TCP connection is one AGI
session, as Asterisk speaks it (res_agi.c):

    Asterisk -> us   agi_network: yes\\n ... agi_arg_1: x\\n \\n   (the header, then a blank line)
    us -> Asterisk   SET VARIABLE HELPDESK_TICKET "12"\\n
    Asterisk -> us   200 result=1\\n                         (one reply per command)
                     510 Invalid or unknown command\\n
                     511 Command Not Permitted on a dead channel or intercept routine\\n
                     520-Invalid command syntax.  Proper usage follows:\\n ... 520 End ...\\n
                     HANGUP\\n                                (the caller hung up: not a reply)
    we close the connection when done; the dialplan goes on with AGISTATUS=SUCCESS.

Scripts, by the URL path the dialplan uses (dialplans/extensions.conf):

    agi://127.0.0.1:4573/incoming   caller lookup, call row, ticket; sets the variables below
    agi://127.0.0.1:4573/answered   an operator took the call (Queue's AGI argument on the
                                    caller's channel, or Dial's U() gosub with the caller's
                                    uniqueid as argument 1 on the operator's channel)
    agi://127.0.0.1:4573/hangup     the hangup handler: closes the row, missed-call SMS

Any local process can open the port, so every URL carries the shared secret of [agi]
secret_file as `?secret=...` (res_agi relays the URL's path and query as
agi_network_script). A request without it, or with a wrong one, is closed before any
database work; the header is bounded in lines, bytes and time before that.

It runs in a process of its own (gateway/daemon/voice_process.py), so a caller's lookup
never waits for the GIL while the daemon files texts. The database work runs on threads,
never on the reactor thread. The incoming lookup answers first and files afterwards, so
a caller never waits behind a write (say a burst of texts being filed): one read on a
connection of its own (a ReadPool), the
SET VARIABLEs, the connection closed; then the call row (and a new contact or `call`
ticket) is written on the DB pool. The `answered` and `hangup` scripts of that channel
wait for that write first; if it failed, the hangup handler files the call itself.
"""
from __future__ import annotations

import hmac
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from twisted.internet import defer, error
from twisted.internet.protocol import ServerFactory
from twisted.protocols.basic import LineOnlyReceiver

from gateway.db.models import utcnow
from gateway.desk import calls
from gateway.secret import read as read_secret

log = logging.getLogger(__name__)

SCRIPTS = ("incoming", "answered", "hangup")

# Channel variables the incoming lookup sets, for the dialplan and the operator's phone.
# HELPDESK_CONTACT and HELPDESK_TICKET name what exists when the caller is looked up:
# "" for a new caller, and a call that opens a new `call` ticket, both filed right after.
VARIABLES = ("HELPDESK_LOOKUP", "HELPDESK_CONTACT", "HELPDESK_TICKET",
             "HELPDESK_OPERATOR", "HELPDESK_OPERATOR_DIAL", "HELPDESK_NEW")
# Variables the hangup handler reads from the (dead) channel.
HANGUP_READS = ("HELPDESK_HOURS", "QUEUESTATUS", "DIALSTATUS", "HANGUPCAUSE")
# Set by Queue() on the caller's channel when a member answers (queues.conf
# setinterfacevar = yes); the `answered` script reads it.
MEMBER_VARIABLE = "MEMBERINTERFACE"

WITHHELD_CALLERIDS = ("", "unknown", "anonymous", "restricted", "private", "withheld")

_REPLY = re.compile(r"^(\d{3})[ -]?(.*)$")
_RESULT = re.compile(r"^result=(\S*)\s*(?:\((.*)\))?\s*(.*)$")


class AGIError(Exception):
    """Asterisk refused a command (510, 511, 520 or an unexpected line)."""

    def __init__(self, reply):
        super().__init__(f"{reply.code} {reply.text}")
        self.reply = reply


class AGIHangup(Exception):
    """The channel hung up before the command could be sent."""


@dataclass(frozen=True)
class AGIReply:
    code: int
    text: str  # the line after the code
    result: str | None = None  # 200 result=<this>
    data: str | None = None  # 200 result=1 (<this>)
    usage: tuple[str, ...] = ()  # the lines of a 520 usage message

    @property
    def ok(self) -> bool:
        return self.code == 200 and self.result != "-1"


def parse_reply(line: str) -> AGIReply:
    """One reply line from Asterisk ('200 result=1 (PJSIP/101)') as an AGIReply."""
    m = _REPLY.match(line)
    if not m:
        return AGIReply(0, line)
    code, rest = int(m.group(1)), m.group(2)
    if code == 200:
        r = _RESULT.match(rest)
        if r:
            return AGIReply(200, rest, r.group(1), r.group(2))
    return AGIReply(code, rest)


@dataclass(frozen=True)
class AGIRequest:
    """The agi_* header Asterisk sends first, and the script and arguments it names."""
    env: dict = field(default_factory=dict)

    @property
    def _target(self) -> str:
        """The URL's path and query, 'incoming?secret=...'."""
        target = self.env.get("agi_network_script") or self.env.get("agi_request", "")
        if "://" in target:
            target = target.split("://", 1)[1].partition("/")[2]
        return target

    @property
    def script(self) -> str:
        return self._target.split("?", 1)[0].strip("/")

    @property
    def secret(self) -> str | None:
        """The URL's `secret` parameter; None when the URL has none."""
        return dict(parse_qsl(self._target.partition("?")[2],
                              keep_blank_values=True)).get("secret")

    @property
    def args(self) -> list[str]:
        args, n = [], 1
        while f"agi_arg_{n}" in self.env:
            args.append(self.env[f"agi_arg_{n}"])
            n += 1
        return args

    @property
    def uniqueid(self) -> str:
        return self.env.get("agi_uniqueid", "")

    @property
    def channel(self) -> str:
        return self.env.get("agi_channel", "")

    @property
    def callerid(self) -> str | None:
        """The caller's number, or None when withheld (Asterisk writes 'unknown')."""
        number = self.env.get("agi_callerid", "").strip()
        return None if number.lower() in WITHHELD_CALLERIDS else number


def quote(value) -> str:
    """An AGI command argument: one line, double-quoted, with \\ and \" escaped."""
    text = " ".join(str(value).splitlines())  # a newline would end the command early
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def variables_for(info: calls.CallerInfo | None) -> list[tuple[str, str]]:
    """The channel variables the dialplan gets for a caller (None: the lookup failed)."""
    if info is None:
        return [("HELPDESK_LOOKUP", "failed")]
    pairs = []
    if info.name:
        pairs.append(("CALLERID(name)", info.name[:80]))
    pairs += [
        ("HELPDESK_LOOKUP", "ok"),
        ("HELPDESK_CONTACT", str(info.contact_id or "")),
        ("HELPDESK_TICKET", info.ticket_number or ""),
        ("HELPDESK_OPERATOR", info.operator or ""),
        ("HELPDESK_OPERATOR_DIAL", info.operator_dial or ""),
        ("HELPDESK_NEW", "1" if info.new else "0"),
    ]
    return pairs


class FastAGIProtocol(LineOnlyReceiver):
    """One FastAGI session: read the header, check its secret, run the script, close."""

    delimiter = b"\n"
    # The longest line from Asterisk is a GET VARIABLE reply, under 1.1 KiB (res_agi
    # reads the value into 1024 bytes); header lines are shorter still.
    MAX_LENGTH = 4096
    # Asterisk's header is some 25 lines and 1 KiB; anything far past that is not
    # Asterisk, and its lines are not kept.
    MAX_HEADER_LINES = 64
    MAX_HEADER_BYTES = 8192
    header_timeout = 5.0  # for the whole header, not per line: a trickle cannot last
    command_timeout = 5.0

    def __init__(self):
        self.env: dict[str, str] = {}
        self.header_lines = 0  # lines and bytes of the header so far
        self.header_bytes = 0
        self.request: AGIRequest | None = None
        self.hungup = False
        self.done = False
        self._queue: deque = deque()  # (command line, Deferred) not yet sent
        self._waiting: defer.Deferred | None = None  # the command sent, awaiting its reply
        self._usage: list[str] | None = None
        self._timer = None

    # -- connection --------------------------------------------------------------------
    def connectionMade(self):
        self._timer = self.factory.clock.callLater(self.header_timeout,
                                                   self._header_timed_out)

    def connectionLost(self, reason=error.ConnectionDone()):
        self.done = True
        self._cancel_timer()
        waiting, self._waiting = self._waiting, None
        pending = [d for _, d in self._queue]
        self._queue.clear()
        for d in ([waiting] if waiting else []) + pending:
            d.errback(reason)

    def dataReceived(self, data):
        if self.transport.disconnecting:  # closed: what is still in flight is not read
            return
        super().dataReceived(data)

    def lineLengthExceeded(self, line):
        self._drop("line", "FastAGI: a line of over %d bytes from %s; closing",
                   self.MAX_LENGTH, self._peer())

    def _peer(self) -> str:
        peer = self.transport.getPeer()
        host, port = getattr(peer, "host", None), getattr(peer, "port", None)
        return f"{host}:{port}" if host is not None else str(peer)

    def _drop(self, reason, message, *args, abort=True):
        """Close at once, with one log line (at most one per reason and minute)."""
        self.factory.door_log.warning(reason, message, *args)
        self._buffer = b""  # LineOnlyReceiver's unfinished line
        if abort:
            self.transport.abortConnection()
        else:  # a whole header read: a plain close, which Asterisk takes as the end
            self.transport.loseConnection()

    def _cancel_timer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _header_timed_out(self):
        self._timer = None
        self._drop("timeout", "FastAGI: no complete AGI header from %s within %g s; closing",
                   self._peer(), self.header_timeout)

    def _timed_out(self, what):
        self._timer = None
        log.warning("FastAGI: no %s from Asterisk within %g s; closing", what,
                    self.command_timeout)
        self.transport.abortConnection()

    # -- reading -----------------------------------------------------------------------
    def lineReceived(self, raw: bytes):
        if self.request is None and not self._header_fits(raw):
            return
        line = raw.rstrip(b"\r").decode("utf-8", "replace")
        if line == "HANGUP":  # res_agi's notice that the caller hung up; never a reply
            self.hungup = True
            return
        if self.request is None:
            if line.strip():
                key, _, value = line.partition(":")
                self.env[key.strip()] = value.strip()
                return
            self._cancel_timer()
            request = AGIRequest(dict(self.env))
            if self._refused(request):
                return
            self.request = request
            self._run(request)
            return
        if self._usage is not None:  # inside a 520- ... 520 usage block
            self._usage.append(line)
            if line.startswith("520 "):
                usage, self._usage = tuple(self._usage), None
                self._reply(AGIReply(520, usage[0][4:], usage=usage))
            return
        if line.startswith("520-"):
            self._usage = [line]
            return
        if not line.strip():
            return
        self._reply(parse_reply(line))

    def _header_fits(self, raw: bytes) -> bool:
        """Count a header line; past a bound, close without keeping it."""
        self.header_lines += 1
        self.header_bytes += len(raw) + len(self.delimiter)
        if self.header_lines > self.MAX_HEADER_LINES:
            self._drop("header", "FastAGI: an AGI header of over %d lines from %s; closing",
                       self.MAX_HEADER_LINES, self._peer())
            return False
        if self.header_bytes > self.MAX_HEADER_BYTES:
            self._drop("header", "FastAGI: an AGI header of over %d bytes from %s; closing",
                       self.MAX_HEADER_BYTES, self._peer())
            return False
        return True

    def _refused(self, request: AGIRequest) -> bool:
        """Close a request without the right secret: nothing of it reaches the database."""
        given = request.secret
        if given and hmac.compare_digest(given.encode("utf-8"), self.factory.secret):
            return False
        if given is None:
            reason, why = "no secret", ("without a secret; every agi:// URL in the dialplan "
                                        "needs ?secret=${HELPDESK_AGI_SECRET} "
                                        "(dialplans/extensions.conf)")
        elif not given:
            reason, why = "empty secret", ("with an empty secret; Asterisk could not read "
                                           "[agi] secret_file: check its group and access "
                                           "(dialplans/README.md)")
        else:
            reason, why = "wrong secret", ("with a wrong secret; the dialplan must pass the "
                                           "content of [agi] secret_file")
        self._drop(reason, "FastAGI: refused a request from %s " + why, self._peer(),
                   abort=False)
        return True

    def _reply(self, reply: AGIReply):
        waiting, self._waiting = self._waiting, None
        self._cancel_timer()
        if waiting is None:
            log.warning("FastAGI: a reply nobody asked for: %s %s", reply.code, reply.text)
            return
        if reply.code == 200:
            waiting.callback(reply)
        else:
            waiting.errback(AGIError(reply))
        self._send_next()

    # -- commands ----------------------------------------------------------------------
    def command(self, line: str) -> defer.Deferred:
        """Send one AGI command; fires with its AGIReply, or fails with AGIError."""
        if self.done:
            return defer.fail(error.ConnectionDone("the AGI connection is closed"))
        d = defer.Deferred()
        self._queue.append((line, d))
        if self._waiting is None:
            self._send_next()
        return d

    def _send_next(self):
        if self._waiting is not None or not self._queue or self.done:
            return
        line, self._waiting = self._queue.popleft()
        self.sendLine(line.encode("utf-8"))
        self._timer = self.factory.clock.callLater(self.command_timeout, self._timed_out,
                                                   f"reply to {line.split(' ', 1)[0]}")

    def set_variable(self, name: str, value: str) -> defer.Deferred:
        return self.command(f"SET VARIABLE {name} {quote(value)}")

    @defer.inlineCallbacks
    def get_variable(self, name: str):
        """The variable's value, or None when it is unset or Asterisk refuses (511)."""
        try:
            reply = yield self.command(f"GET VARIABLE {name}")
        except AGIError as e:
            log.debug("FastAGI: GET VARIABLE %s refused: %s", name, e)
            return None
        return reply.data if reply.result == "1" else None

    # -- scripts -----------------------------------------------------------------------
    def _run(self, request: AGIRequest):
        handler = getattr(self, "script_" + request.script, None)
        if request.script not in SCRIPTS or handler is None:
            log.warning("FastAGI: no script %r (known: %s); check the AGI() URL in the "
                        "dialplan", request.script, ", ".join(SCRIPTS))
            self.transport.loseConnection()
            return
        d = defer.maybeDeferred(handler, request)
        d.addErrback(self._failed, request)
        d.addBoth(self._finish)

    def _failed(self, failure, request):
        if failure.check(error.ConnectionDone, error.ConnectionLost):
            log.info("FastAGI %s: Asterisk closed the connection early (%s)", request.script,
                     request.uniqueid)
        elif failure.check(AGIHangup):
            pass
        else:
            log.error("FastAGI %s for %s failed: %s", request.script, request.uniqueid,
                      failure.getTraceback())

    def _finish(self, _):
        if not self.done:
            self.transport.loseConnection()

    @defer.inlineCallbacks
    def script_incoming(self, request: AGIRequest):
        factory = self.factory
        now = utcnow(factory.clock)  # the call's start, whenever its row is written
        try:
            try:
                info = yield factory.calls.lookup(request.callerid, factory.region)
            except Exception:
                log.exception("FastAGI incoming: the caller lookup failed; the call goes to "
                              "the queue without it")
                info = None
            for name, value in variables_for(info):
                if self.hungup:  # nobody left to ring; the hangup handler closes the row
                    raise AGIHangup()
                try:
                    yield self.set_variable(name, value)
                except AGIError as e:  # one refused variable must not cost the others
                    log.warning("FastAGI incoming: SET VARIABLE %s refused: %s", name, e)
        finally:  # answered (or hung up, or cut): now the call row
            factory.file_call(request, now)

    @defer.inlineCallbacks
    def script_answered(self, request: AGIRequest):
        if request.args and request.args[0]:
            # Dial's U() gosub on the operator's channel, the caller's uniqueid as ARG1
            uniqueid, operator_channel = request.args[0], request.channel
        else:
            # Queue's AGI argument on the caller's channel
            uniqueid = request.uniqueid
            operator_channel = yield self.get_variable(MEMBER_VARIABLE)
        yield self.factory.filed(uniqueid)
        yield self.factory.run(self.factory.calls.answered, uniqueid, operator_channel,
                               utcnow(self.factory.clock))

    @defer.inlineCallbacks
    def script_hangup(self, request: AGIRequest):
        # Dead-channel AGI: GET VARIABLE still works; anything else gets 511.
        values = {}
        for name in HANGUP_READS:
            values[name] = yield self.get_variable(name)
        factory = self.factory
        yield factory.filed(request.uniqueid)  # else call_ended files it
        end = yield factory.run(
            factory.calls.ended, request.uniqueid, request.callerid, values["HELPDESK_HOURS"],
            values["QUEUESTATUS"], values["DIALSTATUS"], values["HANGUPCAUSE"],
            factory.region, factory.language, utcnow(factory.clock))
        if end.sms_id is not None and factory.on_queued is not None:
            factory.on_queued(end.sms_id)


class ThrottledLog:
    """Warnings anyone who can open the port can cause: the first of each reason at
    once, then at most one a minute, saying how many were left out."""

    interval = 60.0

    def __init__(self, clock, logger=log):
        self.clock, self.logger = clock, logger
        self._last: dict[str, float] = {}
        self._left_out: dict[str, int] = {}

    def warning(self, reason, message, *args):
        now = self.clock.seconds()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval:
            self._left_out[reason] = self._left_out.get(reason, 0) + 1
            return
        self._last[reason] = now
        left_out = self._left_out.pop(reason, 0)
        if left_out:
            message += " (and %d more like it since the last such line)"
            args += (left_out,)
        self.logger.warning(message, *args)


class FastAGIFactory(ServerFactory):
    protocol = FastAGIProtocol

    def run(self, method, *args):
        """A call of the calls store, queued behind the other AGI transactions."""
        return self.db.run(method, *args)

    def file_call(self, request: AGIRequest, now) -> defer.Deferred:
        """Write an answered lookup's call row (idempotent per uniqueid); `filed` waits
        for it. A failure is logged: the hangup handler files the call then."""
        uniqueid = request.uniqueid
        d = defer.maybeDeferred(self.run, self.calls.incoming, uniqueid, request.callerid,
                                self.region, now)

        def failed(failure):
            log.error("FastAGI incoming: filing call %s failed; the hangup handler files "
                      "it: %s", uniqueid, failure.getTraceback())
        d.addErrback(failed)
        if uniqueid:
            self._filing[uniqueid] = d

            def forget(result):  # at once, where the write ran on this thread (tests)
                if self._filing.get(uniqueid) is d:
                    del self._filing[uniqueid]
                return result
            d.addBoth(forget)
        return d

    def filed(self, uniqueid: str) -> defer.Deferred:
        """Fires once the channel's call row is written (or its write has failed)."""
        pending = self._filing.get(uniqueid)
        if pending is None:
            return defer.succeed(None)
        done = defer.Deferred()

        def fire(result):
            done.callback(None)
            return result
        pending.addBoth(fire)
        return done

    def __init__(self, calls_store, region="ID", language="id", clock=None, on_queued=None,
                 db_concurrency=4, *, secret: bytes):
        if clock is None:
            from twisted.internet import reactor as clock
        if not secret:  # an empty secret would let an empty ?secret= through
            raise ValueError("the FastAGI secret must not be empty")
        self.secret = secret  # what the dialplan passes as ?secret= (bytes)
        # calls_store: the daemon's db.calls (lookup, incoming, answered, ended), Deferreds
        self.calls, self.region, self.language = calls_store, region, language
        # At most this many AGI transactions in the DB pool at once (its size), so a
        # flood of calls queues here on the reactor instead of in front of the SMS
        # pipeline's work; bench/agi_bench.py compares settings (AGI_DB_CONCURRENCY).
        self.db = defer.DeferredSemaphore(db_concurrency)
        self.clock = clock
        self.on_queued = on_queued  # called with a queued SMS id (wakes the outbox)
        self.door_log = ThrottledLog(clock)
        self._filing: dict[str, defer.Deferred] = {}  # uniqueid -> its call row's write


def agi_factory(config, calls_store, reactor, on_queued=None) -> FastAGIFactory:
    """The FastAGI server's factory, for config.agi_listen (gateway.daemon.voice_process
    serves it in a process of its own); raises secret.MissingSecret (a
    FileNotFoundError) before `helpdesk init` made the secret."""
    return FastAGIFactory(calls_store, config.country, config.language, reactor, on_queued,
                          secret=read_secret(config.agi_secret_file, "FastAGI secret"))
