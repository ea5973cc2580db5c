"""Asterisk Manager Interface (AMI) client for click-to-call, on Twisted.

Why our own protocol and not pyst2's `asterisk.manager` (0.5.1): on Python 3.11 its
reader thread dies on the first event carrying ChanVariable headers (it calls
`dict.has_key`), it cuts multi-line `Output:` answers to their first line, and it
matches responses to actions by arrival order rather than by ActionID, so one slow or
lost response shifts every answer after it onto the wrong action. It is also a blocking
socket thread, where the daemon wants everything on its reactor. This client is a
line protocol: messages are `Key: Value` lines ended by a blank line; every action we
send carries a fresh ActionID and its response (and, for an asynchronous Originate, the
later `OriginateResponse` event) is found by that ActionID; repeated keys are kept.

The factory reconnects with backoff whenever Asterisk restarts or the link drops, and
pings every 30 s so a half-open connection is noticed.
"""
from __future__ import annotations

import itertools
import logging
import uuid

from twisted.application import internet
from twisted.internet import defer, error
from twisted.internet.protocol import ReconnectingClientFactory
from twisted.protocols.basic import LineOnlyReceiver

from gateway.db.models import utcnow
from gateway.desk.calls import CallFailed

log = logging.getLogger(__name__)

# OriginateResponse's Reason: the outcome of ringing the operator's softphone
# (AST_CONTROL_* values in Asterisk's frame.h).
ORIGINATE_REASONS = {0: "operator_failed", 1: "operator_hungup", 3: "operator_no_answer",
                     4: "answered", 5: "operator_busy", 8: "operator_congestion"}


class AMIError(CallFailed):
    """Asterisk answered an action with Response: Error, or the link is not up."""


class AMIMessage:
    """One AMI message: ordered `Key: Value` pairs; keys repeat (Output, ChanVariable)."""

    def __init__(self, headers):
        self.headers = list(headers)

    def get(self, key, default=None):
        key = key.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return default

    def getall(self, key):
        key = key.lower()
        return [v for k, v in self.headers if k.lower() == key]

    def __contains__(self, key):
        return self.get(key) is not None

    def __repr__(self):
        return f"AMIMessage({self.headers!r})"


def _clean(value) -> str:
    # A CR or LF in a value would let it end the header and inject another.
    return " ".join(str(value).splitlines())


