"""Benchmark of the SMS spine: new SMS -> ticket latency, 1,000-SMS burst, gammu-smsd baseline.

Run:  .venv/bin/python bench/spine_bench.py [--no-doc] [--keep] [--mysql URL|none]
                                           [--burst N] [--probes N]

What it measures, in one run (see docs/benchmarks.md for the write-up):

1. Latency, SQLite, default poll_interval (0.5 s): 20 probes, each a text from a new
   number written with gateway.modem.simulator.inject (in-process); the clock starts right after the
   backup file is linked into the simulated modem's inbox and stops when the ticket is
   seen in GET /api/v1/tickets (polled every 5 ms). Probes are ~1.3 s apart so they land
   at random phases of the poll interval.
2. Burst: 1,000 texts (1,000 different numbers) queued in the simulated modem's inbox
   before `helpdesk run` starts; wall time from process start until the database holds
   1,000 inbound messages, 1,000 tickets and 1,000 acknowledgements (queued, sending or
   sent), and the time from the first stored message to the last. SQLite and MariaDB.
   The daemon's VmRSS is read after each burst.
3. gammu-smsd 1.42 (SQL service, native_mysql driver) storing the same 1,000 backup
   files from the same kind of dummy device into MariaDB: wall time from process start
   until its `inbox` table holds 1,000 rows; the stored texts are checked.

Only 127.0.0.1 is used; every process started here is stopped before the script exits;
every phase has a deadline.

MariaDB: --mysql URL (default $HELPDESK_BENCH_MYSQL_URL, else
mysql+pymysql://root@127.0.0.1:3306/helpdesk_bench) names one database, which the MariaDB
burst and gammu-smsd use in turn: it is emptied before each and left empty at the end
(dropped if this script created it). Where MariaDB is not reachable (or --mysql none) or
gammu-smsd is not installed, the script prints one `not measured: <what>: <why>` line per
part it cannot run and measures the rest. docs/benchmarks.md and bench/results/ are
written only by a run of every part at the default sizes (--burst 1000, --probes 20).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import gammu
import pymysql
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent


def _source_from_argv() -> tuple[str, str | None]:
    """--source worktree|REV, read before the project is imported.

    worktree (default): the code the venv imports (/work/main as it is now, edits and all).
    REV (for example HEAD): `git archive REV` of gateway/ and helpdesk_web/ into a temporary
    directory, put first on sys.path and on PYTHONPATH for every helpdesk process, so the
    figures belong to one known version even while the working tree is being edited.
    """
    rev = "worktree"
    for i, arg in enumerate(sys.argv):
        if arg == "--source" and i + 1 < len(sys.argv):
            rev = sys.argv[i + 1]
        elif arg.startswith("--source="):
            rev = arg.split("=", 1)[1]
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    if rev == "worktree":
        sys.path.append(str(REPO))
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "gateway", "helpdesk_web"],
                               capture_output=True, text=True).stdout.splitlines()
        label = f"working tree at {head}" + (f" + {len(dirty)} uncommitted changes in gateway/ "
                                             "and helpdesk_web/" if dirty else " (clean)")
        return label, None
    commit = subprocess.run([*git, "rev-parse", "--short", rev], capture_output=True, text=True,
                            check=True).stdout.strip()
    where = tempfile.mkdtemp(prefix="spine-src-")
    archive = subprocess.run([*git, "archive", commit, "gateway", "helpdesk_web"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", where], input=archive, check=True)
    sys.path.insert(0, where)
    os.environ["PYTHONPATH"] = where + os.pathsep + os.environ.get("PYTHONPATH", "")
    return f"commit {commit} (git archive; working tree edits excluded)", where


SOURCE_LABEL, SOURCE_DIR = _source_from_argv()

from gateway.config import ModemConfig, dummy_inbox  # noqa: E402
from gateway.db.models import Message, Ticket  # noqa: E402
from gateway.modem import simulator as sim  # noqa: E402
from gateway.sms.encoding import encode  # noqa: E402

HELPDESK = str(Path(sys.executable).with_name("helpdesk"))
GAMMU_SMSD = "/usr/bin/gammu-smsd"
SMSD_SQL = "/usr/share/doc/gammu-smsd/examples/mysql.sql"
DEFAULT_MYSQL_URL = "mysql+pymysql://root@127.0.0.1:3306/helpdesk_bench"
# Set by use_mysql() from --mysql: pymysql.connect() arguments and the one database that
# the MariaDB burst and then gammu-smsd use (emptied before each phase).
MYSQL: dict = {}
MYSQL_URL = None
HELPDESK_DB = SMSD_DB = None
MYSQL_DB_CREATED = False  # the database did not exist before this run: drop it at the end
MYSQL_DB_USED = False     # a phase emptied it: empty it again at the end

BURST = 1000
PROBES = 20
PROBE_SPACING = 1.3
API_POLL = 0.005
DB_POLL = 0.01

PROCS: list[subprocess.Popen] = []
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"
RUN_ALL_BEGIN = "<!-- bench/run_all.py: begin -->"  # the markers of bench/run_all.py's section
RUN_ALL_END = "<!-- bench/run_all.py: end -->"


# -- small helpers ------------------------------------------------------------------------
def use_mysql(url: str) -> None:
    global MYSQL_URL, HELPDESK_DB, SMSD_DB
    parsed = make_url(url)
    MYSQL.clear()
    MYSQL.update(host=parsed.host or "127.0.0.1", port=parsed.port or 3306,
                 user=parsed.username or "root", password=parsed.password or "")
    HELPDESK_DB = SMSD_DB = parsed.database or "helpdesk_bench"
    MYSQL_URL = parsed.set(drivername="mysql+pymysql", database=HELPDESK_DB)


def missing_requirements(mysql_url: str | None) -> dict:
    """What is not there, by part: {"mariadb": why, "gammu-smsd": why}."""
    missing = {}
    if mysql_url is None:
        missing["mariadb"] = "no MariaDB given (--mysql none)"
    else:
        try:
            mysql_admin("SELECT 1")
        except pymysql.MySQLError as e:
            missing["mariadb"] = (f"MariaDB not reachable at {MYSQL['host']}:{MYSQL['port']} "
                                  f"as {MYSQL['user']} ({e.args[-1] if e.args else e})")
    if not (os.access(GAMMU_SMSD, os.X_OK) and os.path.isfile(SMSD_SQL)):
        missing["gammu-smsd"] = (f"{GAMMU_SMSD} not installed (apt-get install gammu-smsd)")
    elif "mariadb" in missing:
        missing["gammu-smsd"] = "its SQL service needs MariaDB: " + missing["mariadb"]
    return missing


def empty_database(name: str) -> None:
    """The database `name` with no tables (created if missing; never dropped, so its
    character set, collation and grants stay as they are)."""
    global MYSQL_DB_CREATED, MYSQL_DB_USED
    MYSQL_DB_USED = True
    exists = mysql_admin("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                         args=(name,))
    if not exists:
        mysql_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        MYSQL_DB_CREATED = True
        return
    tables = [row[0] for row in mysql_admin(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", args=(name,))]
    if tables:
        mysql_admin("SET FOREIGN_KEY_CHECKS = 0",
                    *[f"DROP TABLE IF EXISTS `{t}`" for t in tables], database=name)


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k]


def write_config(work: Path, db_url: str, modem_dir: Path) -> tuple[Path, int]:
    """A config without [sms] poll_interval, so the default (0.5 s) applies."""
    port = free_port()
    path = work / "helpdesk.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[web]
listen = "127.0.0.1:{port}"
secret_file = "{work}/session.key"
[agi]
listen = "127.0.0.1:{free_port()}"
secret_file = "{work}/agi.secret"
[[modem]]
name = "modem1"
connection = "none"
model = "dummy"
device = "{modem_dir}"
""")
    return path, port


