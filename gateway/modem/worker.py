"""One GSM modem, driven through python-gammu on a thread of its own.

python-gammu's StateMachine is not thread-safe and its calls block (for minutes when a
modem hangs), so every call for a modem runs on that modem's thread, fed by a queue, and
the reactor gets a Deferred back. Everything handed back is plain data.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import queue
import tempfile
import threading
import time

import gammu
from twisted.application import service
from twisted.internet import defer

from gateway.modem.translate import (
    LINK_ERRORS,
    MAYBE_SENT_ERRORS,
    ModemHung,
    ModemUnavailable,
    PartialSend,
    Unencodable,
    error_text,
    raw_part,
    unreadable_location,
)
from gateway.sms.encoding import encode

log = logging.getLogger(__name__)

READ_BATCH = 100  # parts read per poll; the poller comes back at once while more remain
# A modem that stops answering blocks a Gammu call for 20 s to several minutes. Past this,
# the watchdog aborts the call; an aborted StateMachine is then replaced, as Abort sticks.
CALL_TIMEOUT = 30.0
INIT_TIMEOUT = 60.0  # Init on a real serial modem takes about 4 s; it gets more room
STOP_TIMEOUT = 3.0   # a stop waits this long for a hung modem's thread, then leaves it
# While idle, a modem that announces texts (+CMTI, +CDS) is read this often (ReadDevice on
# its own thread), so the incoming callback fires there and the poller is woken at once.
IDLE_READ = 0.02
USSD_TIMEOUT = 20.0  # seconds the network gets to answer a USSD code (*888#)


class NoUssdAnswer(Exception):
    """The network did not answer a USSD code in time."""


_DEFAULTS_FILE = None


def _gammu_defaults() -> str:
    """A minimal gammurc: python-gammu's SetConfig leaves libGammu's CNMI parameters at 0
    (GSM_ReadConfig sets them to -1, "the modem's best"), and with 0 the AT driver refuses
    SetIncomingSMS on every modem; ReadConfig of this file first sets the defaults."""
    global _DEFAULTS_FILE
    if _DEFAULTS_FILE is None or not os.path.exists(_DEFAULTS_FILE):
        fd, path = tempfile.mkstemp(prefix="helpdesk-gammurc-")
        with os.fdopen(fd, "w") as f:
            f.write("[gammu]\nconnection = at\n")
        _DEFAULTS_FILE = path
    return _DEFAULTS_FILE


class ModemWorker(service.Service):
    """Owns one StateMachine on one thread; every public method returns a Deferred."""

    def __init__(self, config, reactor, *, threaded=True, reconnect_delay=(1.0, 60.0),
                 call_timeout=CALL_TIMEOUT):
        self.config = config
        self.name = config.name
        self.reactor = reactor
        self.threaded = threaded
        self.machine = None
        self.connected = False
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._delay_min, self._delay_max = reconnect_delay
        self._delay = self._delay_min
        self.call_timeout = call_timeout
        self._queue: queue.Queue = queue.Queue()
        self._thread = None
        self._busy = False
        self._closing = None  # a thread terminating a hung StateMachine
        self._stopped = None  # fires when the thread has ended, after a stop
        # Texts received, sent and failed since the health monitor last wrote them down;
        # kept here (reactor thread only) so no hot transaction contends for the modem row.
        self.counts = collections.Counter()
        # Announcements: whether the connected modem announces new texts (AT+CNMI took),
        # the reactor-side callables woken by one, and how many came.
        self.announcing = False
        self.on_announce: list = []
        self.announced = 0
        self._reports: dict[int, dict] = {}  # +CDS reports given whole, not on the SIM
        self._next_report = -1               # their pseudo-locations: -1, -2, ...
        self._ussd: list[dict] = []          # USSD answers (modem thread only)

    # -- service ----------------------------------------------------------------------
    def startService(self):
        super().startService()
        if self.threaded:
            self._thread = threading.Thread(target=self._loop, name=f"modem-{self.name}",
                                            daemon=True)
            self._thread.start()

    def stopService(self):
        """Fires once the modem's thread has closed its StateMachine, or after
        STOP_TIMEOUT when the modem hangs; the reactor is never blocked meanwhile."""
        super().stopService()
        if self._thread is None:
            return None
        stopped = self._stopped = defer.Deferred()
        self._queue.put(None)
        # A hung modem must not wedge shutdown: abort its call; if the thread is still
        # stuck after the timeout, leave it behind (a daemon thread: the process exits).
        machine = self.machine
        if machine is not None and self._busy:
            machine.Abort()

        def give_up():
            if not stopped.called:
                log.warning("modem %s did not stop within %.0f s; leaving its thread",
                            self.name, STOP_TIMEOUT)
                stopped.callback(None)
        timer = self.reactor.callLater(STOP_TIMEOUT, give_up)

        def cancel_timer(result):
            if timer.active():
                timer.cancel()
            return result
        return stopped.addBoth(cancel_timer)

    # -- the queue ---------------------------------------------------------------------
    def _call(self, fn, *args):
        if not self.threaded:
            return defer.maybeDeferred(self._guarded, fn, *args)
        if self._thread is None or not self.running:
            return defer.fail(ModemUnavailable(f"modem {self.name} is not running"))
        d = defer.Deferred()
        self._queue.put((d, fn, args))
        return d

    def _loop(self):
        while True:
            try:
                item = self._queue.get(
                    timeout=IDLE_READ if self.machine is not None and self.announcing else None)
            except queue.Empty:
                self._read_device()
                continue
            if item is None:
                self._refuse_rest()
                self._disconnect()  # the thread that owns the StateMachine closes it
                self.reactor.callFromThread(self._thread_ended)
                return
            d, fn, args = item
            try:
                result = self._guarded(fn, *args)
            except BaseException as e:  # handed to the reactor, never lost on this thread
                self.reactor.callFromThread(d.errback, e)
            else:
                self.reactor.callFromThread(d.callback, result)

    def _read_device(self):
        """Let libGammu read what the modem said unasked (+CMTI, +CDS, +CUSD): the
        incoming callback runs here, on the modem's thread."""
        machine = self.machine
        if machine is None:
            return
        try:
            machine.ReadDevice(False)  # does not wait: reads what the line already holds
        except gammu.GSMError as e:
            if isinstance(e, LINK_ERRORS):
                self._lost(e, hung=isinstance(e, MAYBE_SENT_ERRORS))

    def _incoming(self, _machine, kind, data):
        """libGammu's incoming callback (modem thread): note what came, wake the reactor."""
        if kind == "SMS":
            if isinstance(data, dict) and data.get("Type") == "Status_Report" \
                    and not data.get("Location"):
                # +CDS: the report itself, stored nowhere; kept until its row is committed.
                self._reports[self._next_report] = dict(data, Location=self._next_report)
                self._next_report -= 1
            if self.threaded:
                self.reactor.callFromThread(self._announce)
            else:  # unthreaded (tests): this is the reactor's thread already
                self._announce()
        elif kind == "USSD":
            self._ussd.append(data if isinstance(data, dict) else {"Text": str(data)})

    def _announce(self):
        self.announced += 1
        for wake in list(self.on_announce):
            try:
                wake()
            except Exception:
                log.exception("modem %s: waking on an announcement failed", self.name)

    def _listen(self, machine):
        """Ask the modem to announce texts and reports (AT+CNMI) and USSD answers; a
        modem (or driver) that cannot is polled as before."""
        self.announcing = False
        machine.SetIncomingCallback(self._incoming)
        gammu_config = self.config.gammu
        if str(gammu_config.get("Model", "")).lower() == "dummy" \
                or str(gammu_config.get("Connection", "")).lower() == "none":
            return  # the dummy driver announces nothing: polled as before
        try:
            machine.SetIncomingSMS(True)
            self.announcing = True
        except gammu.GSMError as e:
            if isinstance(e, LINK_ERRORS):
                raise
            log.info("modem %s does not announce texts (%s); polled every %s s",
                     self.name, error_text(e), "sms.poll_interval")
        try:
            machine.SetIncomingUSSD(True)
        except gammu.GSMError as e:
            if isinstance(e, LINK_ERRORS):
                raise

    def _thread_ended(self):
        if self._stopped is not None and not self._stopped.called:
            self._stopped.callback(None)

    def _refuse_rest(self):
        """Calls queued behind the stop get an answer rather than waiting forever."""
        while True:
            try:
                d, _fn, _args = self._queue.get_nowait()
            except (queue.Empty, TypeError):
                return
            self.reactor.callFromThread(
                d.errback, ModemUnavailable(f"modem {self.name} is stopping"))

    def _guarded(self, fn, *args):
        machine = self._connect()
        aborted = []
        try:
            with self._watchdog(machine, self.call_timeout, aborted):
                return fn(machine, *args)
        except gammu.GSMError as e:
            if self._stopped is not None and isinstance(e, gammu.ERR_ABORTED):
                self._lost(e, hung=True)  # aborted by the stop: whatever it was may be done
                raise ModemHung(f"modem {self.name} was stopped in the middle of a call") from e
            if aborted:
                # Gammu reports an aborted call as whatever step it was in (even
                # ERR_EMPTYSMSC); the truth is that the modem stopped answering.
                self._lost(ModemHung(f"modem {self.name} stopped answering: "
                                     f"{error_text(e)}"), hung=True)
                raise ModemHung(self.last_error) from e
            if isinstance(e, LINK_ERRORS):
                self._lost(e, hung=isinstance(e, MAYBE_SENT_ERRORS))
            raise

    def _lost(self, error, hung):
        self.last_error = error_text(error)
        log.warning("modem %s lost: %s", self.name, self.last_error)
        self._disconnect(hung=hung)
        self._retry_at = time.monotonic() + self._delay

    @contextlib.contextmanager
    def _watchdog(self, machine, timeout, aborted=None):
        """Abort the Gammu call inside this block if it takes longer than `timeout`
        (noted in `aborted`, since an abort surfaces as many different errors)."""
        def abort():
            log.warning("modem %s did not answer within %.0f s; aborting", self.name, timeout)
            if aborted is not None:
                aborted.append(True)
            machine.Abort()  # safe from another thread; the call raises ERR_ABORTED
        timer = threading.Timer(timeout, abort)
        timer.daemon = True
        self._busy = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            self._busy = False

    def _connect(self):
        if self.machine is not None:
            return self.machine
        if time.monotonic() < self._retry_at:
            raise ModemUnavailable(f"modem {self.name} is down: {self.last_error}")
        if self._closing is not None:
            # The old connection must be gone before a new one talks to the same device,
            # or their AT commands interleave.
            self._closing.join(timeout=INIT_TIMEOUT)
            if self._closing.is_alive():
                raise ModemUnavailable(f"modem {self.name} is still closing its last "
                                       "connection")
            self._closing = None
        machine = gammu.StateMachine()
        try:
            try:
                machine.ReadConfig(0, 0, _gammu_defaults())
            except (gammu.GSMError, OSError):
                pass  # only the CNMI defaults are lost: the modem is polled
            machine.SetConfig(0, dict(self.config.gammu))
            with self._watchdog(machine, max(self.call_timeout, INIT_TIMEOUT)):
                machine.Init()
                self._listen(machine)
        except gammu.GSMError as e:
            # Close the half-made connection off this thread: left to the garbage
            # collector it would talk to the dead modem for minutes on whatever thread
            # frees it, the reactor's included.
            self._terminate_aside(machine)
            self.connected = False
            self.last_error = error_text(e)
            self._retry_at = time.monotonic() + self._delay
            log.warning("modem %s: cannot connect (%s); next try in %.0f s",
                        self.name, self.last_error, self._delay)
            self._delay = min(self._delay * 2, self._delay_max)  # backoff, never a tight loop
            raise ModemUnavailable(f"modem {self.name} is down: {self.last_error}") from e
        log.info("modem %s connected", self.name)
        self.machine, self.connected, self.last_error = machine, True, None
        self._delay = self._delay_min
        return machine

    def _disconnect(self, hung: bool = False):
        machine, self.machine, self.connected = self.machine, None, False
        self.announcing = False
        if machine is None:
            return
        if hung:
            # Terminate talks to the modem (AT+CNMI and the like) and would block this
            # thread for minutes on a modem that stopped answering: let it run out on a
            # thread of its own while this one goes on with a new StateMachine.
            self._terminate_aside(machine)
        else:
            _terminate(machine)

    def _terminate_aside(self, machine):
        self._closing = threading.Thread(target=_terminate, args=(machine,), daemon=True,
                                         name=f"modem-{self.name}-terminate")
        self._closing.start()

    # -- what the daemon asks of a modem -------------------------------------------------
    def read_inbox(self, limit: int = READ_BATCH):
        """Up to `limit` parts from every SMS folder: (parts, more_remain)."""
        return self._call(self._read_inbox, limit)

    def delete(self, locations: list[int]):
        return self._call(self._delete, locations)

    def balance(self, code: str, timeout: float = USSD_TIMEOUT):
        """Dial the USSD `code` (e.g. "*888#"); fires with the network's answer as text."""
        return self._call(self._dial_ussd, code, timeout)

    # -- on the modem's thread -----------------------------------------------------------
    def _read_inbox(self, machine, limit):
        parts, more = _read_inbox(machine, limit)
        # Reports announced whole (+CDS) join the batch under negative pseudo-locations.
        parts.extend(raw_part(sms) for sms in self._reports.values())
        return parts, more

    def _delete(self, machine, locations):
        on_sim = [location for location in locations if location > 0]
        for location in locations:
            if location < 0:
                self._reports.pop(location, None)
        return _delete(machine, on_sim) + (len(locations) - len(on_sim))

    def _dial_ussd(self, machine, code, timeout):
        self._ussd.clear()
        machine.DialService(code)
        deadline = time.monotonic() + timeout
        while not self._ussd:
            if time.monotonic() >= deadline:
                raise NoUssdAnswer(f"modem {self.name}: no answer to {code} within "
                                   f"{timeout:.0f} s")
            machine.ReadDevice(False)
            if not self._ussd:
                time.sleep(0.02)
        return str(self._ussd.pop(0).get("Text") or "")

    def send(self, number: str, text: str, status_report: bool = False):
        """Send one text (split and encoded by Gammu); the message references of its parts."""
        return self._call(_send, number, text, status_report)

    def status(self):
        return self._call(_status)