def encode_action(action: str, action_id: str, fields) -> bytes:
    """An action as AMI bytes; a list value becomes one header line per item."""
    lines = [f"Action: {_clean(action)}", f"ActionID: {action_id}"]
    for key, value in fields:
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if item is not None:
                lines.append(f"{key}: {_clean(item)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class AMIProtocol(LineOnlyReceiver):
    delimiter = b"\r\n"
    MAX_LENGTH = 65536
    action_timeout = 10.0
    ping_interval = 30.0

    def __init__(self):
        self.banner = None
        self.logged_in = False
        self._lines: list[tuple[str, str]] = []
        self._responses: dict[str, tuple[defer.Deferred, object]] = {}
        self._events: dict[str, defer.Deferred] = {}  # ActionID -> awaited event
        self._ids = itertools.count(1)
        self._prefix = uuid.uuid4().hex[:8]
        self._ping = None

    # -- connection --------------------------------------------------------------------
    def connectionMade(self):
        log.info("AMI: connected to %s", self.transport.getPeer())

    def connectionLost(self, reason=error.ConnectionDone()):
        self.logged_in = False
        if self._ping is not None and self._ping.active():
            self._ping.cancel()
        self._ping = None
        pending = [d for d, timer in self._responses.values()] + list(self._events.values())
        for _, timer in self._responses.values():
            if timer.active():
                timer.cancel()
        self._responses.clear()
        self._events.clear()
        for d in pending:
            d.errback(AMIError(f"the link to Asterisk's manager dropped: "
                               f"{reason.getErrorMessage()}"))
        self.factory.lost(self)

    def lineReceived(self, raw: bytes):
        line = raw.decode("utf-8", "replace")
        if self.banner is None:
            self.banner = line  # "Asterisk Call Manager/9.0.0"
            self._login().addErrback(self._login_failed)
            return
        if line == "":
            if self._lines:
                message, self._lines = AMIMessage(self._lines), []
                self._dispatch(message)
            return
        key, sep, value = line.partition(":")
        if sep:
            self._lines.append((key.strip(), value[1:] if value.startswith(" ") else value))
        else:  # a bare line inside an old-style 'Response: Follows' body
            self._lines.append(("Output", line))

    def _dispatch(self, message: AMIMessage):
        action_id = message.get("ActionID")
        if "Response" in message and action_id in self._responses:
            d, timer = self._responses.pop(action_id)
            if timer.active():
                timer.cancel()
            if message.get("Response", "").lower() == "error":
                d.errback(AMIError(message.get("Message", "the action failed")))
            else:
                d.callback(message)
            return
        if "Event" in message and action_id in self._events:
            self._events.pop(action_id).callback(message)
            return
        self.factory.event(message)

    # -- actions -----------------------------------------------------------------------
    def send_action(self, action: str, fields=(), timeout=None) -> defer.Deferred:
        """Send an action; fires with its response (matched by ActionID) or AMIError."""
        action_id = f"helpdesk-{self._prefix}-{next(self._ids)}"
        d = defer.Deferred()
        timer = self.factory.clock.callLater(timeout or self.action_timeout,
                                             self._no_response, action_id, action)
        self._responses[action_id] = (d, timer)
        d.action_id = action_id
        self.transport.write(encode_action(action, action_id, fields))
        return d

    def _no_response(self, action_id, action):
        entry = self._responses.pop(action_id, None)
        if entry is not None:
            entry[0].errback(AMIError(f"Asterisk did not answer {action} in time"))
        log.warning("AMI: no answer to %s; dropping the link to reconnect", action)
        self.transport.abortConnection()

    def await_event(self, action_id: str) -> defer.Deferred:
        d = defer.Deferred()
        self._events[action_id] = d
        return d

    @defer.inlineCallbacks
    def _login(self):
        cfg = self.factory.settings
        try:
            # Events: call is the one class we read (OriginateResponse); manager.conf's
            # read = call grants no more.
            yield self.send_action("Login", [("Username", cfg["username"]),
                                             ("Secret", cfg["secret"]), ("Events", "call")])
        except AMIError as e:
            log.error("AMI: login as %r refused by Asterisk: %s; check [ami] username and "
                      "secret in the helpdesk configuration and manager.conf",
                      cfg["username"], e)
            self.transport.loseConnection()
            return
        self.logged_in = True
        self.factory.resetDelay()
        self.factory.ready(self)
        self._ping = self.factory.clock.callLater(self.ping_interval, self._keepalive)

    def _login_failed(self, failure):
        log.error("AMI: login failed: %s", failure.getTraceback())
        self.transport.loseConnection()

    def _keepalive(self):
        self._ping = None
        d = self.send_action("Ping")
        d.addErrback(lambda f: None)  # a missing answer already drops the link

        def again(_):
            if self.logged_in:
                self._ping = self.factory.clock.callLater(self.ping_interval, self._keepalive)
        d.addCallback(again)

    def originate(self, channel, context, exten, priority=1, caller_id=None,
                  timeout_ms=30000, channel_id=None, variables=None):
        """Async Originate; returns (queued Deferred, OriginateResponse-event Deferred)."""
        fields = [("Channel", channel), ("Context", context), ("Exten", exten),
                  ("Priority", priority), ("Timeout", timeout_ms), ("CallerID", caller_id),
                  ("Async", "true"), ("ChannelId", channel_id),
                  ("Variable", [f"{k}={v}" for k, v in (variables or {}).items()])]
        queued = self.send_action("Originate", fields)
        outcome = self.await_event(queued.action_id)

        def refused(failure):
            self._events.pop(queued.action_id, None)
            return failure
        queued.addErrback(refused)
        return queued, outcome


class AMIClientFactory(ReconnectingClientFactory):
    """Keeps one logged-in AMI connection, reconnecting when Asterisk restarts."""

    protocol = AMIProtocol
    maxDelay = 30
    initialDelay = 1.0

    def __init__(self, settings: dict, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.settings = settings
        self.clock = clock
        self.connection: AMIProtocol | None = None
        self.listeners = []

    def buildProtocol(self, addr):
        p = self.protocol()
        p.factory = self
        return p

    def ready(self, protocol):
        self.connection = protocol
        log.info("AMI: logged in as %r", self.settings["username"])

    def lost(self, protocol):
        if self.connection is protocol:
            self.connection = None

    def event(self, message):
        for listener in self.listeners:
            listener(message)

    def clientConnectionLost(self, connector, reason):
        log.warning("AMI: lost the link to Asterisk (%s); reconnecting",
                    reason.getErrorMessage())
        super().clientConnectionLost(connector, reason)

    def clientConnectionFailed(self, connector, reason):
        log.warning("AMI: cannot reach Asterisk's manager at %s:%s (%s); retrying",
                    self.settings.get("host"), self.settings.get("port"),
                    reason.getErrorMessage())
        super().clientConnectionFailed(connector, reason)

    def require(self) -> AMIProtocol:
        if self.connection is None or not self.connection.logged_in:
            raise AMIError("not connected to Asterisk's manager (AMI); is Asterisk running "
                           "and [ami] configured?")
        return self.connection


class ClickToCall:
    """An operator clicks a number: ring their softphone, then dial the customer."""

    context = "helpdesk-outgoing"
    ring_operator_ms = 30000

    def __init__(self, calls_store, ami: AMIClientFactory, region="ID", clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        # calls_store: the daemon's db.calls (click_to_call, originate_failed), Deferreds
        self.calls, self.ami, self.region, self.clock = calls_store, ami, region, clock

    @defer.inlineCallbacks
    def call(self, user_id: int, number: str):
        """Fires with the call id once Asterisk has queued the call; AMIError/ValueError."""
        connection = self.ami.require()
        uniqueid = f"helpdesk-{uuid.uuid4().hex}"
        plan = yield self.calls.click_to_call(user_id, number, self.region, uniqueid,
                                              utcnow(self.clock))
        queued, outcome = connection.originate(
            plan.operator_dial, self.context, plan.number, caller_id=plan.caller_id,
            timeout_ms=self.ring_operator_ms, channel_id=uniqueid,
            variables={"HELPDESK_CALL": plan.call_id})
        outcome.addCallbacks(self._outcome, self._lost, callbackArgs=(plan.call_id,),
                             errbackArgs=(plan.call_id,))
        outcome.addErrback(self._not_recorded, plan.call_id)
        try:
            yield queued
        except AMIError as e:
            yield self.calls.originate_failed(plan.call_id, "failed", utcnow(self.clock))
            raise AMIError(f"Asterisk refused the call: {e}") from None
        return plan.call_id

    def _outcome(self, event, call_id):
        if event.get("Response", "").lower() == "success":
            return None  # the dialplan's hangup handler closes the row
        try:
            reason = ORIGINATE_REASONS.get(int(event.get("Reason", "0")), "operator_failed")
        except ValueError:
            reason = "operator_failed"
        log.info("click-to-call %s: the operator's phone did not take it (%s)", call_id,
                 reason)
        return self.calls.originate_failed(call_id, reason, utcnow(self.clock))

    def _not_recorded(self, failure, call_id):
        log.error("click-to-call %s: could not record the outcome: %s", call_id,
                  failure.getTraceback())

    def _lost(self, failure, call_id):
        log.warning("click-to-call %s: outcome unknown: %s", call_id, failure.getErrorMessage())


def ami_service(config, calls_store, reactor):
    """(service, ClickToCall) for the daemon, or (None, None) without an [ami] section."""
    if not config.ami:
        return None, None
    factory = AMIClientFactory(config.ami, reactor)
    service = AMIService(config.ami["host"], int(config.ami["port"]), factory,
                         reactor=reactor)
    service.setName("ami")
    return service, ClickToCall(calls_store, factory, config.country, reactor)


class AMIService(internet.TCPClient):
    """The AMI connection as a daemon service; stopping it stops the reconnecting too."""

    def stopService(self):
        self.args[2].stopTrying()
        return super().stopService()
