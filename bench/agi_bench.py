"""FastAGI caller lookup under load: p50/p95/p99 with N concurrent calls.

    .venv/bin/python bench/agi_bench.py [--contacts 100000] [--concurrency 50]
                                        [--calls 5000] [--write docs/benchmarks-agi.md]

Builds a SQLite database of --contacts contacts (a third with an open ticket, some
owned by an operator with a softphone), starts the real daemon's FastAGI server
(gateway.voice.fastagi.FastAGIFactory on the daemon's Database, the same as `helpdesk run`) in a child
process listening on 127.0.0.1, and has --concurrency clients play Asterisk against
it: each connects, sends the agi_* header of an incoming call, answers every command
as Asterisk does, and times connect -> the server closing the connection (the whole
lookup: the call row, the ticket, every SET VARIABLE).

Three loads:
- calls in progress (the budget's "50 concurrent calls"): 50 calls always up, each
  looked up, held 1-3 s (a real call lasts minutes, so this is ~40x a real arrival
  rate), ended through the hangup-handler AGI, and replaced by a new call at once;
- a burst: 50 calls arriving in the same instant;
- a closed loop: 50 clients each calling again the moment a lookup ends, which
  measures throughput (latency there is just 50 / throughput).

Callers: 90% known contacts, each number written in a random Indonesian form
(0812..., 62812..., +62812..., 0062812...), 10% unknown numbers (a new contact and
ticket: the writing path). Bounded in count and time; loopback only.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import inspect
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_db(url: str, contacts: int, seed: int = 1) -> None:
    from sqlalchemy import insert

    from gateway.db.engine import make_engine
    from gateway.db.models import Contact, Ticket, User
    from gateway.db.schema import upgrade

    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(seed)
    now = dt.datetime.utcnow()
    with engine.begin() as conn:
        conn.execute(insert(User), [
            {"id": i, "name": f"op{i}", "password_hash": "x", "role": "operator",
             "extension": str(100 + i), "active": True, "failed_logins": 0,
             "created_at": now} for i in range(1, 21)])
        rows = [{"id": i, "phone": f"+62812{i:08d}", "name": f"Pelanggan {i}",
                 "opted_out": False, "owner_id": rng.choice([None, None, None]
                                                            + list(range(1, 21))),
                 "created_at": now, "updated_at": now} for i in range(1, contacts + 1)]
        for start in range(0, len(rows), 10000):
            conn.execute(insert(Contact), rows[start:start + 10000])
        tickets = [{"contact_id": i, "kind": "question", "status": "open", "subject": "",
                    "assignee_id": rng.choice([None] + list(range(1, 21))),
                    "created_at": now, "updated_at": now}
                   for i in range(1, contacts + 1) if i % 3 == 0]
        for start in range(0, len(tickets), 10000):
            conn.execute(insert(Ticket), tickets[start:start + 10000])
    engine.dispose()


def serve(url: str, port: int) -> None:
    """The child process: the daemon's FastAGI server and DB pool on the real reactor."""
    from twisted.internet import reactor

    from gateway.daemon.database import Database, pool_size
    from gateway.db.engine import make_engine, make_sessionmaker
    from gateway.voice.fastagi import FastAGIFactory

    engine = make_engine(url)
    pool = Database(make_sessionmaker(engine), reactor, size=pool_size(engine))  # as the daemon
    pool.startService()
    # The dialplan's shared secret, where this version of the server asks for one.
    secret = ({"secret": SECRET.encode()}
              if "secret" in inspect.signature(FastAGIFactory).parameters else {})
    factory = FastAGIFactory(pool.calls, "ID", "id", reactor,
                             db_concurrency=int(os.environ.get("AGI_DB_CONCURRENCY", "4")),
                             **secret)
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.addSystemEventTrigger("before", "shutdown", pool.stopService)
    print("ready", flush=True)
    reactor.run()


def serial_lookups(url: str, contacts: int, n: int = 500) -> float:
    """Mean time of calls.incoming_call alone, one after another (no network, no load)."""
    from gateway.db.engine import make_engine, make_sessionmaker
    from gateway.db.models import utcnow
    from gateway.db.transaction import in_transaction
    from gateway.desk import calls

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    t0 = time.perf_counter()
    for i in range(n):
        in_transaction(sessions, calls.incoming_call, f"serial.{i}",
                       forms(random.randint(1, contacts)), "ID", utcnow())
    engine.dispose()
    return (time.perf_counter() - t0) / n * 1000


def forms(n: int) -> str:
    national = f"812{n:08d}"
    return random.choice([f"0{national}", f"62{national}", f"+62{national}",
                          f"0062{national}"])