def _terminate(machine):
    try:
        machine.Terminate()
    except gammu.GSMError:
        pass


def _read_inbox(machine, limit):
    parts, start, location = [], True, None
    while len(parts) < limit:
        try:
            if start:
                entries = machine.GetNextSMS(Start=True, Folder=0)
                start = False
            else:
                entries = machine.GetNextSMS(Location=location, Folder=0)
        except gammu.ERR_EMPTY:
            return parts, False
        except LINK_ERRORS:
            raise
        except gammu.GSMError as e:
            # One record Gammu cannot read (a corrupt PDU: ERR_CORRUPTED) ends GetNextSMS
            # for every text behind it, poll after poll: look at each location instead.
            log.warning("reading the SIM stopped after location %s (%s); reading each "
                        "location on its own", location, error_text(e))
            return _read_each_location(machine, limit, parts, after=location or 0)
        location = entries[0]["Location"]
        _add_inbox_parts(parts, entries)
    return parts, True


def _read_each_location(machine, limit, parts, after):
    """The SIM read location by location past `after`; a location Gammu cannot read is
    noted as an unreadable part (stored for a person, then deleted like any other)."""
    status = machine.GetSMSStatus()
    size = (status.get("SIMSize") or 0) + (status.get("PhoneSize") or 0)
    for location in range(after + 1, size + 1):
        if len(parts) >= limit:
            return parts, True
        try:
            entries = machine.GetSMS(Folder=0, Location=location)
        except (gammu.ERR_EMPTY, gammu.ERR_INVALIDLOCATION):
            continue
        except LINK_ERRORS:
            raise
        except gammu.GSMError as e:
            parts.append(unreadable_location(location, e))
            continue
        _add_inbox_parts(parts, entries)
    return parts, False


