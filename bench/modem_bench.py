"""The modem side of the gateway through libGammu's real AT driver and tests/modem_sim.py.

    .venv/bin/python bench/modem_bench.py [--texts 200] [--sends 20] [--timeouts 5,30]

1. inbound: `--texts` single-part texts on one simulated SIM, drained by the real
   InboundPoller (ModemWorker threaded=False, Database (no reactor) on SQLite) calling poll() in a
   loop; texts/s read+stored+deleted and where the time goes (libGammu calls, the worker
   around them, the database transaction, the rest), per text and per AT exchange.
2. outbound: `--sends` texts through OutboxDispatcher to one simulated modem; texts/s and
   the split between Gammu's SendSMS (which sleeps 0.1+0.5+0.1 s inside itself) and the
   time outside worker.send.
3. takeover: two simulated modems A and B under the real Twisted reactor (threaded
   ModemWorkers, Database, InboundPollers, OutboxDispatcher), once per call timeout in
   `--timeouts`. A hangs, 10 texts preferring A are queued at once, and the timeline is
   recorded: A seen down, first text handed to B, every text final.

Everything runs on connection = "proxyat" (socat relay), in temporary directories that
are removed at the end; the whole run is bounded (a hard stop after --limit seconds).
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import types
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import gammu  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from twisted.internet import task  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402

import gateway.modem.worker as modem_mod  # noqa: E402
from gateway.config import ModemConfig, parse  # noqa: E402
from gateway.daemon.database import Database, pool_size  # noqa: E402
from gateway.daemon.inbound import InboundPoller  # noqa: E402
from gateway.daemon.outbox import OutboxDispatcher  # noqa: E402
from gateway.db.engine import make_engine, make_sessionmaker  # noqa: E402
from gateway.db.models import Message, MessagePart  # noqa: E402
from gateway.db.schema import upgrade  # noqa: E402
from gateway.db.transaction import in_transaction  # noqa: E402
from gateway.desk import outbox as outbox_store  # noqa: E402
from gateway.modem.worker import CALL_TIMEOUT, ModemWorker  # noqa: E402
from tests.modem_sim import ModemSimulator  # noqa: E402

args_verbose = False  # --verbose: the takeover's progress on stderr

INBOUND_TEXTS = [
    "KOMPLAIN pulsa belum masuk sejak tadi pagi",
    "Halo, saya mau pesan beras 5 kg untuk besok pagi",
    "Status pesanan saya bagaimana?",
    "Tolong kirim nota ke alamat saya",
    "Sudah transfer 150000 ke BCA, mohon dicek",
    "Barang sudah sampai, terima kasih",
    "Minta nomor rekening untuk pembayaran",
    "Kapan kurir datang?",
]


# -- small helpers ---------------------------------------------------------------------

def result(d):
    """The outcome of a Deferred that has already fired (threaded=False worker, Clock)."""
    out = []
    d.addBoth(out.append)
    assert out, "the call did not finish synchronously"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def at_commands(sim, since: int = 0) -> int:
    """AT exchanges in the simulator's log from index `since` (a PDU after AT+CMGS counts
    as part of its exchange)."""
    with sim._lock:
        return sum(1 for who, line in sim.log[since:]
                   if who == "<" and not line.endswith("<Ctrl-Z>"))


def new_database(directory: Path):
    url = f"sqlite:///{directory}/helpdesk.db"
    engine = make_engine(url)
    upgrade(engine)
    return engine, make_sessionmaker(engine), parse({"database": {"url": url}}, "bench.toml")


class TimedMachine:
    """Stands for a gammu.StateMachine inside gateway.modem.worker's call functions and adds the
    wall time of every libGammu call to `totals[name]`."""

    def __init__(self, machine, totals: dict, counts: dict):
        self._machine, self._totals, self._counts = machine, totals, counts

    def __getattr__(self, name):
        fn = getattr(self._machine, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._totals[name] = self._totals.get(name, 0.0) + time.perf_counter() - started
                self._counts[name] = self._counts.get(name, 0) + 1
        return timed


class patch_gammu_calls:
    """Within this block gateway.modem.worker's _read_inbox/_delete/_send get a TimedMachine."""

    NAMES = ("_read_inbox", "_delete", "_send")

    def __init__(self):
        self.totals, self.counts = {}, {}

    def __enter__(self):
        self.saved = {n: getattr(modem_mod, n) for n in self.NAMES}
        for name, fn in self.saved.items():
            setattr(modem_mod, name, self._wrap(fn))
        return self

    def _wrap(self, fn):
        def wrapped(machine, *args):
            return fn(TimedMachine(machine, self.totals, self.counts), *args)
        return wrapped

    def __exit__(self, *exc):
        for name, fn in self.saved.items():
            setattr(modem_mod, name, fn)

    @property
    def total(self) -> float:
        return sum(self.totals.values())