def helpdesk(config, *args) -> str:
    done = subprocess.run([HELPDESK, "--config", str(config), *args], capture_output=True,
                          text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"helpdesk {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def start(argv, logfile: Path, env=None) -> subprocess.Popen:
    out = open(logfile, "ab")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    out.close()
    PROCS.append(proc)
    return proc


def stop(proc: subprocess.Popen, sig=signal.SIGTERM, grace=15.0):
    """Signal the process group started for `proc` (its own session), then wait."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        except ProcessLookupError:
            pass
    try:  # anything left in the group (py-spy's child) goes too
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc in PROCS:
        PROCS.remove(proc)


def rss_kib(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def api(port, path, token):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def wait_until(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ConnectionError, urllib.error.URLError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def mysql_admin(*statements, database=None, args=None):
    conn = pymysql.connect(**MYSQL, database=database, autocommit=True, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, args)
            return cur.fetchall()
    finally:
        conn.close()


def modem(device: Path) -> ModemConfig:
    return ModemConfig("modem1", {"Device": str(device), "Connection": "none", "Model": "dummy"})


def burst_number(i: int) -> str:
    return f"+62812{70000000 + i:08d}"


def burst_text(i: int) -> str:
    return f"Halo kak, paket data saya belum masuk dari tadi pagi, mohon dicek ya. Ref {i:04d}"


# -- the 1,000 backup files ---------------------------------------------------------------
def write_deliver_backup(inbox: Path, location: int, number: str, text: str, when) -> None:
    """One inbound SMS as a Gammu backup file, as gateway.modem.simulator.inject writes it, except that
    the PDU type is Deliver (what a modem holds for a received text).

    gateway.modem.simulator.inject sets the key "PDU", which python-gammu ignores; the type stays the
    "Submit" that gammu.EncodeSMS returns, so its files say `PDU = Submit`. The helpdesk
    reads those, but gammu-smsd's SQL backend stores only Deliver PDUs and silently drops
    (reads and deletes) anything else; see check_smsd_reads_sim_inject().
    """
    [part] = encode(text)
    part.update(Number=number, DateTime=when, SMSCDateTime=when, State="UnRead",
                SMSC={"Location": 0, "Number": sim.SMSC, "Validity": "NA", "Format": "Text"},
                Type="Deliver", Folder=1, InboxFolder=True)
    gammu.SaveSMSBackup(str(inbox / str(location)), [part])


def make_burst_template(work: Path) -> Path:
    """1,000 single-part texts from 1,000 numbers, written once with python-gammu."""
    device = work / "burst-template"
    inbox = dummy_inbox(modem(device))
    inbox.mkdir(parents=True)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for i in range(BURST):
        write_deliver_backup(inbox, i + 1, burst_number(i), burst_text(i), when)
    assert len(os.listdir(inbox)) == BURST, "expected one file per text"
    return device


def fresh_device(template: Path, where: Path) -> Path:
    shutil.copytree(template, where)
    return where


# -- 1. latency -----------------------------------------------------------------------------
def bench_latency(work: Path) -> dict:
    work = work / "latency"
    work.mkdir()
    device = work / "modem"
    dummy_inbox(modem(device)).mkdir(parents=True)
    config, port = write_config(work, f"sqlite:///{work}/helpdesk.db", device)
    helpdesk(config, "init")
    token = helpdesk(config, "token", "create", "bench").strip().split()[-1]
    proc = start([HELPDESK, "--config", str(config), "run"], work / "daemon.log",
                 env={"HELPDESK_LOG_LEVEL": "WARNING"})
    try:
        wait_until(lambda: api(port, "/api/v1/health", token)["modems"][0]["status"] == "up",
                   30, "the simulated modem to be up")
        time.sleep(2.0)  # let start-up work settle
        stamps: list[float] = []
        real_link = os.link

        def link_and_stamp(*a, **k):
            real_link(*a, **k)
            stamps.append(time.monotonic())

        latencies, polls = [], []
        next_at = time.monotonic()
        for i in range(PROBES):
            number = f"+62813{50000000 + i:08d}"
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
            stamps.clear()
            os.link = link_and_stamp
            try:
                sim.inject(modem(device), number, f"Paket data belum masuk dari pagi (uji latensi {i})")
            finally:
                os.link = real_link
            t0 = stamps[0]
            next_at = t0 + PROBE_SPACING + random.uniform(-0.15, 0.15)
            n = 0
            deadline = t0 + 15
            while True:
                n += 1
                items = api(port, "/api/v1/tickets?limit=5", token)["items"]
                if any((t.get("contact") or {}).get("phone") == number for t in items):
                    latencies.append(time.monotonic() - t0)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"probe {i}: no ticket after 15 s")
                time.sleep(API_POLL)
            polls.append(n)
            log(f"latency probe {i + 1:2d}: {latencies[-1] * 1000:7.1f} ms ({n} API polls)")
        rss = rss_kib(proc.pid)
    finally:
        stop(proc)
    ms = [x * 1000 for x in latencies]
    return {"probes": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "max_ms": max(ms),
            "min_ms": min(ms), "mean_ms": statistics.mean(ms), "all_ms": ms,
            "rss_kib": rss}


# -- 2. burst through the helpdesk -----------------------------------------------------------
PROFILE_DIR: Path | None = None  # --profile: run the burst daemons under py-spy
TRACE_DIR: Path | None = None    # --trace: run them under bench/burst_trace.py


def summarise_trace(path: Path, t_start: float) -> dict:
    """Per step: calls, summed time, and the inbound critical path batch by batch."""
    spans = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    by_fn: dict[str, list] = {}
    for s in spans:
        by_fn.setdefault(s["fn"], []).append(s)
    steps = {fn: {"calls": len(v), "total_s": round(sum(s["t1"] - s["t0"] for s in v), 3),
                  "max_ms": round(1000 * max(s["t1"] - s["t0"] for s in v), 1)}
             for fn, v in by_fn.items()}
    proc0 = by_fn["process_start"][0]["t0"]
    batches = [{"at_s": round(s["t0"] - proc0, 3), "n": s.get("n"),
                "store_ms": round(1000 * (s["t1"] - s["t0"]), 1)}
               for s in by_fn.get("store_batch", [])]
    reads = by_fn.get("_read_inbox", [])
    sends = by_fn.get("mark_sent", [])
    return {"steps": steps, "batches": batches,
            "first_read_at_s": round(reads[0]["t0"] - proc0, 3) if reads else None,
            "python_start_s": round(proc0 - t_start, 3),
            "mark_sent_during_inbound": sum(
                1 for s in sends if by_fn.get("store_batch")
                and s["t0"] < by_fn["store_batch"][-1]["t1"])}


def bench_burst(work: Path, template: Path, backend: str) -> dict:
    work = work / f"burst-{backend}"
    work.mkdir()
    device = fresh_device(template, work / "modem")
    if backend == "sqlite":
        url = f"sqlite:///{work}/helpdesk.db"
    else:
        empty_database(HELPDESK_DB)
        url = MYSQL_URL.render_as_string(hide_password=False)
    config, port = write_config(work, url, device)
    helpdesk(config, "init")
    engine = create_engine(url if backend == "sqlite"
                           else MYSQL_URL.update_query_dict({"charset": "utf8mb4"}))
    q_in = select(func.count()).select_from(Message).where(Message.direction == "in")
    q_tickets = select(func.count()).select_from(Ticket)
    q_acks = select(func.count()).select_from(Message).where(
        Message.direction == "out", Message.status.in_(("queued", "sending", "sent")))
    q_sent = select(func.count()).select_from(Message).where(
        Message.direction == "out", Message.status == "sent")

    argv = [HELPDESK, "--config", str(config), "run"]
    if TRACE_DIR:
        trace = TRACE_DIR / f"burst-{backend}.jsonl"
        argv = [sys.executable, str(REPO / "bench" / "burst_trace.py"), "--config", str(config),
                "--trace", str(trace)]
    elif PROFILE_DIR:
        out = PROFILE_DIR / f"burst-{backend}.collapsed"
        argv = [str(Path(sys.executable).with_name("py-spy")), "record", "--idle", "--threads",
                "--rate", "250", "--format", "raw", "--output", str(out), "--", *argv]
    t_start = time.monotonic()
    proc = start(argv, work / "daemon.log", env={"HELPDESK_LOG_LEVEL": "WARNING"})
    first_in = last_in = done_at = all_sent_at = None
    counts = {}
    samples = []  # (t, inbound) to see the batch rhythm
    deadline = t_start + 180
    try:
        with engine.connect() as conn:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {proc.returncode}; see {work}/daemon.log")
                try:
                    n_in = conn.execute(q_in).scalar()
                    conn.rollback()  # a fresh snapshot for each poll
                except Exception:  # schema not readable for a moment: try again
                    conn.rollback()
                    time.sleep(DB_POLL)
                    continue
                now = time.monotonic()
                if n_in and first_in is None:
                    first_in = now
                if n_in >= BURST and last_in is None:
                    last_in = now
                if not samples or samples[-1][1] != n_in:
                    samples.append((now - t_start, n_in))
                if last_in is not None and done_at is None:
                    n_t = conn.execute(q_tickets).scalar()
                    n_a = conn.execute(q_acks).scalar()
                    conn.rollback()
                    counts = {"inbound": n_in, "tickets": n_t, "acks": n_a}
                    if n_t >= BURST and n_a >= BURST:
                        done_at = now
                if done_at is not None:
                    n_s = conn.execute(q_sent).scalar()
                    conn.rollback()
                    counts["sent"] = n_s
                    if n_s >= BURST:
                        all_sent_at = now
                        break
                time.sleep(DB_POLL)
            # database-side view: created_at of the inbound rows (batch start times)
            first_db, last_db = conn.execute(select(func.min(Message.created_at),
                                                    func.max(Message.created_at))
                                             .where(Message.direction == "in")).one()
            conn.rollback()
        rss = rss_kib(proc.pid) if proc.poll() is None and not PROFILE_DIR else {}
        # What the burst left: every inbound text right, every number a ticket.
        with engine.connect() as conn:
            wrong = conn.execute(select(func.count()).select_from(Message).where(
                Message.direction == "in", Message.text.not_like("Halo kak, paket data%"))).scalar()
            files_left = len(os.listdir(dummy_inbox(modem(device))))
    finally:
        stop(proc, sig=signal.SIGINT if PROFILE_DIR else signal.SIGTERM)
        engine.dispose()
    if done_at is None:
        raise TimeoutError(f"burst on {backend} not done in 180 s: {counts}")
    result = {
        "backend": backend,
        "wall_to_tickets_and_acks_s": done_at - t_start,
        "process_start_to_first_stored_s": first_in - t_start,
        "first_to_last_stored_s": last_in - first_in,
        "first_to_last_created_at_s": (last_db - first_db).total_seconds(),
        "wall_to_all_acks_sent_s": (all_sent_at - t_start) if all_sent_at else None,
        "counts": counts, "wrong_texts": wrong, "inbox_files_left": files_left,
        "rss_kib": rss, "progress": samples,
    }
    log(f"burst {backend}: {json.dumps({k: v for k, v in result.items() if k != 'progress'})}")
    if TRACE_DIR:
        result["trace"] = summarise_trace(trace, t_start)
        log(f"trace {backend}: {json.dumps(result['trace'], indent=1)}")
    return result


# -- 3. gammu-smsd on the same files -----------------------------------------------------------
def smsd_setup(work: Path, device: Path) -> Path:
    """A fresh smsd_bench database with gammu-smsd's own schema, and its config file."""
    empty_database(SMSD_DB)
    statements = [s.strip() for s in Path(SMSD_SQL).read_text().split(";")]
    mysql_admin(*[s for s in statements
                  if s and not all(line.startswith("--") or not line.strip()
                                   for line in s.splitlines())], database=SMSD_DB)
    config = work / "smsdrc"
    # Defaults everywhere except: no PIN/battery/signal polling (a dummy has none), no
    # call handling, no status refresh and no sending (nothing is queued to send anyway).
    config.write_text(f"""[gammu]
device = {device}
connection = none
model = dummy

[smsd]
service = sql
driver = native_mysql
host = {MYSQL["host"]}{"" if MYSQL["port"] == 3306 else ":%d" % MYSQL["port"]}
user = {MYSQL["user"]}
password = {MYSQL["password"]}
database = {SMSD_DB}
logfile = {work / "smsd.log"}
debuglevel = 0
checksecurity = 0
checkbattery = 0
checksignal = 0
hangupcalls = 0
statusfrequency = 0
send = 0
""")
    return config


def bench_smsd(work: Path, template: Path) -> dict:
    work = work / "smsd"
    work.mkdir()
    device = fresh_device(template, work / "modem")
    config = smsd_setup(work, device)
    conn = pymysql.connect(**MYSQL, database=SMSD_DB, autocommit=True)
    t_start = time.monotonic()
    proc = start([GAMMU_SMSD, "-c", str(config)], work / "smsd.stdout")
    first = last = None
    samples = []
    deadline = t_start + 120
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"gammu-smsd exited with {proc.returncode}; see {work}")
                cur.execute("SELECT COUNT(*) FROM inbox")
                n = cur.fetchone()[0]
                now = time.monotonic()
                if n and first is None:
                    first = now
                if not samples or samples[-1][1] != n:
                    samples.append((now - t_start, n))
                if n >= BURST:
                    last = now
                    break
                time.sleep(DB_POLL)
            # Did 1.42's dummy driver read python-gammu 1.45's files right?
            cur.execute("SELECT SenderNumber, TextDecoded FROM inbox")
            rows = cur.fetchall()
    finally:
        stop(proc)
        conn.close()
    if last is None:
        raise TimeoutError(f"gammu-smsd stored only {samples[-1][1] if samples else 0} texts "
                           f"in 120 s; see {work}/smsd.log")
    expected = {burst_number(i): burst_text(i) for i in range(BURST)}
    matching = sum(1 for number, text in rows if expected.get(number) == text)
    result = {"wall_to_1000_rows_s": last - t_start, "process_start_to_first_row_s": first - t_start,
              "first_to_last_row_s": last - first, "rows": len(rows), "rows_matching": matching,
              "sample_row": list(rows[0]) if rows else None, "progress": samples}
    log(f"gammu-smsd: {json.dumps({k: v for k, v in result.items() if k != 'progress'})}")
    return result