def _add_inbox_parts(parts, entries):
    for sms in entries:
        # Sent items or drafts kept on the SIM are not customer texts. The AT driver
        # gives InboxFolder as 0/1, the dummy driver as a bool.
        if sms.get("InboxFolder", True):
            parts.append(raw_part(sms))


def _delete(machine, locations):
    deleted = 0
    for location in locations:
        try:
            machine.DeleteSMS(Folder=0, Location=location)
            deleted += 1
        except (gammu.ERR_EMPTY, gammu.ERR_INVALIDLOCATION):
            pass  # already gone (deleted before a crash): nothing to do
    return deleted


def _send(machine, number, text, status_report=False):
    try:
        parts = encode(text)
    except Exception as e:  # before any part left: it is certainly not sent
        raise Unencodable(f"the text cannot be encoded as SMS: {type(e).__name__}: {e}") from e
    references = []
    for part in parts:
        part["SMSC"] = {"Location": 1}
        part["Number"] = number
        if status_report:
            part["Type"] = "Status_Report"  # python-gammu's way to set TP-SRR
        try:
            references.append(machine.SendSMS(part))
        except gammu.GSMError as e:
            if references:
                raise PartialSend(len(references), len(parts), e) from e
            raise
    return references


def _status(machine):
    """Signal, battery, network, operator and IMEI; each read on its own, best effort."""
    readings = {}
    for keys, read in ((("signal_percent",), lambda: [machine.GetSignalQuality()["SignalPercent"]]),
                       (("battery_percent",),
                        lambda: [machine.GetBatteryCharge()["BatteryPercent"]]),
                       (("network", "operator"), lambda: _network(machine.GetNetworkInfo())),
                       (("imei",), lambda: [machine.GetIMEI()]),
                       (("sim_used", "sim_size"), lambda: _storage(machine.GetSMSStatus()))):
        try:
            values = read()
        except LINK_ERRORS:
            raise
        except gammu.GSMError:
            values = [None] * len(keys)
        readings.update(zip(keys, values))
    return readings


def _storage(status: dict) -> list:
    return [status.get("SIMUsed"), status.get("SIMSize")]


def _network(info: dict) -> list:
    return [info.get("State"), info.get("NetworkName")]