def time_method(obj, name: str, totals: dict):
    """Replace obj.name (returning a Deferred that fires at once) by a version that adds
    its wall time to totals[name]."""
    real = getattr(obj, name)

    def timed(*args, **kwargs):
        started = time.perf_counter()
        d = real(*args, **kwargs)
        totals[name] = totals.get(name, 0.0) + time.perf_counter() - started
        return d
    setattr(obj, name, timed)


class TimedDB(Database):
    """Database (no reactor) that adds the time of each transaction to totals['db']."""

    def __init__(self, real, totals):
        self.real, self.totals = real, totals

    def run(self, fn, *args):
        started = time.perf_counter()
        d = self.real.run(fn, *args)
        self.totals["db"] = self.totals.get("db", 0.0) + time.perf_counter() - started
        return d


# -- 1. inbound -----------------------------------------------------------------------

def bench_inbound(work: Path, count: int) -> dict:
    engine, sessions, config = new_database(work)
    sim = ModemSimulator(capacity=max(250, count + 10), link=str(work / "modemA")).start()
    worker = ModemWorker(ModemConfig("A", sim.gammu_config("proxyat")), task.Clock(),
                         threaded=False, reconnect_delay=(0, 0))
    try:
        expected = set()
        for i in range(count):
            sender = f"+62812{1000000 + i % 100:07d}"
            text = f"{INBOUND_TEXTS[i % len(INBOUND_TEXTS)]} (no {i})"
            sim.deliver(sender, text)
            expected.add((sender, text))
        assert len(sim.sim) == count, "every text must fit on the SIM"

        started = time.perf_counter()
        result(worker.status())  # Init (socat + AT set-up), kept out of the measurement
        init = time.perf_counter() - started
        log_from = len(sim.log)

        totals: dict = {}
        db = TimedDB(Database(sessions), totals)
        poller = InboundPoller(worker, db, config, task.Clock())
        time_method(worker, "read_inbox", totals)
        time_method(worker, "delete", totals)
        polls = 0
        with patch_gammu_calls() as gammu_calls:
            started = time.perf_counter()
            while sim.sim and polls < 50:
                result(poller.poll())
                polls += 1
            wall = time.perf_counter() - started
        exchanges = at_commands(sim, log_from)
        with sim._lock:
            commands = [line.split("=")[0].split("?")[0]
                        for who, line in sim.log[log_from:] if who == "<"]

        with sessions() as s:
            got = {(m.number, m.text) for m in s.scalars(
                select(Message).where(Message.direction == "in"))}
            stored_in = s.scalar(select(func.count()).select_from(Message)
                                 .where(Message.direction == "in"))
            parts_in = s.scalar(select(func.count()).select_from(MessagePart)
                                .where(MessagePart.sender.is_not(None)))
            acks = s.scalar(select(func.count()).select_from(Message)
                            .where(Message.direction == "out"))
        worker_time = totals.get("read_inbox", 0.0) + totals.get("delete", 0.0)
        return {
            "texts": count, "polls": polls, "init_s": init, "wall_s": wall,
            "texts_per_s": count / wall, "at_exchanges": exchanges,
            "at_by_command": {c: commands.count(c) for c in sorted(set(commands))},
            "libgammu_s": gammu_calls.total, "libgammu_by_call": dict(gammu_calls.totals),
            "libgammu_calls": dict(gammu_calls.counts),
            "worker_s": worker_time, "read_inbox_s": totals.get("read_inbox", 0.0),
            "delete_s": totals.get("delete", 0.0), "db_s": totals.get("db", 0.0),
            "sim_left": len(sim.sim), "stored_in": stored_in, "parts_in": parts_in,
            "acks_queued": acks,
            "lost": len(expected - got), "unexpected": len(got - expected),
            "duplicates": stored_in - len(got),
        }
    finally:
        worker._disconnect()
        sim.stop()
        engine.dispose()