SECRET = "agi-bench-secret"  # passed as ?secret= as the dialplan does; see serve()


def header(uniqueid: str, callerid: str) -> bytes:
    lines = ["agi_network: yes", f"agi_network_script: incoming?secret={SECRET}",
             f"agi_request: agi://127.0.0.1:4573/incoming?secret={SECRET}",
             f"agi_channel: PJSIP/trunk-{uniqueid[-8:]}", "agi_language: en",
             "agi_type: PJSIP", f"agi_uniqueid: {uniqueid}", "agi_version: 22.1.1",
             f"agi_callerid: {callerid}", "agi_calleridname: unknown",
             "agi_callingpres: 0", "agi_callingani2: 0", "agi_callington: 0",
             "agi_callingtns: 0", "agi_dnid: 0215550000", "agi_rdnis: unknown",
             "agi_context: helpdesk-incoming", "agi_extension: s", "agi_priority: 6",
             "agi_enhanced: 0.0", "agi_accountcode: ", "agi_threadid: 1"]
    return ("\n".join(lines) + "\n\n").encode()


async def one_call(port: int, uniqueid: str, callerid: str,
                   script: str = "incoming") -> tuple[float, int]:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = header(uniqueid, callerid)
    if script != "incoming":
        data = data.replace(b"/incoming", b"/" + script.encode()).replace(
            b"agi_network_script: incoming", b"agi_network_script: " + script.encode())
    writer.write(data)
    commands = 0
    while True:
        line = await reader.readline()
        if not line:
            break
        commands += 1
        # GET VARIABLE in the hangup handler: unset, as on a call nobody answered
        writer.write(b"200 result=0\n" if line.startswith(b"GET") else b"200 result=1\n")
    elapsed = time.perf_counter() - start
    writer.close()
    return elapsed, commands


async def load(port: int, contacts: int, concurrency: int, calls: int, deadline: float):
    latencies: list[float] = []
    counter = iter(range(calls))
    run = f"{int(time.time())}"

    async def worker(w: int):
        for n in counter:
            if time.monotonic() > deadline:
                return
            if random.random() < 0.1:
                callerid = f"0857{random.randrange(10**8):08d}"  # a stranger
            else:
                callerid = forms(random.randint(1, contacts))
            elapsed, commands = await one_call(port, f"{run}.{n}", callerid)
            assert commands >= 6, f"only {commands} commands: the lookup failed"
            latencies.append(elapsed)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return latencies