def check_smsd_reads_sim_inject(work: Path) -> dict:
    """Feed gammu-smsd three files written by gateway.modem.simulator.inject itself (PDU = Submit)."""
    work = work / "smsd-sim-inject"
    work.mkdir()
    device = work / "modem"
    for i in range(3):
        sim.inject(modem(device), burst_number(i), burst_text(i))
    config = smsd_setup(work, device)
    inbox = dummy_inbox(modem(device))
    proc = start([GAMMU_SMSD, "-c", str(config)], work / "smsd.stdout")
    try:
        wait_until(lambda: not os.listdir(inbox), 30, "gammu-smsd to take the files")
        time.sleep(1.0)
        rows = mysql_admin("SELECT COUNT(*) FROM inbox", database=SMSD_DB)[0][0]
    finally:
        stop(proc)
    result = {"files": 3, "files_taken_off_the_modem": 3, "inbox_rows": rows}
    log(f"gammu-smsd on sim.inject files: {result}")
    return result


# -- machine and versions --------------------------------------------------------------------
def machine(missing: dict) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo")
                   if line.startswith("MemTotal:"))
    osr = dict(line.rstrip("\n").split("=", 1) for line in open("/etc/os-release") if "=" in line)
    smsd = ("" if not os.access(GAMMU_SMSD, os.X_OK) else
            subprocess.run([GAMMU_SMSD, "--version"], capture_output=True, text=True).stdout)
    return {
        "date": subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip(),
        "nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kib / 1024 / 1024, 1),
        "os": osr.get("PRETTY_NAME", "").strip('"'), "kernel": platform.release(),
        "python": platform.python_version(),
        "gammu_smsd": smsd.splitlines()[0].strip() if smsd else "gammu-smsd not installed",
        "python_gammu": "python-gammu %s (libGammu %s)" % (gammu.Version()[2], gammu.Version()[0]),
        "mariadb": ("not measured" if "mariadb" in missing
                    else mysql_admin("SELECT VERSION()")[0][0]),
    }