# -- 2. outbound ----------------------------------------------------------------------

def bench_outbound(work: Path, count: int) -> dict:
    engine, sessions, config = new_database(work)
    sim = ModemSimulator(capacity=30, link=str(work / "modemA")).start()
    clock = task.Clock()
    worker = ModemWorker(ModemConfig("A", sim.gammu_config("proxyat")), clock,
                         threaded=False, reconnect_delay=(0, 0))
    try:
        result(worker.status())  # Init outside the measurement
        texts = [f"Pesanan Anda nomor {1000 + i} sudah kami kirim hari ini" for i in range(count)]
        with sessions.begin() as s:
            for i, text in enumerate(texts):
                s.add(Message(direction="out", number=f"+62813{2000000 + i:07d}", text=text,
                              status="queued"))
        totals: dict = {}
        db = TimedDB(Database(sessions), totals)
        dispatcher = OutboxDispatcher([worker], db, config, clock, node="bench")
        time_method(worker, "send", totals)
        log_from = len(sim.log)
        rounds = 0
        with patch_gammu_calls() as gammu_calls:
            started = time.perf_counter()
            while rounds < 10:
                claimed = result(dispatcher.dispatch())
                rounds += 1
                if not claimed:
                    break
            wall = time.perf_counter() - started
        exchanges = at_commands(sim, log_from)
        with sessions() as s:
            statuses = [m.status for m in s.scalars(
                select(Message).where(Message.direction == "out"))]
        sent_texts = sim.sent_texts()
        return {
            "texts": count, "wall_s": wall, "texts_per_s": count / wall,
            "send_s": totals.get("send", 0.0), "db_s": totals.get("db", 0.0),
            "libgammu_s": gammu_calls.total, "sendsms_calls": gammu_calls.counts.get("SendSMS", 0),
            "at_exchanges": exchanges, "pdus_sent": len(sim.sent),
            "statuses": {s: statuses.count(s) for s in set(statuses)},
            "lost": len(set(texts) - set(sent_texts)),
            "duplicates": len(sent_texts) - len(set(sent_texts)),
        }
    finally:
        worker._disconnect()
        sim.stop()
        engine.dispose()


# -- 3. dead modem and takeover (real reactor) -------------------------------------------

class LogRecorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records: list[tuple[float, str, str]] = []

    def emit(self, record):
        self.records.append((time.monotonic(), record.levelname, record.getMessage()))


