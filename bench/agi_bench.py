"""FastAGI caller lookup in the real daemon: p50/p95/p99 with 50 calls in progress, alone
and while 1,000-text bursts are filed, on SQLite and MariaDB.

    .venv/bin/python bench/agi_bench.py [--contacts 100000] [--concurrency 50]
                     [--seconds 30] [--bursts 3] [--burst 1000] [--calls 2000]
                     [--mysql URL|none] [--source worktree|REV] [--profile DIR]
                     [--write docs/benchmarks-agi.md]

For each database: a fresh one with --contacts contacts (a third with an open ticket,
some owned by one of 20 operators with a softphone), `helpdesk init`, then `helpdesk run`
(the whole daemon: FastAGI, one simulated modem on Gammu's dummy driver, outbox, web) in
its own process on 127.0.0.1. The bench plays Asterisk: each call connects, sends the
agi_* header of an incoming call, answers every command as res_agi does and is timed
from connect to the server closing the connection (the lookup and every SET VARIABLE:
what the caller waits for before anything rings). Then the call is held 1-3 s, 80 % are
answered (the `answered` AGI, MEMBERINTERFACE PJSIP/101), and the hangup handler's AGI
closes it (the other 20 % are missed: a missed-call text is queued). The next call is
placed at once, so --concurrency calls are always in progress (~40x a real arrival rate:
real calls last minutes).

Loads, one after another on the same daemon:
- alone: the calls in progress for --seconds;
- bursts: the same calls going on while --burst texts from new numbers are linked into
  the simulated modem's inbox at once, --bursts times; a lookup counts as "during the
  burst" when it started between the link and the last text filed (inbound row, ticket
  and acknowledgement committed), and as "while the acknowledgements go out" from then
  until the outbox is empty;
- closed loop: --concurrency callers each calling again the moment a lookup ends
  (--calls lookups: throughput; its latency is concurrency / throughput);
- one arrival burst: --concurrency calls in the same instant.

Callers: 90 % known contacts, each number in a random Indonesian form (0812..., 62812...,
+62812..., 0062812...), 10 % unknown numbers (a new contact and call ticket).

--source REV runs the daemon (and builds its database) from `git archive REV` (gateway/
and helpdesk_web/) instead of the working tree, to measure a version before a change in
the same run as after it; `REV+path,path` copies those working-tree files over REV's,
`path=file` that file instead (repeat --source for each version, run in turn).
--profile DIR runs the daemon under two `py-spy record` samplers (root: ptrace), raw
files into DIR: --idle (every thread at every tick: where each one waits) and --gil (only
the thread holding the GIL), and prints how much of the time the GIL was held, by whom. MariaDB: --mysql URL (default $HELPDESK_BENCH_MYSQL_URL, else
mysql+pymysql://root@127.0.0.1:3306/helpdesk_bench) names a database that is emptied and
used; where it cannot be reached, one `not measured:` line and SQLite alone. Loopback only;
every phase has a deadline; every process started here is stopped before it exits.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# --source: the database is built by the code the daemon runs (its migrations)
sys.path.insert(0, os.environ.get("AGI_BENCH_SRC") or str(ROOT))
HELPDESK = str(Path(sys.executable).with_name("helpdesk"))
PY_SPY = str(Path(sys.executable).with_name("py-spy"))
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/helpdesk_bench"
OPERATORS = 20


# -- the database ---------------------------------------------------------------------------
def empty_mysql(url: str) -> None:
    """The database of `url` with no tables (created if missing)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    server = create_engine(parsed.set(database=""))
    with server.begin() as conn:
        conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{parsed.database}` "
                          "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        tables = conn.execute(text("SELECT TABLE_NAME FROM information_schema.TABLES "
                                   "WHERE TABLE_SCHEMA = :db"), {"db": parsed.database}).scalars().all()
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in tables:
            conn.execute(text(f"DROP TABLE IF EXISTS `{parsed.database}`.`{table}`"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    server.dispose()


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
             "created_at": now} for i in range(1, OPERATORS + 1)])
        rows = [{"id": i, "phone": f"+62812{i:08d}", "name": f"Pelanggan {i}",
                 "opted_out": False,
                 "owner_id": rng.choice([None, None, None] + list(range(1, OPERATORS + 1))),
                 "created_at": now, "updated_at": now} for i in range(1, contacts + 1)]
        for start in range(0, len(rows), 10000):
            conn.execute(insert(Contact), rows[start:start + 10000])
        tickets = [{"contact_id": i, "kind": "question", "status": "open", "subject": "",
                    "assignee_id": rng.choice([None] + list(range(1, OPERATORS + 1))),
                    "created_at": now, "updated_at": now}
                   for i in range(1, contacts + 1) if i % 3 == 0]
        for start in range(0, len(tickets), 10000):
            conn.execute(insert(Ticket), tickets[start:start + 10000])
    engine.dispose()


def counts(engine) -> tuple[int, int]:
    """(inbound texts filed, outbound texts not yet sent)."""
    from sqlalchemy import func, select

    from gateway.db.models import Message
    with engine.connect() as conn:
        inbound = conn.execute(select(func.count()).select_from(Message)
                               .where(Message.direction == "in")).scalar()
        waiting = conn.execute(select(func.count()).select_from(Message).where(
            Message.direction == "out", Message.status.in_(("queued", "sending")))).scalar()
    return inbound, waiting


# -- the simulated modem's bursts -----------------------------------------------------------
def burst_files(where: Path, burst: int, n: int) -> Path:
    """n single-part texts from n new numbers, as Gammu backup files, ready to link in."""
    import gammu

    from gateway.modem.simulator import SMSC
    from gateway.sms.encoding import encode

    where.mkdir(parents=True)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(n):
        [part] = encode(f"Halo kak, paket data saya belum masuk, mohon dicek. Ref {burst}-{i}")
        part.update(Number=f"+62813{burst:02d}{i:06d}", DateTime=when, SMSCDateTime=when,
                    State="UnRead", Type="Deliver", Folder=1, InboxFolder=True,
                    SMSC={"Location": 0, "Number": SMSC, "Validity": "NA", "Format": "Text"})
        gammu.SaveSMSBackup(str(where / str(i + 1)), [part])
    return where


def link_in(files: Path, inbox: Path, first_location: int) -> None:
    for name in sorted(os.listdir(files), key=int):
        os.link(files / name, inbox / str(first_location + int(name)))


# -- the daemon -----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(work: Path, url: str, device: Path) -> tuple[Path, int]:
    agi_port = free_port()
    path = work / "helpdesk.toml"
    path.write_text(f"""
[database]
url = "{url}"
[web]
listen = "127.0.0.1:{free_port()}"
secret_file = "{work}/session.key"
[agi]
listen = "127.0.0.1:{agi_port}"
secret_file = "{work}/agi.secret"
[[modem]]
name = "modem1"
connection = "none"
model = "dummy"
device = "{device}"
""")
    return path, agi_port


def source_path(rev: str) -> str | None:
    """A directory with gateway/ and helpdesk_web/ of `rev`, or None for the working tree.
    `REV+path,path`: the working tree's files at those paths copied over REV's (one
    change measured apart from others' unfinished work)."""
    if rev == "worktree":
        return None
    rev, _, overlay = rev.partition("+")
    where = tempfile.mkdtemp(prefix="agi-src-")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "gateway", "helpdesk_web"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
    for name in filter(None, overlay.split(",")):
        name, _, copy_of = name.partition("=")  # path=file: that file's content instead
        (Path(where) / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(copy_of or ROOT / name, Path(where) / name)
    return where


def code_label(rev: str) -> str:
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True,
                              text=True).stdout.strip()
    if rev != "worktree":
        rev, _, overlay = rev.partition("+")
        return (f"commit {git('rev-parse', '--short', rev)} (git archive)"
                + (f" with the working tree's {overlay.replace(',', ', ')}" if overlay else ""))
    dirty = git("status", "--porcelain", "--", "gateway", "helpdesk_web").splitlines()
    return (f"working tree at {git('rev-parse', '--short', 'HEAD')}"
            + (f" + {len(dirty)} uncommitted changes in gateway/, helpdesk_web/" if dirty
               else " (clean)"))


def wait_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"the daemon did not listen on {port} within {timeout} s")


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- Asterisk's side ------------------------------------------------------------------------
SECRET = ""  # read from the agi.secret file `helpdesk init` wrote


def header(script: str, uniqueid: str, callerid: str) -> bytes:
    target = f"{script}?secret={SECRET}"
    lines = ["agi_network: yes", f"agi_network_script: {target}",
             f"agi_request: agi://127.0.0.1:4573/{target}",
             f"agi_channel: PJSIP/trunk-{uniqueid[-8:]}", "agi_language: en",
             "agi_type: PJSIP", f"agi_uniqueid: {uniqueid}", "agi_version: 22.1.1",
             f"agi_callerid: {callerid}", "agi_calleridname: unknown",
             "agi_callingpres: 0", "agi_callingani2: 0", "agi_callington: 0",
             "agi_callingtns: 0", "agi_dnid: 0215550000", "agi_rdnis: unknown",
             "agi_context: helpdesk-incoming", "agi_extension: s", "agi_priority: 6",
             "agi_enhanced: 0.0", "agi_accountcode: ", "agi_threadid: 1"]
    return ("\n".join(lines) + "\n\n").encode()


async def one_agi(port: int, script: str, uniqueid: str, callerid: str,
                  answered: bool = False) -> tuple[float, int]:
    """One AGI session; (seconds from connect to the server's close, commands)."""
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(header(script, uniqueid, callerid))
    commands = 0
    while True:
        line = await reader.readline()
        if not line:
            break
        commands += 1
        if line.startswith(b"GET VARIABLE MEMBERINTERFACE"):
            writer.write(b"200 result=1 (PJSIP/101)\n")
        elif line.startswith(b"GET"):  # unset, as on a call nobody answered
            writer.write(b"200 result=0\n")
        else:
            writer.write(b"200 result=1\n")
    elapsed = time.perf_counter() - start
    writer.close()
    return elapsed, commands


def caller_number(contacts: int) -> str:
    if random.random() < 0.1:
        return f"0857{random.randrange(10**8):08d}"  # a stranger
    national = f"812{random.randint(1, contacts):08d}"
    return random.choice([f"0{national}", f"62{national}", f"+62{national}",
                          f"0062{national}"])


class Callers:
    """`concurrency` calls always in progress until stopped; every lookup is kept as
    (monotonic start, seconds)."""

    def __init__(self, port, contacts, concurrency, hold, tag):
        self.port, self.contacts, self.concurrency, self.hold = port, contacts, concurrency, hold
        self.tag, self.n = tag, iter(range(10**9))
        self.lookups: list[tuple[float, float]] = []
        self.failed = 0
        self.stopping = False

    async def caller(self):
        # the calls start spread over one hold time, as calls in progress do (50 calls
        # arriving in the same instant are measured apart)
        await asyncio.sleep(random.uniform(0, self.hold[1]))
        while not self.stopping:
            uniqueid = f"{self.tag}.{next(self.n)}"
            number = caller_number(self.contacts)
            started = time.monotonic()
            elapsed, commands = await one_agi(self.port, "incoming", uniqueid, number)
            if commands < 6:
                self.failed += 1
            self.lookups.append((started, elapsed))
            await asyncio.sleep(random.uniform(*self.hold))
            if random.random() < 0.8:
                await one_agi(self.port, "answered", uniqueid, number)
            await one_agi(self.port, "hangup", uniqueid, number)

    async def run(self):
        await asyncio.gather(*(self.caller() for _ in range(self.concurrency)))


async def closed_loop(port, contacts, concurrency, calls, tag):
    latencies = []
    counter = iter(range(calls))

    async def worker():
        for n in counter:
            elapsed, _ = await one_agi(port, "incoming", f"{tag}.{n}", caller_number(contacts))
            latencies.append(elapsed)
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - t0


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def stats(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99),
            "max": max(ms)}


# -- one database ---------------------------------------------------------------------------
async def phases(args, port, engine, inbox, work, tag) -> dict:
    result = {}
    loop = asyncio.get_running_loop()
    await closed_loop(port, args.contacts, 10, 200, f"{tag}w")  # warm-up
    callers = Callers(port, args.contacts, args.concurrency, tuple(args.hold), f"{tag}a")
    task = asyncio.ensure_future(callers.run())
    await asyncio.sleep(args.seconds)
    callers.stopping = True
    await task
    alone = callers.lookups
    result["alone"] = stats([s for _, s in alone]) | {"rate": len(alone) / args.seconds,
                                                      "failed": callers.failed}

    callers = Callers(port, args.contacts, args.concurrency, tuple(args.hold), f"{tag}b")
    task = asyncio.ensure_future(callers.run())
    windows, sending, filing_s = [], [], []
    filed_before, _ = await loop.run_in_executor(None, counts, engine)
    for b in range(args.bursts):
        files = await loop.run_in_executor(None, burst_files, work / f"burst{b}", b, args.burst)
        await asyncio.sleep(2)
        target = filed_before + args.burst
        t0 = time.monotonic()
        await loop.run_in_executor(None, link_in, files, inbox, 0)
        deadline = t0 + 180
        while True:
            filed, waiting = await loop.run_in_executor(None, counts, engine)
            if filed >= target or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        t1 = time.monotonic()
        while waiting and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            _, waiting = await loop.run_in_executor(None, counts, engine)
        t2 = time.monotonic()
        if filed < target:
            raise TimeoutError(f"burst {b}: {filed - filed_before} of {args.burst} filed in 180 s")
        filed_before = filed
        windows.append((t0, t1))
        sending.append((t1, t2))
        filing_s.append(t1 - t0)
        print(f"  burst {b + 1}: {args.burst} texts filed in {t1 - t0:.2f} s, "
              f"acknowledgements sent {t2 - t1:.2f} s later", flush=True)
    await asyncio.sleep(1)
    callers.stopping = True
    await task

    def within(spans):
        return [s for start, s in callers.lookups if any(a <= start < b for a, b in spans)]
    result["burst"] = stats(within(windows)) | {"filing_s": filing_s, "failed": callers.failed}
    result["sending"] = stats(within(sending))

    lat, wall = await closed_loop(port, args.contacts, args.concurrency, args.calls, f"{tag}c")
    result["closed"] = stats(lat) | {"rate": len(lat) / wall}
    lat, _ = await closed_loop(port, args.contacts, args.concurrency, args.concurrency, f"{tag}d")
    result["arrival"] = stats(lat)
    return result


def bench_database(args, backend: str, url: str, src: str | None, label: str) -> dict:
    from sqlalchemy import create_engine

    from gateway.config import ModemConfig, dummy_inbox
    from gateway.db.engine import make_engine

    global SECRET
    work = Path(tempfile.mkdtemp(prefix=f"agi-bench-{backend}-"))
    if backend == "mariadb":
        empty_mysql(url)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--build", url, str(args.contacts)], check=True,
                   env={**os.environ, "AGI_BENCH_SRC": src or ""}, timeout=600)
    print(f"[{label} {backend}] database of {args.contacts:,} contacts built in "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    device = work / "modem"
    inbox = dummy_inbox(ModemConfig("modem1", {"Device": str(device)}))
    inbox.mkdir(parents=True)
    config, port = write_config(work, url, device)
    env = {**os.environ, "HELPDESK_LOG_LEVEL": "WARNING"}
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run([HELPDESK, "--config", str(config), "init"], check=True, env=env,
                   capture_output=True, timeout=120)
    SECRET = (work / "agi.secret").read_text().strip()
    argv = [HELPDESK, "--config", str(config), "run"]
    profiles = []
    if args.profile:
        for mode in ("idle", "gil"):
            out = Path(args.profile) / f"{backend}-{label}-{mode}.txt"
            profiles.append(out)
        argv = [PY_SPY, "record", "--threads", "--rate", "200", "--format", "raw",
                "--idle", "--nonblocking", "--output", str(profiles[0]), "--", *argv]
    log = open(work / "daemon.log", "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    log.close()
    gil = None
    engine = (make_engine(url) if backend == "sqlite" else create_engine(
        make_engine(url).url, isolation_level="READ COMMITTED"))
    try:
        wait_port(port, proc, 60)
        if args.profile:  # a second sampler that sees only the GIL's holder
            daemon_pid = _python_child(proc.pid)
            gil = subprocess.Popen([PY_SPY, "record", "--threads", "--rate", "200", "--gil",
                                    "--format", "raw", "--nonblocking", "--output",
                                    str(profiles[1]), "--pid", str(daemon_pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        result = asyncio.run(asyncio.wait_for(
            phases(args, port, engine, inbox, work, f"{backend}{int(time.time())}"),
            args.max_seconds))
    finally:
        if gil is not None:
            stop(gil, signal.SIGINT)
        stop(proc, signal.SIGINT if args.profile else signal.SIGTERM)
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    if args.profile:
        time.sleep(1)  # py-spy writes its file as it exits
        print(f"  py-spy {profiles[0]}, {profiles[1]}: {gil_shares(*profiles)}")
    return result


def _python_child(pid: int) -> int:
    """The daemon under py-spy: py-spy's child process."""
    for _ in range(50):
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.1)
    return pid


def samples_per_thread(path: Path) -> collections.Counter:
    """Samples per thread name in a py-spy raw file (`thread (id): name;frame;... n`)."""
    per = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        per[stack.split(";", 1)[0].split(": ", 1)[-1]] += int(n)
    return per


def gil_shares(idle: Path, gil: Path) -> str:
    """How much of the time the GIL was held, and by which threads: the --idle file
    samples every thread at every tick (so its busiest count is the ticks), the --gil
    file only the thread holding the GIL."""
    try:
        ticks = max(samples_per_thread(idle).values())
        held = samples_per_thread(gil)
    except (OSError, ValueError):
        return "no samples"
    return (f"GIL held {sum(held.values()) / ticks:.0%} of {ticks} ticks: "
            + ", ".join(f"{k} {v / ticks:.0%}" for k, v in held.most_common(6)))


# -- the page -------------------------------------------------------------------------------
def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"nproc {len(os.sched_getaffinity(0))}, {model}"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def row(what, r, extra=""):
    if not r.get("n"):
        return f"| {what} | 0 | | | | | {extra} |"
    return (f"| {what} | {r['n']} | {r['p50']:.1f} ms | {r['p95']:.1f} ms | "
            f"**{r['p99']:.1f} ms** | {r['max']:.1f} ms | {extra} |")


def table(args, results: dict) -> str:
    lines = ["| database, code | load | lookups | p50 | p95 | p99 | max | |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for (backend, label), r in results.items():
        who = f"{backend}, {label}"
        filing = ", ".join(f"{s:.1f}" for s in r["burst"]["filing_s"])
        lines += [
            f"| {who} " + row(f"{args.concurrency} calls in progress, alone", r["alone"],
                              f"{r['alone']['rate']:.0f} new calls/s"),
            f"| {who} " + row(f"the same, {args.bursts} bursts of {args.burst:,} texts being "
                              "filed", r["burst"], f"each filed in {filing} s"),
            f"| {who} " + row("the same, while the bursts' acknowledgements go out",
                              r["sending"]),
            f"| {who} " + row(f"closed loop, {args.concurrency} callers", r["closed"],
                              f"{r['closed']['rate']:.0f} lookups/s"),
            f"| {who} " + row(f"{args.concurrency} calls arriving at once", r["arrival"]),
        ]
    return "\n".join(lines)


def write_markdown(path: Path, args, results, started, labels) -> None:
    import sqlite3
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""# FastAGI caller lookup: benchmark

`bench/agi_bench.py --contacts {args.contacts} --concurrency {args.concurrency} \
--seconds {args.seconds:g} --bursts {args.bursts} --burst {args.burst} --calls {args.calls}`

- date: {started}
- machine: {machine()}; load average {load()} at the end (other work on the machine
  shares these cores)
- code: {"; ".join(labels)}
- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {args.contacts:,}
  contacts (a third with an open ticket)
- the daemon: `helpdesk run` (FastAGI, simulated modem, outbox, web) on 127.0.0.1; a
  lookup is timed from connect to the server closing the AGI connection

{table(args, results)}

Budget (README, Budgets): p99 under 20 ms at 50 concurrent calls, also while a
1,000-text burst is filed; Asterisk gives a FastAGI server 2 s before it gives up.
""")


def summary_lines(args, backend, label, r) -> list[str]:
    a, b, s, c = r["alone"], r["burst"], r["sending"], r["closed"]

    def f(x):
        return (f"p50 {x['p50']:.1f} ms, p95 {x['p95']:.1f} ms, p99 {x['p99']:.1f} ms, "
                f"max {x['max']:.1f} ms" if x.get("n") else "no lookups")
    return [
        f"[{label} {backend}] {args.concurrency} calls in progress: {a['n']} lookups "
        f"({a['rate']:.0f} new calls/s): {f(a)}",
        f"[{label} {backend}] during {args.bursts} bursts of {args.burst} texts: {b['n']} "
        f"lookups: {f(b)}; filed in {', '.join(f'{x:.2f}' for x in b['filing_s'])} s",
        f"[{label} {backend}] while acknowledgements go out: {s['n']} lookups: {f(s)}",
        f"[{label} {backend}] closed loop: {c['n']} lookups, {c['rate']:.0f}/s: {f(c)}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--calls", type=int, default=2000, help="closed-loop lookups")
    parser.add_argument("--seconds", type=float, default=30,
                        help="how long the calls in progress run alone")
    parser.add_argument("--hold", type=float, nargs=2, default=(1.0, 3.0),
                        metavar=("MIN", "MAX"), help="seconds each call is held")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--burst", type=int, default=1000, help="texts in each burst")
    parser.add_argument("--mysql", metavar="URL|none",
                        default=os.environ.get("HELPDESK_BENCH_MYSQL_URL", DEFAULT_MYSQL_URL))
    parser.add_argument("--source", action="append", metavar="worktree|REV",
                        help="the code the daemon runs (repeatable: each in turn)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy profiles into DIR")
    parser.add_argument("--max-seconds", type=float, default=600, help="per database")
    parser.add_argument("--write", metavar="MARKDOWN")
    parser.add_argument("--build", nargs=2, metavar=("URL", "CONTACTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_db(args.build[0], int(args.build[1]))
        return 0
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    backends = [("sqlite", None)]
    if args.mysql != "none":
        try:
            import pymysql  # noqa: F401
            from sqlalchemy import create_engine
            from sqlalchemy.engine import make_url
            create_engine(make_url(args.mysql).set(database="")).connect().close()
            backends.append(("mariadb", args.mysql))
        except Exception as e:
            print(f"not measured: lookups on MariaDB: {args.mysql} cannot be reached: "
                  f"{str(e).splitlines()[0][:160]}")
    else:
        print("not measured: lookups on MariaDB: no MariaDB given (--mysql none)")
    results, labels = {}, []
    for rev in args.source or ["worktree"]:
        src = source_path(rev)
        label = "now" if rev == "worktree" else rev.split("+")[0] + ("+" if "+" in rev else "")
        if any(label == known for _, known in results):  # the same version again
            label += f" #{sum(known.startswith(label) for _, known in results) + 1}"
        labels.append(f"{label}: {code_label(rev)}")
        for backend, url in backends:
            where = None
            if url is None:
                where = tempfile.mkdtemp(prefix="agi-db-")
                url = f"sqlite:///{where}/bench.db"
            try:
                r = bench_database(args, backend, url, src, label)
            finally:
                if where:
                    shutil.rmtree(where, ignore_errors=True)
            results[(backend, label)] = r
            for line in summary_lines(args, backend, label, r):
                print(line, flush=True)
        if src:
            shutil.rmtree(src, ignore_errors=True)
    # the lines bench/run_all.py reads: the first database's figures
    first = next(iter(results.values()))
    a, c = first["alone"], first["closed"]
    print(f"{args.concurrency} calls in progress: {a['n']} lookups: p50 {a['p50']:.1f} ms, "
          f"p95 {a['p95']:.1f} ms, p99 {a['p99']:.1f} ms; during the bursts p99 "
          f"{first['burst'].get('p99', float('nan')):.1f} ms")
    print(f"closed loop: {c['n']} lookups, {c['rate']:.0f}/s, p99 {c['p99']:.1f} ms")
    print(table(args, results))
    if args.write:
        write_markdown(Path(args.write), args, results, started, labels)
    failed = sum(r["alone"]["failed"] + r["burst"]["failed"] for r in results.values())
    if failed:
        print(f"{failed} lookups got fewer than 6 commands: the lookup failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