# -- the report --------------------------------------------------------------------------------
def summary(results: dict) -> str:
    """The figures of whatever parts ran, and a `not measured` line for each that did not."""
    m = results["machine"]
    lines = ["", "=== spine benchmark summary ===",
             f"{m['date']} | {m['nproc']} x {m['cpu']} | {m['mem_gib']} GiB | {m['os']}"]
    lat = results.get("latency")
    if lat:
        lines.append(f"latency (SQLite, default poll, {lat['probes']} probes): p50 "
                     f"{lat['p50_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, max {lat['max_ms']:.0f} ms")
    for b in results.get("bursts", []):
        lines.append(
            f"burst {b['backend']:7s}: start->{BURST} tickets+acks {b['wall_to_tickets_and_acks_s']:.2f} s; "
            f"first->last stored {b['first_to_last_stored_s']:.2f} s; start->first stored "
            f"{b['process_start_to_first_stored_s']:.2f} s; all acks sent "
            f"{b['wall_to_all_acks_sent_s'] or float('nan'):.2f} s; "
            f"RSS {b['rss_kib'].get('VmRSS', 0) / 1024:.0f} MiB (peak {b['rss_kib'].get('VmHWM', 0) / 1024:.0f})")
    smsd = results.get("smsd")
    if smsd:
        lines.append(f"gammu-smsd (MariaDB): start->{BURST} rows {smsd['wall_to_1000_rows_s']:.2f} s; "
                     f"first->last {smsd['first_to_last_row_s']:.2f} s; "
                     f"texts right {smsd['rows_matching']}/{smsd['rows']}")
    for what, why in results.get("not_measured", {}).items():
        lines.append(f"not measured: {what}: {why}")
    return "\n".join(lines)