class RecordingDB(Database):
    """A Database whose outbox outcomes are time-stamped when their transaction commits."""

    KINDS = {"sent": "sent", "release": "released", "failed": "failed", "unknown": "failed",
             "retry": "retry"}

    def __init__(self, real, events):
        self.real, self.events = real, events

    def run(self, fn, *args):
        d = self.real.run(fn, *args)
        name = getattr(fn, "__name__", "")
        if fn.__module__ != outbox_store.__name__ or name not in ("claim", "finish"):
            return d

        def note(value):
            at = time.monotonic()
            if name == "claim":
                self.events.append((at, "claim", None, len(value)))
                return value
            outcome, (_status, claimed) = args[0], value
            detail = outcome.modem if outcome.kind == "sent" else outcome.error[:70]
            self.events.append((at, self.KINDS[outcome.kind], outcome.message_id, detail))
            if claimed:
                self.events.append((at, "claim", None, len(claimed)))
            return value
        return d.addCallback(note)


def takeover(reactor, work: Path, call_timeout: float, count: int = 10):
    """Generator for inlineCallbacks: one hang-and-takeover measurement."""
    from twisted.internet import defer, threads

    def sleep(seconds):
        return task.deferLater(reactor, seconds, lambda: None)

    engine, sessions, config = new_database(work)
    sim_a = ModemSimulator(link=str(work / "modemA")).start()
    sim_b = ModemSimulator(link=str(work / "modemB")).start()
    events: list = []
    recorder = LogRecorder()
    logging.getLogger("gateway").addHandler(recorder)
    pool = Database(sessions, reactor, size=pool_size(engine))  # 1 for SQLite, as the daemon
    db = RecordingDB(pool, events)
    worker_a = ModemWorker(ModemConfig("A", sim_a.gammu_config("proxyat")), reactor,
                           call_timeout=call_timeout)
    worker_b = ModemWorker(ModemConfig("B", sim_b.gammu_config("proxyat")), reactor,
                           call_timeout=call_timeout)
    dispatcher = OutboxDispatcher([worker_a, worker_b], db, config, reactor, node="bench")
    pollers = [InboundPoller(w, db, config, reactor, on_stored=lambda _ids: dispatcher.wake())
               for w in (worker_a, worker_b)]
    services = [pool, worker_a, worker_b, *pollers, dispatcher]

    handed_to_b: list[float] = []
    real_send_b = worker_b.send

    def send_b(*args, **kwargs):
        handed_to_b.append(time.monotonic())
        return real_send_b(*args, **kwargs)
    worker_b.send = send_b

    out = {"call_timeout": call_timeout}
    begun = time.monotonic()
    samples = {"a_disconnected": None, "a_last_error": None}
    try:
        for s in services:
            s.startService()
        deadline = time.monotonic() + 15
        while not (worker_a.connected and worker_b.connected) and time.monotonic() < deadline:
            yield sleep(0.05)
        if not (worker_a.connected and worker_b.connected):
            raise RuntimeError("the simulated modems did not connect within 15 s")
        yield sleep(1.0)  # a few quiet polls on both

        def queue(session):
            for i in range(count):
                session.add(Message(direction="out", number=f"+62815{3000000 + i:07d}",
                                    text=f"Balasan tiket {i}: pesanan sudah dikirim",
                                    status="queued", modem="A"))

        a_log_from = len(sim_a.log)
        t0 = time.monotonic()
        sim_a.hang()
        yield pool.run(queue)
        queued_at = time.monotonic()
        dispatcher.wake()

        heartbeat = {"last": time.monotonic(), "max_lag": 0.0}

        def watch():
            now = time.monotonic()
            heartbeat["max_lag"] = max(heartbeat["max_lag"], now - heartbeat["last"])
            heartbeat["last"] = now
            if samples["a_disconnected"] is None and not worker_a.connected:
                samples["a_disconnected"] = now
            if samples["a_last_error"] is None and worker_a.last_error:
                samples["a_last_error"] = now
        watcher = task.LoopingCall(watch)
        watcher.clock = reactor
        watcher.start(0.005)

        def final_states(session):
            rows = session.scalars(select(Message).where(Message.direction == "out")
                                   .order_by(Message.id)).all()
            return [(r.id, r.status, r.modem, r.attempts, r.last_error) for r in rows]

        bound = time.monotonic() + call_timeout + 60
        rows = []
        while time.monotonic() < bound:
            yield sleep(0.1)
            # read on a thread of its own (WAL: readers do not wait), not on the gateway's
            # single DB thread, so watching does not delay the dispatcher's transactions
            rows = yield threads.deferToThread(in_transaction, sessions, final_states)
            if args_verbose:
                print(f"  t={time.monotonic() - t0:5.1f} A connected={worker_a.connected} "
                      f"err={worker_a.last_error!r:.40} "
                      f"{sorted((r[1], r[2]) for r in rows)}", file=sys.stderr)
            if rows and all(r[1] in ("sent", "failed", "unknown") for r in rows):
                break
        done_at = time.monotonic()
        out["setup_s"] = t0 - begun
        watcher.stop()

        sent_events = [e for e in events if e[1] == "sent" and e[0] >= t0]
        with sim_a._lock:
            a_commands = [(who, line) for who, line in sim_a.log[a_log_from:] if who in "<!"]
        out.update({
            "queued_after_hang_s": queued_at - t0,
            "a_disconnected_s": (samples["a_disconnected"] - t0)
            if samples["a_disconnected"] else None,
            "a_last_error_s": (samples["a_last_error"] - t0) if samples["a_last_error"] else None,
            "a_last_error": worker_a.last_error,
            "reactor_max_gap_s": heartbeat["max_lag"],
            "first_to_b_s": (handed_to_b[0] - t0) if handed_to_b else None,
            "first_sent_b_s": min((e[0] - t0 for e in sent_events if e[3] == "B"), default=None),
            "all_final_s": done_at - t0,
            "last_sent_s": max((e[0] - t0 for e in sent_events), default=None),
            "rows": rows,
            "statuses": {st: sum(r[1] == st for r in rows) for st in {r[1] for r in rows}},
            "sent_via": {m: sum(r[1] == "sent" and r[2] == m for r in rows) for m in ("A", "B")},
            "pdus_b": len(sim_b.sent), "pdus_a": len(sim_a.sent),
            "texts_b": sim_b.sent_texts(),
            "a_commands_while_hung": a_commands[:12],
            "events": [(round(t - t0, 3), kind, mid, detail) for t, kind, mid, detail in events
                       if t >= t0],
            "log": [(round(t - t0, 3), level, msg) for t, level, msg in recorder.records
                    if t >= t0 and "modem" in msg],
        })
    finally:
        sim_a.resume()
        for s in reversed(services):
            if args_verbose:
                print(f"  {time.monotonic():.1f} stopping {s.name or s}", file=sys.stderr)
            try:
                yield defer.maybeDeferred(s.stopService)
            except Exception as e:  # keep stopping the rest
                print(f"  stopping {s}: {e!r}", file=sys.stderr)
        logging.getLogger("gateway").removeHandler(recorder)
        if args_verbose:
            print(f"  {time.monotonic():.1f} stopping the simulators", file=sys.stderr)
        yield threads.deferToThread(lambda: (sim_a.stop(), sim_b.stop()))
        out["whole_s"] = time.monotonic() - begun
        if args_verbose:
            print(f"  {time.monotonic():.1f} stopped", file=sys.stderr)
        engine.dispose()
    return out


