"""A GSM modem of our own for tests: a pseudo-terminal that answers Gammu's AT driver.

Gammu runs against it with connection = "at" and device = the simulator's `device`, so
tests exercise libGammu's real AT code path (PDU mode), not the dummy driver. The
simulator holds a SIM with a capacity, can deliver texts and status reports, records
every PDU that left through AT+CMGS, logs every AT exchange, and can be told to
misbehave (stop answering, answer ERROR / +CMS ERROR, be unplugged, start full).

Announcements as a modem makes them: once the host sets AT+CNMI=<mode>,1 a text
delivered is announced with +CMTI: "SM",<n> (`announces=False`: a modem that refuses
AT+CNMI and announces nothing; `drop_announcements = n`: the next n are lost on the
line). AT+CUSD=1,"<code>" is answered with +CUSD: 0,"<ussd_answer>",15 (None: never).

`device` is a symlink the simulator owns; `unplug()`/`replug()` make a new pseudo-
terminal (its /dev/pts number may change) and repoint the symlink, so a reconnecting
StateMachine opens the new one with the same configuration.

With connection = "at" Gammu's Init takes about 4 s on a pty; `gammu_config("proxyat")`
has Gammu talk to the pty through a relay (socat, or this file run as a script) and Init
takes well under a second. Both reach the same AT handler.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import select
import shutil
import sys
import tempfile
import termios
import threading
import time
import tty
from dataclasses import dataclass

import gammu

SMSC = "+62816124"
CTRL_Z, ESC = b"\x1a", b"\x1b"

# Message status codes of AT+CMGL / AT+CMGR in PDU mode (3GPP TS 27.005 3.1).
REC_UNREAD, REC_READ, STO_UNSENT, STO_SENT = 0, 1, 2, 3


class SimFull(Exception):
    """The SIM has no free location."""


@dataclass
class Stored:
    """One SIM location: AT status code and the PDU as hex, SMSC included."""
    status: int
    pdu: str
    text: str = ""
    sender: str = ""

    @property
    def tpdu_length(self) -> int:
        smsc_octets = int(self.pdu[:2], 16)
        return len(self.pdu) // 2 - 1 - smsc_octets


@dataclass
class Failure:
    """A scripted answer to the next commands that start with `prefix`."""
    prefix: str
    reply: str
    times: int = 1


# -- PDU building ------------------------------------------------------------------------

def _semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, len(digits), 2))


def _address(number: str) -> bytes:
    """TP address: digit count, type of number, swapped BCD digits."""
    international = number.startswith("+")
    digits = number.lstrip("+")
    return bytes([len(digits), 0x91 if international else 0x81]) + _semi_octets(digits)


def _smsc(number: str) -> bytes:
    body = bytes([0x91]) + _semi_octets(number.lstrip("+"))
    return bytes([len(body)]) + body


def _timestamp(when: dt.datetime) -> bytes:
    when = when.astimezone(dt.UTC) if when.tzinfo else when
    digits = when.strftime("%y%m%d%H%M%S") + "00"  # time zone +00
    return _semi_octets(digits)


def deliver_pdus(sender: str, text: str, when: dt.datetime | None = None,
                 smsc: str = SMSC) -> list[str]:
    """`text` from `sender` as SMS-DELIVER PDUs (hex, SMSC included), as a network sends them.

    libGammu splits and encodes (GSM-7 where it fits, else UCS-2, with concatenation UDH);
    its "Deliver" layout leaves the message type bits of the first octet as for a submit,
    so they are set here to SMS-DELIVER (00) with "no more messages" (TP-MMS).
    """
    when = when or dt.datetime.now(dt.UTC)
    parts = gammu.EncodeSMS({"Class": -1, "Entries": [{"ID": "ConcatenatedAutoTextLong",
                                                       "Buffer": text}]})
    pdus = []
    for part in parts:
        part.update(Number=sender, DateTime=when,
                    SMSC={"Number": smsc, "Location": 0, "Validity": "NA", "Format": "Text"})
        pdu = bytearray(gammu.EncodePDU(part, "Deliver"))
        first = pdu[0] + 1
        pdu[first] = (pdu[first] & ~0x03) | 0x04
        pdus.append(bytes(pdu).hex().upper())
    return pdus


def status_report_pdu(reference: int, number: str, delivered: bool = True,
                      when: dt.datetime | None = None, smsc: str = SMSC) -> str:
    """An SMS-STATUS-REPORT (hex, SMSC included) for the message with TP-MR `reference`."""
    when = when or dt.datetime.now(dt.UTC)
    status = 0x00 if delivered else 0x41  # 0x41: permanent error, incompatible destination
    tpdu = (bytes([0x06, reference & 0xFF]) + _address(number) + _timestamp(when)
            + _timestamp(when) + bytes([status]))
    return (_smsc(smsc) + tpdu).hex().upper()


def decode_pdu(pdu_hex: str) -> dict:
    """One PDU as hex (SMSC included) -> python-gammu's SMS dict."""
    return gammu.DecodePDU(bytes.fromhex(pdu_hex), True)