def busy_processes() -> list[str]:
    """Other processes using CPU at the end of the run: the figures are shared-machine ones."""
    out = subprocess.run(["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True,
                         text=True).stdout.splitlines()[1:8]
    return [line.strip()[:110] for line in out
            if float(line.split()[0]) >= 5.0 and "spine_bench.py" not in line]


def write_doc(latest: dict) -> None:
    """docs/benchmarks.md from the latest run plus every run saved in bench/results/."""
    runs = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("spine-*.json"))]
    m = latest["machine"]
    lat = latest["latency"]
    by = {b["backend"]: b for b in latest["bursts"]}
    smsd = latest.get("smsd")
    not_measured = latest.get("not_measured", {})

    def s(x):
        return "–" if x is None else f"{x:.2f} s"

    def smsd_s(key, r=smsd):
        return s(r[key]) if r else "not measured"

    def mib(b):
        return f"{b['rss_kib'].get('VmRSS', 0) / 1024:.0f} MiB (peak {b['rss_kib'].get('VmHWM', 0) / 1024:.0f} MiB)"

    lines = [
        "# Benchmarks: the SMS spine",
        "",
        "Written by `bench/spine_bench.py` (run: `.venv/bin/python bench/spine_bench.py`; raw",
        "figures of every run in `bench/results/spine-*.json`). The budgets are those of",
        "the README, section Budgets. FastAGI figures are in benchmarks-agi.md.",
        "",
        "## Machine and versions (latest run)",
        "",
        f"- Date: {m['date']}",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB memory, {m['os']}, "
        f"kernel {m['kernel']}, Python {m['python']}",
        f"- {m['gammu_smsd']} (Debian package gammu-smsd); {m['python_gammu']}; "
        f"MariaDB {m['mariadb']}",
        f"- Code measured: {m['code']}",
        "- Load average (1 min) before/after each phase: "
        + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in latest["load"].items()),
        "",
        "The machine is shared: other sessions ran tests and benchmarks at the same time "
        "(the load average above; processes seen at the end of the run: "
        + ("; ".join(f"`{p}`" for p in latest.get("other_processes", [])) or "none") + "). "
        "Figures vary from run to run by a factor of two or more under that load; the run "
        "table below lists every run.",
        "",
        "## Method",
        "",
        "- **Latency.** `helpdesk run` on SQLite with the default `poll_interval` (0.5 s; the "
        "config file sets none). 20 probes, each a text from a new number written with "
        "`gateway.modem.simulator.inject` in the benchmark process; the clock starts right after the "
        "backup file is linked into the simulated modem's inbox and stops when "
        "`GET /api/v1/tickets` (polled every 5 ms) lists a ticket for that number. Probes "
        "are 1.3 s ± 0.15 s apart, so they land at random phases of the poll.",
        "- **Burst.** 1,000 single-part texts from 1,000 numbers are written as Gammu backup "
        "files into a simulated modem's inbox before the daemon starts. The wall time runs from "
        "starting `helpdesk run` to the database holding 1,000 inbound messages, 1,000 tickets "
        "and 1,000 acknowledgements queued, sending or sent (counted with SQLAlchemy every "
        "10 ms); first → last stored is from the first inbound row seen to the 1,000th. "
        "Resident memory (VmRSS, and VmHWM = peak) is read from /proc after the burst.",
        "- **gammu-smsd.** The same 1,000 files into a fresh dummy device; `gammu-smsd -c` "
        "(foreground), SQL service, `native_mysql` driver, schema from "
        "`/usr/share/doc/gammu-smsd/examples/mysql.sql`, defaults except no PIN, battery, "
        "signal or status checks, no call handling and `send = 0`. Wall time from process "
        "start to 1,000 rows in `inbox`; the stored texts are compared with what was written.",
        "- The backup files are written as `gateway.modem.simulator.inject` writes them but with the PDU "
        "type Deliver (see the finding on sim.inject below). "
        + (f"gammu-smsd stored {smsd['rows_matching']}/{smsd['rows']} texts correctly (number "
           "and text), so Debian's Gammu 1.42 dummy driver reads python-gammu 1.45's files."
           if smsd else "gammu-smsd was not measured in this run."),
        "",
        *[f"**Not measured in this run: {what}**: {why}." for what, why in not_measured.items()],
        *([""] if not_measured else []),
        "## Figures (latest run)",
        "",
        "| What | Figure | Budget |",
        "|---|---|---|",
        f"| New SMS → ticket in API, SQLite, default poll 0.5 s (20 probes) | p50 {lat['p50_ms']:.0f} ms, "
        f"p95 {lat['p95_ms']:.0f} ms, max {lat['max_ms']:.0f} ms | p95 < 1 s |",
    ]
    for name, key in (("SQLite", "sqlite"), ("MariaDB", "mariadb")):
        b = by.get(key)
        if b is None:
            lines.append(f"| Burst, {name} | not measured: {not_measured.get('burst on ' + name, '?')} | |")
            continue
        lines.append(f"| Burst, {name}: start → 1,000 tickets + 1,000 acks queued | "
                     f"{s(b['wall_to_tickets_and_acks_s'])} | < gammu-smsd "
                     f"({smsd_s('wall_to_1000_rows_s')}) |")
        lines.append(f"| Burst, {name}: first → last text stored | "
                     f"{s(b['first_to_last_stored_s'])} (start → first: "
                     f"{s(b['process_start_to_first_stored_s'])}) | |")
        lines.append(f"| Burst, {name}: start → all 1,000 acks sent (simulated modem) | "
                     f"{s(b['wall_to_all_acks_sent_s'])} | |")
        lines.append(f"| `helpdesk run` memory after the {name} burst | {mib(b)} | < 200 MB |")
    lines += [
        (f"| gammu-smsd 1.42, MariaDB: start → 1,000 rows in inbox | "
         f"{s(smsd['wall_to_1000_rows_s'])} (start → first row "
         f"{s(smsd['process_start_to_first_row_s'])}, first → last {s(smsd['first_to_last_row_s'])}) "
         "| reference |") if smsd else
        f"| gammu-smsd, MariaDB | not measured: {not_measured.get('gammu-smsd', '?')} | reference |",
        f"| Latency probes, each (ms) | {', '.join(f'{x:.0f}' for x in lat['all_ms'])} | |",
        "",
        "## Every run",
        "",
        "| Date (UTC) | Code | Latency p50 / p95 / max | Burst SQLite | Burst MariaDB "
        "| gammu-smsd | RSS after burst (SQLite / MariaDB) | Load 1 min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    def burst(b, backend):
        return s(b[backend]["wall_to_tickets_and_acks_s"]) if backend in b else "not measured"

    def rss(b, backend):
        return f"{b[backend]['rss_kib'].get('VmRSS', 0) / 1024:.0f}" if backend in b else "–"

    for r in runs:
        b = {x["backend"]: x for x in r["bursts"]}
        la = r["latency"]
        loads = [v for pair in r.get("load", {}).values() for v in pair]
        lines.append(
            f"| {r['machine']['date']} | {r['machine'].get('code', '?')} | "
            f"{la['p50_ms']:.0f} / {la['p95_ms']:.0f} / {la['max_ms']:.0f} ms | "
            f"{burst(b, 'sqlite')} | {burst(b, 'mariadb')} | "
            f"{smsd_s('wall_to_1000_rows_s', r.get('smsd'))} | "
            f"{rss(b, 'sqlite')} / {rss(b, 'mariadb')} MiB | "
            f"{min(loads, default=0):.1f}–{max(loads, default=0):.1f} |")
    lines += ["", FINDINGS]
    DOC.parent.mkdir(exist_ok=True)
    # bench/run_all.py keeps its overview of every benchmark between these markers, right
    # under the title: carry it over, so that running this script alone does not drop it.
    kept = ""
    if DOC.is_file():
        old = DOC.read_text()
        begin, end = old.find(RUN_ALL_BEGIN), old.find(RUN_ALL_END)
        if 0 <= begin < end:
            kept = old[begin:end + len(RUN_ALL_END)] + "\n\n"
    text = "\n".join(lines) + "\n"
    if kept:
        title, rest = text.split("\n\n", 1)
        text = f"{title}\n\n{kept}{rest}"
    DOC.write_text(text)


# What the diagnosis runs showed (bench/spine_bench.py --trace DIR and --profile DIR); the
# numbers are from those runs, quoted here, not recomputed by each run.
FINDINGS = """## Findings

**Latency meets its budget** since the poller runs at a fixed rate with a 0.5 s default
interval (it used to wait 1.0 s after the previous poll *finished*: p95 1.7 s at
commit 00a91ed).

**The burst still misses its budget: about 5 times slower than gammu-smsd's bare store
on SQLite, 10 times on MariaDB.** History of the same measurement: SQLite 8.1 to 9.5 s
and MariaDB 21.7 to 23.8 s before the changes below, under light load; 5.0 to 5.9 s and
9.6 to 12.2 s after. What was found (`--trace` runs `bench/burst_trace.py`, which times the
spine's functions; `--profile` runs py-spy) and what was done:

- Filing cost 12 SQL statements per text (SELECT contact, open ticket, open orders; a
  write and later UPDATEs of the message, its part and the ticket). It is now 6 per text:
  a batch fetches its senders' contacts, open tickets and open orders in three queries,
  reads the catalogue and the edited reply templates once, and each row is written once
  with its final values (`gateway/inbound_store.py`, `gateway/tickets.py`).
- The acknowledgements competed with the store for the database: on SQLite every
  `mark_sent` waited in SQLite's sleeping busy handler for the write lock (18.3 s of
  DB-thread time for 1,000 sends in one trace), and every transaction updated the same
  `modems` row. Now SQLite gets a single DB thread (writes take turns, no busy waiting)
  and the per-modem counters are kept in memory and written by the health monitor.
- What remains is the ORM's per-text inserts (two flushes per text: the ticket's number
  must exist before the acknowledgement names it). The next step is set-based filing:
  insert a batch's contacts, tickets and messages with one executemany each, then render
  all acknowledgements, and overlap the next SIM read with the current store.

**Dummy-driver reads are slow when idle.** An empty inbox read on the dummy driver takes
about 0.2 s under load (the driver looks through every location before it reports the
inbox empty); a real modem answers AT+CMGL on an empty SIM in milliseconds. It is part of
the latency figures above.
"""


def main():
    global PROFILE_DIR, TRACE_DIR, BURST, PROBES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument("--profile", type=Path,
                        help="run the burst daemons under py-spy; collapsed stacks go here")
    parser.add_argument("--trace", type=Path,
                        help="run the burst daemons under bench/burst_trace.py; spans go here")
    parser.add_argument("--source", default="worktree",
                        help="worktree (default) or a git revision such as HEAD to benchmark")
    parser.add_argument("--no-doc", action="store_true",
                        help="do not rewrite docs/benchmarks.md (results are still saved)")
    parser.add_argument("--only", choices=["latency", "burst", "smsd"], action="append")
    parser.add_argument("--mysql", metavar="URL|none",
                        default=os.environ.get("HELPDESK_BENCH_MYSQL_URL") or DEFAULT_MYSQL_URL,
                        help="the MariaDB database for the MariaDB burst and gammu-smsd "
                        "(emptied; default $HELPDESK_BENCH_MYSQL_URL, else %(default)s); "
                        "none: measure neither")
    parser.add_argument("--burst", type=int, default=BURST,
                        help="texts in the burst (default %(default)s; other sizes are a "
                        "smoke run: neither saved in bench/results/ nor written to the doc)")
    parser.add_argument("--probes", type=int, default=PROBES,
                        help="latency probes (default %(default)s; see --burst)")
    args = parser.parse_args()
    only = set(args.only or ["latency", "burst", "smsd"])
    default_sizes = (args.burst, args.probes) == (BURST, PROBES)
    BURST, PROBES = args.burst, args.probes
    if args.trace:
        TRACE_DIR = args.trace.resolve()
        TRACE_DIR.mkdir(parents=True, exist_ok=True)
    if args.profile:
        PROFILE_DIR = args.profile.resolve()
        PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    mysql_url = None if args.mysql.lower() == "none" else args.mysql
    if mysql_url:
        use_mysql(mysql_url)
    missing = missing_requirements(mysql_url)
    not_measured = {}
    if "mariadb" in missing and "burst" in only:
        not_measured["burst on MariaDB"] = missing["mariadb"]
    if "gammu-smsd" in missing and "smsd" in only:
        not_measured["gammu-smsd"] = missing["gammu-smsd"]
    for what, why in not_measured.items():
        print(f"not measured: {what}: {why}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="spine-bench-"))
    log(f"work directory {work}; code: {SOURCE_LABEL}")
    import gateway
    log(f"gateway imported from {Path(gateway.__file__).parent}")
    results = {"not_measured": not_measured}
    try:
        results["machine"] = machine(missing)
        results["machine"]["code"] = SOURCE_LABEL
        log(f"writing the {BURST:,} backup files")
        template = make_burst_template(work)
        load = results["load"] = {}

        def phase(name, fn, *a):
            before = os.getloadavg()[0]
            value = fn(*a)
            load[name] = [round(before, 2), round(os.getloadavg()[0], 2)]
            return value

        if "smsd" in only and "gammu-smsd" not in not_measured:
            results["smsd"] = phase("gammu-smsd", bench_smsd, work, template)
            results["smsd_sim_inject"] = check_smsd_reads_sim_inject(work)
        if "burst" in only:
            results["bursts"] = [phase("burst sqlite", bench_burst, work, template, "sqlite")]
            if "burst on MariaDB" not in not_measured:
                results["bursts"].append(
                    phase("burst mariadb", bench_burst, work, template, "mariadb"))
        if "latency" in only:
            results["latency"] = phase("latency", bench_latency, work)
        results["other_processes"] = busy_processes()
        every_part = only == {"latency", "burst", "smsd"}
        print(summary(results))
        print("load average (1 min) before/after each phase:", load)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str))
        if every_part and default_sizes and not (PROFILE_DIR or TRACE_DIR):
            RESULTS.mkdir(exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            (RESULTS / f"spine-{stamp}.json").write_text(json.dumps(results, indent=1, default=str))
            if not args.no_doc:
                write_doc(results)
                log(f"wrote {DOC}")
    finally:
        for proc in list(PROCS):
            stop(proc, grace=5)
        if mysql_url and "mariadb" not in missing:
            try:  # leave the database as found: empty, or gone if this run created it
                if MYSQL_DB_CREATED:
                    mysql_admin(f"DROP DATABASE IF EXISTS `{HELPDESK_DB}`")
                elif MYSQL_DB_USED:
                    empty_database(HELPDESK_DB)
            except pymysql.MySQLError:
                pass
        if SOURCE_DIR:
            shutil.rmtree(SOURCE_DIR, ignore_errors=True)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