# -- reporting -------------------------------------------------------------------------

def machine_info() -> dict:
    def read(path):
        try:
            return Path(path).read_text()
        except OSError:
            return ""
    cpu = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((line.split(":", 1)[1].strip() for line in read("/proc/meminfo").splitlines()
                if line.startswith("MemTotal")), "?")
    osname = next((line.split("=", 1)[1].strip().strip('"')
                   for line in read("/etc/os-release").splitlines()
                   if line.startswith("PRETTY_NAME")), platform.platform())
    return {
        "date": subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip(),
        "nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "os": osname,
        "kernel": platform.release(), "python": platform.python_version(),
        "python_gammu": metadata.version("python-gammu"),
        "gammu_version": gammu.Version(),
        "loadavg": " ".join(read("/proc/loadavg").split()[:3]),
        "commit": subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip(),
    }


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def print_inbound(r):
    n, wall = r["texts"], r["wall_s"]
    ours = wall - r["worker_s"]
    worker_glue = r["worker_s"] - r["libgammu_s"]
    print(f"\n1. inbound, {n} texts on one simulated SIM, {r['polls']} polls "
          f"(Init before, not counted: {r['init_s']:.2f} s)")
    print(f"   {r['texts_per_s']:.1f} texts/s read+stored+deleted ({wall:.3f} s in all)")
    print(f"   AT exchanges: {r['at_exchanges']} ({r['at_exchanges'] / n:.2f} per text) "
          f"{r['at_by_command']}")
    print(f"   in worker.read_inbox/delete: {r['worker_s']:.3f} s ({ms(r['worker_s'] / n)}/text;"
          f" read {r['read_inbox_s']:.3f} s, delete {r['delete_s']:.3f} s)")
    print(f"     of which in libGammu calls: {r['libgammu_s']:.3f} s "
          f"({ms(r['libgammu_s'] / n)}/text) {r['libgammu_calls']}")
    print(f"     of which worker glue (watchdog timer, raw_part): {worker_glue:.3f} s "
          f"({ms(worker_glue / n)}/text)")
    print(f"   outside the worker (our overhead): {ours:.3f} s ({ms(ours / n)}/text, "
          f"{ms(ours / r['at_exchanges'])}/AT exchange); of which DB transactions "
          f"{r['db_s']:.3f} s ({ms(r['db_s'] / n)}/text)")
    everything_but_gammu = wall - r["libgammu_s"]
    print(f"   all but libGammu: {everything_but_gammu:.3f} s "
          f"({ms(everything_but_gammu / r['at_exchanges'])}/AT exchange)")
    print(f"   check: stored {r['stored_in']}, lost {r['lost']}, duplicates {r['duplicates']}, "
          f"left on SIM {r['sim_left']}, acks queued {r['acks_queued']}")