def status_report_requested(pdu_hex: str) -> bool:
    """Whether an SMS-SUBMIT (hex, SMSC included) asks for a status report (TP-SRR)."""
    first = int(pdu_hex[:2], 16) + 1
    return bool(int(pdu_hex[2 * first:2 * first + 2], 16) & 0x20)


def link_texts(messages: list[dict]) -> list[str]:
    """Decoded parts -> the whole texts, linked by their concatenation UDH."""
    linked = gammu.LinkSMS([[m] for m in messages])
    texts = []
    for group in linked:
        decoded = gammu.DecodeSMS(group)
        if decoded is None:
            texts.append("".join(m["Text"] for m in group))
        else:
            texts.append("".join(e["Buffer"] or "" for e in decoded["Entries"]))
    return texts


# -- the modem -------------------------------------------------------------------------

class ModemSimulator:
    """A GSM modem on a pseudo-terminal, answering AT commands in PDU mode."""

    manufacturer = "SIMCOM"
    model = "SIM800 Simulator"
    revision = "Revision:1418B04SIM800L24"
    imei = "356938035643809"
    operator = "51010"  # MCC/MNC of Telkomsel

    def __init__(self, *, capacity: int = 30, sim_full: bool = False, link: str | None = None,
                 smsc: str = SMSC, signal: int = 20, battery: int = 80,
                 announces: bool = True,
                 ussd_answer: str | None = "Sisa Pulsa Anda Rp 12.500. Aktif s.d 28-02-2027"):
        self.capacity = capacity
        self.smsc = smsc
        self.signal = signal      # AT+CSQ rssi, 0..31
        self.battery = battery    # AT+CBC percent
        self.sim: dict[int, Stored] = {}
        self.announces = announces        # False: AT+CNMI refused, nothing ever announced
        self.drop_announcements = 0       # the next n announcements are lost
        self.cnmi = [0, 0, 0, 0, 0]       # as the host last set AT+CNMI
        self.ussd_answer = ussd_answer    # the operator's answer to any USSD code
        self.ussd_dialled: list[str] = []
        self.network_queue: list[tuple] = []  # (sender, text, pdu, notify) waiting for room
        self.sent: list[str] = []          # every PDU given to AT+CMGS, hex with SMSC
        self.sent_references: list[int] = []
        self.log: list[tuple[str, str]] = []  # ("<", command) / (">", answer line) / ("!", event)
        self.unknown: list[str] = []       # commands answered ERROR because we do not know them
        self.fail_numbers: dict[str, int] = {}  # destination -> CMS error for sends to it
        self.failures: list[Failure] = []
        self.hung = False
        self.send_delay = 0.0  # seconds each AT+CMGS takes before the modem answers
        self.echo = True
        # AT+CMGR on an empty location: "+CMS ERROR: 321" (invalid index; Gammu raises
        # ERR_INVALIDLOCATION) on many modems, a bare "OK" (Gammu: ERR_EMPTY) on others.
        self.empty_location_reply = "+CMS ERROR: 321"
        self._next_reference = 1
        self._lock = threading.RLock()     # SIM, log and writes to the pty
        self._changed = threading.Condition(self._lock)
        self._buffer = b""
        self._pdu_length: int | None = None  # set while waiting for a PDU after AT+CMGS
        self._master = self._slave = None
        self._thread = None
        self._wake_r = self._wake_w = None
        self._own_dir = None
        if link is None:
            self._own_dir = tempfile.mkdtemp(prefix="modem-sim-")
            link = os.path.join(self._own_dir, "modem")
        self.link = str(link)
        self.pts: str | None = None
        if sim_full:
            self.fill()

    # -- life cycle --------------------------------------------------------------------
    def start(self) -> ModemSimulator:
        self._open()
        return self

    def stop(self):
        self._close()
        if self._own_dir:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def device(self) -> str:
        """The path Gammu opens: a symlink to the current /dev/pts/N, stable across replug."""
        return self.link

    def gammu_config(self, connection: str = "at", relay: str = "socat") -> dict:
        """A python-gammu SetConfig dict for this modem.

        "at": Gammu opens the pty itself, as it opens a real modem (Init about 4 s).
        "proxyat": Gammu runs a relay command and talks to its stdin/stdout (Init about
        0.4 s); `relay` is "socat" (where installed) or "python". Gammu does not notice
        a proxy that ends, so an unplugged modem shows as ERR_TIMEOUT after 20 s there,
        against an immediate ERR_DEVICEWRITEERROR with "at".
        """
        if connection == "at":
            return {"Device": self.device, "Connection": "at", "Model": ""}
        if connection == "proxyat":
            return {"Device": relay_command(self.device, relay), "Connection": "proxyat",
                    "Model": ""}
        raise ValueError(f"unknown connection {connection!r}; use \"at\" or \"proxyat\"")

    def _open(self):
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)  # raw for the pair: no echo, no CR/LF mapping
        self._master, self._slave = master, slave
        self.pts = os.ttyname(slave)
        tmp = self.link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(self.pts, tmp)
        os.replace(tmp, self.link)
        self._buffer, self._pdu_length, self.echo = b"", None, True
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name=f"modem-sim {self.pts}",
                                        daemon=True)
        self._thread.start()
        self._event(f"plugged in at {self.pts}")

    def _close(self):
        if self._thread is None:
            return
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        with self._lock:  # no write from deliver() may reach a closed (or reused) fd
            for fd in (self._master, self._slave, self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._thread = self._master = self._slave = None

    # -- misbehaviour --------------------------------------------------------------------
    def hang(self):
        """Stop answering: commands are read and logged but never answered."""
        with self._lock:
            self.hung = True
            self._event("hang")

    def resume(self):
        with self._lock:
            self.hung = False
            self._event("resume")

    def fail_next(self, prefix: str, reply: str = "ERROR", times: int = 1):
        """Answer the next `times` commands starting with `prefix` (e.g. "AT+CSQ") with `reply`."""
        with self._lock:
            self.failures.append(Failure(prefix.upper(), reply, times))

    def fail_next_send(self, cms: int = 500, times: int = 1):
        """Answer the next AT+CMGS (after its PDU) with +CMS ERROR: `cms`."""
        self.fail_next("AT+CMGS", f"+CMS ERROR: {cms}", times)

    def unplug(self):
        """Pull the modem: close the pty so Gammu's reads and writes fail."""
        self._close()
        self._event("unplugged")

    def replug(self):
        """Plug it back in: a new pty (new /dev/pts number), the symlink repointed; SIM kept."""
        self._close()
        self._open()

    # -- the network side ------------------------------------------------------------------
    def fill(self, sender: str = "+6281100000000") -> list[str]:
        """Fill every free SIM location with a short text; the texts stored."""
        texts = []
        with self._lock:
            while len(self.sim) < self.capacity:
                text = f"prefilled {len(self.sim) + 1}"
                self._store(REC_UNREAD, deliver_pdus(sender, text, smsc=self.smsc)[0], text, sender)
                texts.append(text)
        return texts

    def deliver(self, sender: str, text: str, *, notify: bool | None = None,
                when: dt.datetime | None = None) -> list[int]:
        """A text arrives from `sender`: its parts go to the SIM; their locations.

        Parts that find the SIM full wait in the network, as an SMSC retries, and are
        stored (and notified) when a delete frees a location. `notify`: None announces
        as the modem was told to (AT+CNMI), True always, False never.
        """
        if notify is None:
            notify = self.announces and self.cnmi[1] in (1, 3)
        pdus = deliver_pdus(sender, text, when, self.smsc)
        locations = []
        with self._lock:
            for pdu in pdus:
                if len(self.sim) >= self.capacity or self.network_queue:
                    self.network_queue.append((sender, text, pdu, notify))
                    continue
                location = self._store(REC_UNREAD, pdu, text, sender)
                locations.append(location)
                if notify:
                    self._announce_text(location)
        return locations

    def deliver_status_report(self, reference: int, number: str, delivered: bool = True, *,
                              store: bool = False, notify: bool = True) -> int | None:
        """The network reports on sent message `reference`.

        By default as an unsolicited +CDS (what AT+CNMI=...,1 asks for); with store=True
        kept on the SIM like a text (+CDSI if notify), read back through AT+CMGL.
        """
        pdu = status_report_pdu(reference, number, delivered, smsc=self.smsc)
        with self._lock:
            if not store:
                self._unsolicited(f"+CDS: {len(pdu) // 2 - 1 - int(pdu[:2], 16)}", pdu)
                return None
            if len(self.sim) >= self.capacity:
                raise SimFull("the SIM is full; delete something first")
            location = self._store(REC_UNREAD, pdu, "", number)
            if notify:
                self._unsolicited(f'+CDSI: "SM",{location}')
            return location

    def store_pdu(self, pdu_hex: str, status: int = REC_UNREAD) -> int:
        """Put any PDU (hex, SMSC included) on the SIM, e.g. a sent item; its location."""
        with self._lock:
            if len(self.sim) >= self.capacity:
                raise SimFull("the SIM is full; delete something first")
            return self._store(status, pdu_hex.upper())

    def _store(self, status, pdu, text="", sender="") -> int:
        location = next(i for i in range(1, self.capacity + 1) if i not in self.sim)
        self.sim[location] = Stored(status, pdu, text, sender)
        self._changed.notify_all()
        return location

    def _drain_network_queue(self):
        while self.network_queue and len(self.sim) < self.capacity:
            sender, text, pdu, notify = self.network_queue.pop(0)
            location = self._store(REC_UNREAD, pdu, text, sender)
            if notify:
                self._announce_text(location)

    def _announce_text(self, location: int):
        if self.drop_announcements > 0:
            self.drop_announcements -= 1
            self._event(f'dropped +CMTI: "SM",{location}')
            return
        self._unsolicited(f'+CMTI: "SM",{location}')

    # -- what tests look at ----------------------------------------------------------------
    def sent_messages(self) -> list[dict]:
        """Every PDU that left through AT+CMGS, decoded by libGammu."""
        with self._lock:
            return [decode_pdu(pdu) for pdu in self.sent]

    def sent_texts(self) -> list[str]:
        """The whole texts that left, parts linked back together."""
        return link_texts(self.sent_messages())

    def commands(self) -> list[str]:
        with self._lock:
            return [line for who, line in self.log if who == "<"]

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        """Wait until predicate(simulator) is true (checked on every command and SIM change)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def wait_for_command(self, prefix: str, timeout: float = 5.0, after: int = 0) -> bool:
        """Wait until a command starting with `prefix` arrives (in the log from `after` on)."""
        prefix = prefix.upper()
        return self.wait_for(lambda sim: any(
            who == "<" and line.upper().startswith(prefix) for who, line in sim.log[after:]),
            timeout)

    # -- the pty side ------------------------------------------------------------------------
    def _event(self, text):
        with self._lock:
            self.log.append(("!", text))
            self._changed.notify_all()

    def _write(self, data: bytes):
        if self._master is None:
            return
        try:
            os.write(self._master, data)
        except OSError:
            pass  # nobody listening (or unplugged): a real modem does not care either

    def _answer(self, *lines: str, final: str = "OK"):
        """Information lines (if any) as one block, then the final result code (V.25ter)."""
        self.log.extend((">", line) for line in lines)
        self.log.append((">", final))
        block = "\r\n" + "\r\n".join(lines) + "\r\n" if lines else ""
        self._write(f"{block}\r\n{final}\r\n".encode("latin-1"))

    def _unsolicited(self, *lines: str):
        with self._lock:
            self.log.append(("!", "unsolicited " + " / ".join(lines)))
            self._write(("\r\n" + "\r\n".join(lines) + "\r\n").encode("latin-1"))
            self._changed.notify_all()

    def _run(self):
        master, wake = self._master, self._wake_r
        while True:
            try:
                ready, _, _ = select.select([master, wake], [], [])
            except (OSError, ValueError):
                return
            if wake in ready:
                return
            try:
                data = os.read(master, 4096)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._feed(data)

    def _feed(self, data: bytes):
        self._buffer += data
        while True:
            if self._pdu_length is not None:
                end = min((i for i in (self._buffer.find(CTRL_Z), self._buffer.find(ESC))
                           if i >= 0), default=-1)
                if end < 0:
                    return
                pdu, ender = self._buffer[:end], self._buffer[end:end + 1]
                self._buffer = self._buffer[end + 1:]
                if self.echo and not self.hung:
                    self._write(pdu + ender)
                self._pdu_length = None
                if ender == CTRL_Z:
                    self._sms_submitted(pdu.decode("latin-1").strip())
                else:
                    self.log.append(("<", "<ESC: send cancelled>"))
                    if not self.hung:
                        self._answer()
                continue
            match = re.search(rb"[\r\n]", self._buffer)
            if match is None:
                # ESC or Ctrl-Z on an idle line cancel nothing; a real modem drops them.
                self._buffer = self._buffer.replace(ESC, b"").replace(CTRL_Z, b"")
                return
            raw, self._buffer = self._buffer[:match.start()], self._buffer[match.end():]
            line = raw.replace(ESC, b"").replace(CTRL_Z, b"").decode("latin-1").strip()
            if not line:
                continue
            self.log.append(("<", line))
            self._changed.notify_all()
            if self.hung:
                continue
            if self.echo:
                self._write(line.encode("latin-1") + b"\r")
            self._command(line)

    # -- AT commands -----------------------------------------------------------------------
    def _scripted_failure(self, command: str) -> str | None:
        for failure in self.failures:
            if command.upper().startswith(failure.prefix):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure.reply
        return None

    def _command(self, line: str):
        command = line.upper()
        if not command.startswith("AT"):
            self._answer(final="ERROR")
            return
        if not command.startswith("AT+CMGS"):  # a failed send is answered after its PDU
            failure = self._scripted_failure(command)
            if failure is not None:
                self._answer(final=failure)
                return
        for pattern, handler in self._HANDLERS:
            match = re.fullmatch(pattern, command)
            if match:
                handler(self, line, *match.groups())
                return
        self.unknown.append(line)
        self._answer(final="ERROR")

    def _ok(self, line, *groups):
        self._answer()

    def _set_echo(self, line, on):
        self.echo = on != "0"
        self._answer()

    def _cpms_query(self, line):
        used, cap = len(self.sim), self.capacity
        self._answer(f'+CPMS: "SM",{used},{cap},"SM",{used},{cap},"SM",{used},{cap}')

    def _cpms_set(self, line, memories):
        if any(m.strip().strip('"') not in ("SM", "") for m in memories.split(",")):
            self._answer(final="+CMS ERROR: 302")
            return
        used, cap = len(self.sim), self.capacity
        self._answer(f"+CPMS: {used},{cap},{used},{cap},{used},{cap}")

    def _cmgf(self, line, mode):
        # PDU mode only, as many cheap modems: Gammu then stays in PDU mode.
        self._answer(final="OK" if mode == "0" else "ERROR")

    def _cmgl(self, line, wanted):
        wanted = int(wanted)
        lines = []
        for location in sorted(self.sim):
            stored = self.sim[location]
            if wanted != 4 and stored.status != wanted:
                continue
            lines += [f"+CMGL: {location},{stored.status},,{stored.tpdu_length}", stored.pdu]
            if stored.status == REC_UNREAD:
                stored.status = REC_READ
        self._answer(*lines)

    def _cmgr(self, line, location):
        stored = self.sim.get(int(location))
        if stored is None:
            self._answer(final=self.empty_location_reply)
            return
        self._answer(f"+CMGR: {stored.status},,{stored.tpdu_length}", stored.pdu)
        if stored.status == REC_UNREAD:
            stored.status = REC_READ

    def _cmgd(self, line, location, flag):
        location = int(location)
        if flag and flag != "0":
            self._answer(final="ERROR")  # delete flags beyond 0 are not implemented here
            return
        if not 1 <= location <= self.capacity:
            self._answer(final="+CMS ERROR: 321")
            return
        self.sim.pop(location, None)  # deleting an empty location is OK on most modems
        self._drain_network_queue()
        self._changed.notify_all()
        self._answer()

    def _cmgs(self, line, length):
        self._pdu_length = int(length)
        self.log.append((">", "> "))
        self._write(b"\r\n> ")

    def _sms_submitted(self, pdu: str):
        self.log.append(("<", pdu + "<Ctrl-Z>"))
        self.sent.append(pdu.upper())
        self._changed.notify_all()
        failure = self._scripted_failure("AT+CMGS")
        if failure is None:
            try:
                number = decode_pdu(pdu)["Number"]
            except (gammu.GSMError, ValueError):
                self._answer(final="+CMS ERROR: 304")  # invalid PDU mode parameter
                return
            if number in self.fail_numbers:
                failure = f"+CMS ERROR: {self.fail_numbers[number]}"
        if failure is not None:
            self._answer(final=failure)
            return
        reference = self._next_reference
        self._next_reference = self._next_reference % 255 + 1
        self.sent_references.append(reference)
        # The network's time: a real modem answers +CMGS after 1 to 5 s and is busy
        # meanwhile (commands that come in wait in the serial line). The lock is let go,
        # so a text can still arrive from the network.
        deadline = time.monotonic() + self.send_delay
        while time.monotonic() < deadline:
            self._changed.wait(deadline - time.monotonic())
        self._answer(f"+CMGS: {reference}")

    def _cnmi_test(self, line):
        if not self.announces:
            self._answer(final="ERROR")
            return
        self._answer("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)")

    def _cnmi_set(self, line, values):
        if not self.announces:
            self._answer(final="ERROR")
            return
        for i, value in enumerate(values.split(",")[:5]):
            if value.strip():
                self.cnmi[i] = int(value)
        self._answer()

    def _cusd_dial(self, line, code):
        self.ussd_dialled.append(code)
        self._answer()
        if self.ussd_answer is not None:
            self._unsolicited(f'+CUSD: 0,"{self.ussd_answer}",15')

    def _cops_query(self, line):
        self._answer(f'+COPS: 0,2,"{self.operator}"')

    _HANDLERS = [
        (r"AT", _ok),
        (r"ATE([01]?)", _set_echo),
        (r"AT\+CSCS\?", lambda self, line: self._answer('+CSCS: "GSM"')),
        (r"AT\+CSCS=\?", lambda self, line: self._answer('+CSCS: ("GSM","UCS2","IRA")')),
        (r"AT\+CGMI", lambda self, line: self._answer(self.manufacturer)),
        (r"AT\+CGMM", lambda self, line: self._answer(self.model)),
        (r"AT\+CGMR", lambda self, line: self._answer(self.revision)),
        (r"AT\+CGSN", lambda self, line: self._answer(self.imei)),
        (r"AT\+CMGF=(\d)", _cmgf),
        (r"AT\+CMGF\?", lambda self, line: self._answer("+CMGF: 0")),
        (r"AT\+CMGF=\?", lambda self, line: self._answer("+CMGF: (0)")),
        (r"AT\+CPMS\?", _cpms_query),
        (r"AT\+CPMS=\?", lambda self, line: self._answer('+CPMS: ("SM"),("SM"),("SM")')),
        (r"AT\+CPMS=(.+)", _cpms_set),
        (r"AT\+CMGL=(\d)", _cmgl),
        (r"AT\+CMGR=(\d+)", _cmgr),
        (r"AT\+CMGD=(\d+)(?:,(\d))?", _cmgd),
        (r"AT\+CMGS=(\d+)", _cmgs),
        (r"AT\+CSCA\?", lambda self, line: self._answer(f'+CSCA: "{self.smsc}",145')),
        (r"AT\+CSQ", lambda self, line: self._answer(f"+CSQ: {self.signal},99")),
        (r"AT\+CBC", lambda self, line: self._answer(f"+CBC: 0,{self.battery}")),
        (r"AT\+CNMI=\?", _cnmi_test),
        (r"AT\+CNMI\?", lambda self, line: self._answer(
            "+CNMI: " + ",".join(str(v) for v in self.cnmi))),
        (r"AT\+CNMI=([\d,]*)", _cnmi_set),
        (r'AT\+CUSD=1,"([^"]*)"(?:,\d+)?', _cusd_dial),
        (r"AT\+COPS\?", _cops_query),
        (r"AT\+CREG\?", lambda self, line: self._answer('+CREG: 2,1,"07D1","8C2E"')),
        (r"AT\+CGREG\?", lambda self, line: self._answer('+CGREG: 2,1,"07D1","8C2E"')),
        (r"AT\+CPIN\?", lambda self, line: self._answer("+CPIN: READY")),
        (r"AT\+CGATT\?", lambda self, line: self._answer("+CGATT: 1")),
        # Settings we accept without keeping (after the queries above, which they would match).
        (r"ATZ|AT&F|ATV1|ATQ0|AT\+CMEE=\d|AT\+CFUN=1|AT\+CSCS=.*|AT\+CNMI=[\d,]*|AT\+COPS=.*"
         r"|AT\+CREG=\d|AT\+CGREG=\d|AT\+CSMP=.*|AT\+CSDH=\d|AT\+CCWA=\d|AT\+CUSD=\d", _ok),
    ]


def relay_command(device: str, relay: str = "socat") -> str:
    """The proxyat command that joins Gammu's pipe to the pty at `device`.

    "socat" where installed (about 0.4 s for Init), else "python": this file run as a
    script (adds the interpreter's start-up, about 0.05 s).
    """
    if relay == "socat" and shutil.which("socat"):
        return f"socat - {device},raw,echo=0"
    return f"{sys.executable} {os.path.abspath(__file__)} --relay {device}"


def _relay(device: str):
    """Copy stdin to the pty and the pty to stdout until either side ends."""
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    sources = {0: fd, fd: 1}
    while True:
        ready, _, _ = select.select(list(sources), [], [])
        for source in ready:
            try:
                data = os.read(source, 4096)
                if not data:
                    return
                os.write(sources[source], data)
            except OSError:  # the modem was unplugged, or Gammu went away
                return


if __name__ == "__main__" and sys.argv[1:2] == ["--relay"]:
    _relay(sys.argv[2])