async def calls_in_progress(port: int, contacts: int, concurrency: int, seconds: float,
                            hold: tuple[float, float]):
    """`concurrency` calls always in progress: each caller's lookup, the call held for a
    random time in `hold` (seconds; a real call lasts minutes), its hangup handler, and
    the next call at once. Returns the incoming lookups' latencies."""
    latencies: list[float] = []
    run = f"h{int(time.time())}"
    end = time.monotonic() + seconds
    n = iter(range(10**9))

    async def caller():
        while time.monotonic() < end:
            uniqueid = f"{run}.{next(n)}"
            callerid = (f"0857{random.randrange(10**8):08d}" if random.random() < 0.1
                        else forms(random.randint(1, contacts)))
            elapsed, commands = await one_call(port, uniqueid, callerid)
            assert commands >= 6, f"only {commands} commands: the lookup failed"
            latencies.append(elapsed)
            await asyncio.sleep(random.uniform(*hold))
            await one_call(port, uniqueid, callerid, "hangup")

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (f"nproc {len(os.sched_getaffinity(0))}, {model}; load average at the end "
            f"{load} (other work on the machine shares these cores)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60,
                        help="how long the calls-in-progress run lasts")
    parser.add_argument("--hold", type=float, nargs=2, default=(1.0, 3.0),
                        metavar=("MIN", "MAX"), help="seconds each call is held")
    parser.add_argument("--max-seconds", type=float, default=300)
    parser.add_argument("--write", metavar="MARKDOWN")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0

    workdir = tempfile.mkdtemp(prefix="agi-bench-")
    url = f"sqlite:///{workdir}/bench.db"
    t0 = time.perf_counter()
    build_db(url, args.contacts)
    print(f"database: {args.contacts} contacts in {time.perf_counter() - t0:.1f} s")
    service_ms = serial_lookups(url, args.contacts)
    print(f"one lookup transaction alone, in process: {service_ms:.2f} ms")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)],
                              stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert server.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + args.max_seconds
        asyncio.run(load(port, args.contacts, args.concurrency, 200, deadline))  # warm-up
        held = asyncio.run(calls_in_progress(port, args.contacts, args.concurrency,
                                             args.seconds, tuple(args.hold)))
        t0 = time.perf_counter()
        lat = asyncio.run(load(port, args.contacts, args.concurrency, args.calls, deadline))
        wall = time.perf_counter() - t0
        burst = asyncio.run(load(port, args.contacts, args.concurrency, args.concurrency,
                                 deadline))
    finally:
        server.terminate()
        server.wait(timeout=10)
    held_ms = [x * 1000 for x in held]
    ms = [x * 1000 for x in lat]
    burst_ms = [x * 1000 for x in burst]
    result = {
        "held_calls": len(held_ms), "held_rate": len(held_ms) / args.seconds,
        "held_p50": pct(held_ms, 50), "held_p95": pct(held_ms, 95),
        "held_p99": pct(held_ms, 99), "held_max": max(held_ms),
        "calls": len(ms), "rate": len(ms) / wall, "p50": pct(ms, 50), "p95": pct(ms, 95),
        "p99": pct(ms, 99), "max": max(ms), "mean": statistics.mean(ms),
        "burst_p50": pct(burst_ms, 50), "burst_p99": pct(burst_ms, 99),
        "burst_max": max(burst_ms),
    }
    summary = (f"{args.concurrency} calls in progress: {result['held_calls']} lookups "
               f"({result['held_rate']:.0f} new calls/s): p50 {result['held_p50']:.1f} ms, "
               f"p95 {result['held_p95']:.1f} ms, p99 {result['held_p99']:.1f} ms, "
               f"max {result['held_max']:.1f} ms\n"
               f"closed loop: {result['calls']} lookups, {args.concurrency} concurrent: "
               f"p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, "
               f"p99 {result['p99']:.1f} ms, max {result['max']:.1f} ms, "
               f"{result['rate']:.0f} lookups/s; one burst of {args.concurrency}: "
               f"p50 {result['burst_p50']:.1f} ms, p99 {result['burst_p99']:.1f} ms")
    print(summary)
    if args.write:
        write_markdown(Path(args.write), args, result, service_ms)
    return 0


def _pool_threads(args) -> str:
    """The DB pool's size as serve() makes it: pool_size() of the benchmark's SQLite."""
    from sqlalchemy import create_engine

    from gateway.daemon.database import pool_size
    n = pool_size(create_engine("sqlite://"))
    return f"{n} thread{'s' if n != 1 else ''} on SQLite"


def write_markdown(path: Path, args, r, service_ms) -> None:
    today = dt.date.today().isoformat()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""# FastAGI caller lookup: benchmark

`bench/agi_bench.py --contacts {args.contacts} --concurrency {args.concurrency} \
--calls {args.calls}`

- date: {today}
- machine: {machine()}
- Python {platform.python_version()}, SQLite {__import__('sqlite3').sqlite_version}, \
database of {args.contacts:,} contacts (a third with an open ticket), WAL
- server: the daemon's FastAGI server and DB pool ({_pool_threads(args)}, as in `helpdesk run`) in its own process on
  127.0.0.1; clients play Asterisk (agi_* header, `200 result=1` to every command)
- a lookup: connect -> header -> caller lookup, call row (and for 10% unknown callers a
  contact and a `call` ticket) committed -> 7-8 `SET VARIABLE` round trips -> close

| load | lookups | p50 | p95 | p99 | max | throughput |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
| **{args.concurrency} calls in progress**, each held {args.hold[0]:g}-{args.hold[1]:g} s \
then hung up (hangup handler AGI too) and the next call placed at once, {args.seconds:g} s \
| {r['held_calls']} | {r['held_p50']:.1f} ms | {r['held_p95']:.1f} ms \
| **{r['held_p99']:.1f} ms** | {r['held_max']:.1f} ms | {r['held_rate']:.0f} new calls/s |
| {args.concurrency} concurrent callers, each calling again at once (closed loop) \
| {r['calls']} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | {r['p99']:.1f} ms \
| {r['max']:.1f} ms | {r['rate']:.0f}/s |
| one lookup alone (in process, no network, serial) | 500 | {service_ms:.1f} ms (mean) \
| | | | |
| one burst: {args.concurrency} calls arriving together | {args.concurrency} \
| {r['burst_p50']:.1f} ms | | {r['burst_p99']:.1f} ms | {r['burst_max']:.1f} ms | |

Budget (README, Budgets): p99 under 20 ms at 50 concurrent calls; Asterisk gives a
FastAGI server 2 s before it gives up.
""")


if __name__ == "__main__":
    sys.exit(main())