def print_outbound(r):
    n, wall = r["texts"], r["wall_s"]
    print(f"\n2. outbound, {n} texts through OutboxDispatcher to one simulated modem")
    print(f"   {r['texts_per_s']:.2f} texts/s ({wall:.3f} s in all, {ms(wall / n)}/text)")
    print(f"   in worker.send: {r['send_s']:.3f} s ({ms(r['send_s'] / n)}/text); libGammu SendSMS "
          f"{r['libgammu_s']:.3f} s over {r['sendsms_calls']} calls "
          f"({ms(r['libgammu_s'] / max(1, r['sendsms_calls']))}/call, of which 700 ms are "
          f"Gammu's own sleeps)")
    outside = wall - r["send_s"]
    print(f"   outside worker.send (our overhead): {outside:.3f} s ({ms(outside / n)}/text); "
          f"DB {r['db_s']:.3f} s")
    print(f"   AT exchanges {r['at_exchanges']} ({r['at_exchanges'] / n:.1f}/text); PDUs "
          f"{r['pdus_sent']}; statuses {r['statuses']}; lost {r['lost']}, "
          f"duplicates {r['duplicates']}")


def print_takeover(r):
    def s(v):
        return "never" if v is None else f"{v:.2f} s"
    print(f"\n3. takeover, call_timeout {r['call_timeout']:.0f} s: A hangs at t=0, "
          f"10 texts for A queued at {s(r['queued_after_hang_s'])}")
    print(f"   A seen down: connected False at {s(r['a_disconnected_s'])}, last_error set at "
          f"{s(r['a_last_error_s'])} ({r['a_last_error']})")
    print(f"   first text handed to B {s(r['first_to_b_s'])}, first sent via B "
          f"{s(r['first_sent_b_s'])}, last sent {s(r['last_sent_s'])}, all final at "
          f"{s(r['all_final_s'])}")
    print(f"   longest gap between 5 ms reactor ticks: {ms(r['reactor_max_gap_s'])}")
    print(f"   statuses {r['statuses']}, sent via {r['sent_via']}, PDUs at B {r['pdus_b']}, "
          f"at A {r['pdus_a']}, distinct texts at B {len(set(r['texts_b']))}")
    for row in r["rows"]:
        if row[1] != "sent" or row[2] != "B":
            print(f"   not sent via B: id {row[0]} {row[1]} modem={row[2]} attempts={row[3]} "
                  f"last_error={row[4]!r}")
    print(f"   A's log from the hang: {r['a_commands_while_hung']}")
    print(f"   set-up {r.get('setup_s', 0):.1f} s; the whole measurement with start and stop "
          f"{r.get('whole_s', 0):.1f} s")
    print("   outbox events (t, kind, id, detail):")
    for e in r["events"]:
        print(f"     {e}")
    print("   gateway log:")
    for line in r["log"]:
        print(f"     {line}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--sends", type=int, default=20)
    parser.add_argument("--timeouts", default=f"5,{CALL_TIMEOUT:g}",
                        help="call timeouts for the takeover measurement (comma separated)")
    parser.add_argument("--limit", type=float, default=290.0,
                        help="hard stop after this many seconds")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    global args_verbose
    args_verbose = args.verbose
    faulthandler.dump_traceback_later(args.limit, exit=True)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("gateway").setLevel(logging.INFO)
    logging.getLogger("gateway").propagate = False
    work = Path(tempfile.mkdtemp(prefix="modem-bench-"))
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}, {info['os']} "
          f"(kernel {info['kernel']})")
    print(f"date: {info['date']}; load average at start {info['loadavg']}; "
          f"repo at {info['commit']}")
    print(f"Python {info['python']}, python-gammu {info['python_gammu']} "
          f"(gammu.Version() {info['gammu_version']}), relay: {shutil.which('socat') or 'python'}")
    started = time.monotonic()
    try:
        (work / "in").mkdir()
        print_inbound(bench_inbound(work / "in", args.texts))
        (work / "out").mkdir()
        print_outbound(bench_outbound(work / "out", args.sends))

        from twisted.internet import defer, reactor

        timeouts = [float(t) for t in args.timeouts.split(",") if t.strip()]
        results, errors = [], []

        @defer.inlineCallbacks
        def run_takeovers():
            try:
                for i, timeout in enumerate(timeouts):
                    directory = work / f"takeover-{i}"
                    directory.mkdir()
                    r = yield defer.inlineCallbacks(takeover)(reactor, directory, timeout)
                    results.append(r)
            except Exception:
                errors.append(Failure())
            finally:
                reactor.stop()

        reactor.callWhenRunning(run_takeovers)
        reactor.run(installSignalHandlers=False)
        for r in results:
            print_takeover(r)
        for f in errors:
            print(f"takeover failed:\n{f.getTraceback()}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        faulthandler.cancel_dump_traceback_later()
    print(f"\ntotal {time.monotonic() - started:.1f} s; load average at end "
          f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    # A StateMachine that Gammu gave up on stays referenced from an exception's traceback
    # frames; when the garbage collector frees it, python-gammu's dealloc talks to the dead
    # modem (SetIncomingSMS, Terminate) for minutes, holding up whichever thread runs the
    # collection. Name the frames that hold one, then leave without collecting them.
    import gc
    holders = [f"{f.f_code.co_name} ({Path(f.f_code.co_filename).name}:{f.f_lineno})"
               for f in gc.get_objects() if isinstance(f, types.FrameType)
               and any(isinstance(v, gammu.StateMachine) for v in f.f_locals.values())]
    print(f"frames still holding a StateMachine at exit: {holders or 'none'}")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
