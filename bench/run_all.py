"""Every benchmark in bench/, one after another, and the pages that show their figures.

    .venv/bin/python bench/run_all.py [--quick] [--only NAME ...] [--docs DIR | --no-docs]
                                      [--mysql URL|none]
    make bench                        (the same as run_all.py with no options)

Runs each benchmark of BENCHMARKS below as its own process, with the options its own
docstring documents, shows its output as it goes, and then writes, between the markers
RUN_ALL_BEGIN and RUN_ALL_END near the top of each page:

- docs/benchmarks.md: the run (date, machine, commit, load, the anchors) and one line per
  benchmark: what it measured, or `not measured: <why>` / `failed: <why>`; and the
  reader's figures, which have no page of their own. The rest of that page is the SMS
  spine's, which spine_bench.py writes itself after a run of all of its parts at their
  default sizes.
- docs/benchmarks-agi.md, docs/benchmarks-modem.md: the same run facts and the figures
  of that benchmark (agi_bench.py's own table; modem_bench.py's printed report). The rest
  of those pages is the write-up of the runs it names, kept as it is.

Anchors, measured in the same run so that figures from different machines and different
loads can be compared: gammu-smsd storing the spine's burst into MariaDB (spine_bench.py
measures it; it is the budget's reference), and a fixed pure-Python + SQLite workload timed
by this script before and after the benchmarks (best of 3), which says how fast and how
busy the machine was.

--quick runs every benchmark at small sizes, as a smoke test of the benchmarks themselves
(tests/deploy/test_bench_runner.py runs it); its figures are not comparable with a full run, so
it writes pages only into a directory given with --docs. A benchmark that needs what this
machine lacks (MariaDB, gammu-smsd) says `not measured: <what>: <why>` and measures the
rest; a benchmark that fails or overruns its time is recorded as failed, and the others
still run. The exit status is 1 when a benchmark failed, else 0.

--mysql URL (default: what spine_bench.py uses, $HELPDESK_BENCH_MYSQL_URL or its own
helpdesk_bench database) is the MariaDB database spine_bench.py empties and uses; none
measures nothing on MariaDB.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
DOCS = REPO / "docs"
RESULTS = BENCH / "results"
RUN_ALL_BEGIN = "<!-- bench/run_all.py: begin -->"  # spine_bench.py keeps what is between
RUN_ALL_END = "<!-- bench/run_all.py: end -->"


@dataclass
class Benchmark:
    name: str
    script: str
    what: str
    page: str                    # the page (in docs/) that gets its figures
    full: list[str] = field(default_factory=list)
    quick: list[str] = field(default_factory=list)
    timeout: tuple[float, float] = (900.0, 300.0)  # seconds: full, quick


BENCHMARKS = [
    Benchmark("spine", "spine_bench.py",
              "new SMS -> ticket latency, 1,000-SMS burst on SQLite and MariaDB, gammu-smsd "
              "storing the same burst (the anchor)",
              "benchmarks.md", full=[], quick=["--burst", "50", "--probes", "3", "--no-doc"],
              timeout=(900, 300)),
    Benchmark("modem", "modem_bench.py",
              "inbound and outbound texts through libGammu's AT driver and the simulated "
              "modem; a hung modem's texts taken over by another",
              "benchmarks-modem.md", full=["--limit", "600"],
              quick=["--texts", "10", "--sends", "1", "--timeouts", "5", "--limit", "150"],
              timeout=(700, 200)),
    Benchmark("announce", "announce_bench.py",
              "new text -> ticket latency with the modem's announcements (+CMTI) against "
              "polling only, in the same run, on the AT simulator",
              "benchmarks-announce.md", full=[], quick=["--probes", "5", "--limit", "120"],
              timeout=(300, 150)),
    Benchmark("agi", "agi_bench.py",
              "FastAGI caller lookup in `helpdesk run` with 50 calls in progress, alone and "
              "while 1,000-text bursts are filed, SQLite and MariaDB",
              "benchmarks-agi.md", full=[],
              quick=["--contacts", "2000", "--calls", "200", "--seconds", "3",
                     "--concurrency", "20", "--bursts", "1", "--burst", "100",
                     "--max-seconds", "60"],
              timeout=(900, 200)),
    Benchmark("soak", "soak_bench.py",
              "100,000 texts through the simulated modem into a running daemon, tickets "
              "resolved as it goes: memory, time per text, database size",
              "benchmarks-soak.md", full=[], quick=["--texts", "2000"], timeout=(1500, 200)),
    Benchmark("reader", "reader_bench.py",
              "accuracy of gateway.desk.reader on tests/data and its throughput on one core",
              "benchmarks.md", full=[], quick=["--reads", "5000"], timeout=(600, 120)),
    Benchmark("ui", "bench_ui.py",
              "operator UI pages (queue, ticket, contact, searches) with 100,000 tickets and "
              "1,000,000 texts, 20 clients, on SQLite and MariaDB",
              "benchmarks-ui.md", full=[],
              quick=["--tickets", "2000", "--messages", "20000", "--contacts", "1000",
                     "--clients", "5", "--seconds", "1", "--warmup", "0.5"],
              timeout=(1800, 300)),
    Benchmark("proxy", "proxy_bench.py",
              "the queue through HAProxy (proxy/haproxy.cfg) with two UI processes, against "
              "one process direct, 20 clients",
              "benchmarks-proxy.md", full=[],
              quick=["--tickets", "500", "--messages", "2000", "--contacts", "200",
                     "--clients", "3", "--seconds", "1", "--warmup", "0.5"],
              timeout=(600, 200)),
    Benchmark("kalkun", "kalkun_bench.py",
              "`helpdesk import kalkun` of 100,000 rows of a Gammu SMSD + Kalkun database on "
              "MariaDB into a new SQLite database, run twice (the second finds it all there)",
              "benchmarks-kalkun.md", full=[], quick=["--rows", "2000"], timeout=(1800, 300)),
    Benchmark("export", "export_bench.py",
              "`helpdesk export messages` (CSV and XLSX) of 1,000,000 texts, and every report "
              "over a year, on SQLite",
              "benchmarks-reports.md", full=[],
              quick=["--messages", "5000", "--tickets", "500", "--contacts", "200"],
              timeout=(5400, 300)),
]

# The other scripts in bench/, and why run_all.py does not run them on their own.
TOOLS = {
    "run_all.py": "this script",
    "burst_trace.py": "not a benchmark: the timing wrapper that `spine_bench.py --trace DIR` "
                      "runs `helpdesk run` under, for diagnosis",
    "ui_data.py": "not a benchmark: fills a database with 100,000 tickets for bench_ui.py, "
                  "which runs it",
}


def unknown_scripts() -> list[str]:
    """Python files in bench/ that are neither a benchmark here nor a known tool."""
    known = {b.script for b in BENCHMARKS} | set(TOOLS)
    return sorted(p.name for p in BENCH.glob("*.py") if p.name not in known)


# -- the run's facts --------------------------------------------------------------------------

def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    mem_kib = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal:")), 0)
    osname = next((line.split("=", 1)[1].strip().strip('"')
                   for line in _read("/etc/os-release").splitlines()
                   if line.startswith("PRETTY_NAME=")), platform.platform())
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kib / 1024 / 1024, 1),
            "os": osname, "kernel": platform.release(), "python": platform.python_version()}


def commit() -> str:
    """The commit measured, and whether the working tree differs from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "not a git checkout"
    changed = git("status", "--porcelain", "--", "gateway", "helpdesk_web", "bench").splitlines()
    return head + (f" + {len(changed)} uncommitted changes in gateway/, helpdesk_web/, bench/"
                   if changed else " (clean)")


def load_average() -> str:
    return " ".join(_read("/proc/loadavg").split()[:3]) or "?"


def _anchor_work() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.executemany("INSERT INTO t (v) VALUES (?)", ((f"text {i}",) for i in range(50_000)))
    db.execute("SELECT COUNT(*), SUM(LENGTH(v)) FROM t WHERE v LIKE '%7%'").fetchone()
    db.close()
    sum(len(json.dumps({"i": i, "s": str(i)})) for i in range(100_000))
    hashlib.sha256(b"x" * 20_000_000).hexdigest()


def anchor_ms() -> float:
    """The CPU anchor: a fixed pure-Python + SQLite workload, best of 3, in ms."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        _anchor_work()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


# -- running one benchmark ----------------------------------------------------------------------

@dataclass
class Outcome:
    bench: Benchmark
    argv: list[str]
    status: str = "measured"          # measured | measured in part | not measured | failed
    why: str = ""
    seconds: float = 0.0
    load_before: str = ""
    load_after: str = ""
    output: str = ""
    not_measured: list[str] = field(default_factory=list)
    headline: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def command(bench: Benchmark, argv: list[str]) -> str:
    """The benchmark's command line as a user types it, without the --json/--write file
    this script adds to read the figures from."""
    args, shown = argv[2:], []
    while args:
        arg = args.pop(0)
        if arg in ("--json", "--write") and args:
            args.pop(0)
            continue
        shown.append(arg)
    return " ".join(shlex.quote(a) for a in [".venv/bin/python", f"bench/{bench.script}",
                                             *shown])


def run(bench: Benchmark, quick: bool, tmp: Path, mysql: str | None,
        spine_doc: bool = True) -> Outcome:
    argv = [sys.executable, str(BENCH / bench.script)]
    argv += bench.quick if quick else bench.full
    if bench.name == "spine":
        argv += ["--json", str(tmp / "spine.json")]
        if mysql:
            argv += ["--mysql", mysql]
        if not spine_doc and "--no-doc" not in argv:  # pages go elsewhere: not docs/
            argv.append("--no-doc")
    if bench.name in ("agi", "ui"):
        argv += ["--write", str(tmp / f"{bench.name}.md")]
    if bench.name == "ui" and mysql:
        argv += ["--mysql", mysql]
    if bench.name == "kalkun" and mysql:
        argv += ["--server", mysql]
    if bench.name == "export":  # its own database, not the one a user's runs keep
        argv += ["--db", str(tmp / "export" / "ui.db")]
    timeout = bench.timeout[1 if quick else 0]
    print(f"\n=== {bench.name}: {command(bench, argv)}", flush=True)
    out = Outcome(bench, argv, load_before=load_average())
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace", start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    timed_out = threading.Event()

    def overrun():
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            time.sleep(5)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    timer = threading.Timer(timeout, overrun)
    timer.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            print(f"[{bench.name}] {line}", end="", flush=True)
        proc.wait()
    finally:
        timer.cancel()
        try:  # anything the benchmark left behind in its session goes too
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    out.seconds = round(time.monotonic() - started, 1)
    out.load_after = load_average()
    out.output = "".join(lines)
    out.not_measured = list(dict.fromkeys(
        line.strip()[len("not measured:"):].strip() for line in lines
        if line.strip().startswith("not measured:")))
    if timed_out.is_set():
        out.status, out.why = "failed", f"did not finish within {timeout:.0f} s"
    elif proc.returncode != 0:
        last = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
        out.status, out.why = "failed", f"exit status {proc.returncode}: {last[:200]}"
    else:
        try:
            out.headline = HEADLINES[bench.name](out, tmp)
        except Exception as e:  # the figures are in the output all the same
            out.headline = [f"(figures not found in the output: {e!r})"]
        if out.not_measured:
            out.status = "measured in part"
    print(f"=== {bench.name}: {out.status}{': ' + out.why if out.why else ''} "
          f"({out.seconds:.0f} s)", flush=True)
    return out


# -- what each benchmark measured, from what it prints or writes ------------------------------------

def _spine(out: Outcome, tmp: Path) -> list[str]:
    r = json.loads((tmp / "spine.json").read_text())
    out.extra["spine"] = r
    lines = []
    lat = r.get("latency")
    if lat:
        lines.append(f"new SMS -> ticket (SQLite, {lat['probes']} probes): p50 {lat['p50_ms']:.0f} ms, "
                     f"p95 {lat['p95_ms']:.0f} ms")
    for b in r.get("bursts", []):
        n = b["counts"].get("inbound", "?")
        lines.append(f"burst of {n} on {b['backend']}: {b['wall_to_tickets_and_acks_s']:.2f} s "
                     f"to every ticket and ack, RSS {b['rss_kib'].get('VmRSS', 0) / 1024:.0f} MiB")
    smsd = r.get("smsd")
    if smsd:
        lines.append(f"anchor: gammu-smsd stored the same {smsd['rows']} texts in "
                     f"{smsd['wall_to_1000_rows_s']:.2f} s ({smsd['rows_matching']} right)")
    return lines


def _grab(pattern: str, text: str, flags=re.M) -> re.Match:
    m = re.search(pattern, text, flags)
    if not m:
        raise LookupError(pattern)
    return m


def _modem(out: Outcome, tmp: Path) -> list[str]:
    text = out.output
    inbound = _grab(r"^\s*([\d.]+) texts/s read\+stored\+deleted", text).group(1)
    outbound = _grab(r"^2\. outbound.*\n\s*([\d.]+) texts/s", text).group(1)
    lines = [f"inbound {inbound} texts/s read+stored+deleted; outbound {outbound} texts/s "
             "(one modem)"]
    takeovers = text.split("\n3. takeover, ")[1:]
    if not takeovers:
        raise LookupError("no takeover")
    for block in takeovers:
        timeout = _grab(r"^call_timeout (\d+) s", block).group(1)
        first = _grab(r"first sent via B ([^,]+),", block).group(1)
        final = _grab(r"all final at (\S+(?: s)?)$", block).group(1)
        statuses = _grab(r"statuses (\{[^}]*\})", block).group(1)
        lines.append(f"hung modem, call_timeout {timeout} s: first of its texts out through "
                     f"the other modem at {first}, all final at {final}, {statuses}")
    return lines


def _agi(out: Outcome, tmp: Path) -> list[str]:
    held = _grab(r"^(\d+) calls in progress: (.*)$", out.output)
    loop = _grab(r"^closed loop: (.*)$", out.output)
    page = tmp / "agi.md"
    if page.is_file():
        out.extra["agi_page"] = page.read_text()
    return [f"{held.group(1)} calls in progress: {held.group(2)}", f"closed loop: {loop.group(1)}"]


def _reader(out: Outcome, tmp: Path) -> list[str]:
    return [line.strip() for line in out.output.splitlines()
            if re.match(r"(samples|labelled) \(|throughput: ", line.strip())]


def _announce(out: Outcome, tmp: Path) -> list[str]:
    lines = [line.strip() for line in out.output.splitlines()
             if re.match(r"(announced \(\+CMTI\)|poll only): |budget ", line.strip())]
    if len(lines) < 2:
        raise LookupError("no latency lines")
    return lines


def _soak(out: Outcome, tmp: Path) -> list[str]:
    lines = [line.strip() for line in out.output.splitlines()
             if re.match(r"(RSS|per text|database) ", line.strip())]
    if len(lines) < 3:
        raise LookupError("no soak summary")
    return lines


def _ui(out: Outcome, tmp: Path) -> list[str]:
    page = tmp / "ui.md"
    if page.is_file():
        out.extra["agi_page"] = page.read_text()  # shown as its page, as agi's is
    p95 = {}
    for m in re.finditer(r"^(\w+)\s+(\S+(?: \S+)?)\s+alone .*?(\d+) clients, think (?!0\.0 )"
                         r"[\d.]+ s: .*?p95\s+([\d.]+)", out.output, re.M):
        key = f"{m.group(1)}, {m.group(3)} operators"
        p95.setdefault(key, []).append(f"{m.group(2)} {float(m.group(4)):.0f}")
    if not p95:
        raise LookupError("no page measured")
    return [f"{who}, p95 ms: {', '.join(pages)}" for who, pages in p95.items()]


def _proxy(out: Outcome, tmp: Path) -> list[str]:
    lines = [f"{m.group(1).strip()}: p95 {float(m.group(2)):.0f} ms, {float(m.group(3)):.1f} req/s"
             for m in re.finditer(r"^(1 process, direct|HAProxy, \d process(?:es)?)\s+alone .*?p50 .*?"
                                  r"p95\s+([\d.]+) .*?([\d.]+) req/s", out.output, re.M)]
    if not lines:
        raise LookupError("no case measured")
    return lines


def _kalkun(out: Outcome, tmp: Path) -> list[str]:
    lines = [line.strip() for line in out.output.splitlines()
             if re.match(r"(first|second) run ", line.strip())]
    if len(lines) < 2 and not out.not_measured:
        raise LookupError("no import run")
    return lines


def _export(out: Outcome, tmp: Path) -> list[str]:
    lines = [line.strip() for line in out.output.splitlines()
             if line.startswith("export messages ")]
    if not lines:
        raise LookupError("no export")
    reports = [float(m.group(1)) for m in re.finditer(r"^report .*: (\d+) ms$", out.output, re.M)]
    if reports:
        lines.append(f"{len(reports)} reports over the year: slowest {max(reports):.0f} ms")
    return lines


HEADLINES = {"spine": _spine, "modem": _modem, "agi": _agi, "reader": _reader,
             "announce": _announce, "soak": _soak, "ui": _ui, "proxy": _proxy,
             "kalkun": _kalkun, "export": _export}


# -- the pages ------------------------------------------------------------------------------------

def facts(run_info: dict, out: Outcome | None) -> list[str]:
    m = run_info["machine"]
    lines = [
        f"- Date: {run_info['date']}; {'**quick smoke run** (small sizes, not comparable with a full run)' if run_info['quick'] else 'full run'}"
        f" of `bench/run_all.py{' --quick' if run_info['quick'] else ''}`",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB memory, {m['os']}, "
        f"kernel {m['kernel']}, Python {m['python']}",
        f"- Code: commit {run_info['commit']}",
        f"- CPU anchor (fixed pure-Python + SQLite workload, best of 3): "
        f"{run_info['anchor_before_ms']:.0f} ms before the benchmarks, "
        f"{run_info['anchor_after_ms']:.0f} ms after",
    ]
    if out is None:
        lines.append(f"- Load average (1, 5, 15 min) {run_info['load_start']} at the start, "
                     f"{run_info['load_end']} at the end (other work on the machine shares "
                     "its cores)")
    if out is not None:
        lines += [
            f"- Command: `{command(out.bench, out.argv)}`",
            f"- Took {out.seconds:.0f} s; load average {out.load_before} before, "
            f"{out.load_after} after (other work on the machine shares its cores)",
            f"- Result: **{out.status}**" + (f": {out.why}" if out.why else ""),
        ]
        lines += [f"- Not measured: {what}" for what in out.not_measured]
    return lines


def overview(run_info: dict, outcomes: list[Outcome]) -> str:
    by = {o.bench.name: o for o in outcomes}
    lines = [RUN_ALL_BEGIN,
             "## Latest `make bench`: every benchmark",
             "",
             "Written by `bench/run_all.py` (`make bench`), which runs every benchmark in "
             "`bench/`; this section is replaced by each run, the rest of the page is the SMS "
             "spine's (`bench/spine_bench.py`).",
             "",
             *facts(run_info, None),
             "",
             "| Benchmark | What it measures | Result of this run | Took | Page |",
             "|---|---|---|---|---|"]
    for b in BENCHMARKS:
        o = by.get(b.name)
        page = "this page" if b.page == "benchmarks.md" and b.name == "spine" else (
            "below" if b.page == "benchmarks.md" else f"[{b.page}]({b.page})")
        took = f"{o.seconds:.0f} s" if o else ""
        if o is None:
            result = "not run (`--only`)"
        elif o.status == "failed":
            result = f"**failed**: {o.why}"
        else:
            result = "<br>".join(o.headline) or o.status
            result += "".join(f"<br>**not measured**: {w}" for w in o.not_measured)
        lines.append(f"| `bench/{b.script}` | {b.what} | {result.replace('|', '/')} | {took} "
                     f"| {page} |")
    for script in unknown_scripts():
        lines.append(f"| `bench/{script}` | not known to bench/run_all.py | not run | | |")
    if "spine" in by:
        lines += ["", "The spine's figures below are from " + (
            "this run." if run_info.get("spine_doc") else
            "the last run of `bench/spine_bench.py` that wrote them (dated below), not from "
            "this one.")]
    reader = by.get("reader")
    if reader:
        lines += ["", "### Reader (`bench/reader_bench.py`)", "", *facts(run_info, reader), "",
                  "```text", reader.output.rstrip(), "```"]
    lines.append(RUN_ALL_END)
    return "\n".join(lines)


def area_section(run_info: dict, out: Outcome) -> str:
    lines = [RUN_ALL_BEGIN, "## Latest `make bench` run", "",
             "Written by `bench/run_all.py` (`make bench`) and replaced by each run; the "
             "sections after this one are the write-up of the runs they name.", "",
             *facts(run_info, out), ""]
    if out.bench.name in ("agi", "ui") and out.extra.get("agi_page"):
        body = out.extra["agi_page"].split("\n", 1)[1].strip()   # without its title
        lines += [body.replace(run_info["tmp"], "$TMP")]
    else:
        shown = [line for line in out.output.rstrip().splitlines()]
        if out.bench.name == "modem":  # the event and log listings stay in the output only
            kept, skipping = [], False
            for line in shown:
                if re.match(r"^   (outbox events|gateway log)", line):
                    skipping = True
                    continue
                if skipping and line.startswith("     "):
                    continue
                skipping = False
                kept.append(line)
            shown = kept
        lines += ["```text", *shown, "```"]
    lines.append(RUN_ALL_END)
    return "\n".join(lines)


def put_section(page: Path, section: str, title: str) -> None:
    """Replace the marked section of `page`, or put it right under the page's title."""
    text = page.read_text() if page.is_file() else f"# {title}\n"
    begin, end = text.find(RUN_ALL_BEGIN), text.find(RUN_ALL_END)
    if 0 <= begin < end:
        text = text[:begin] + section + text[end + len(RUN_ALL_END):]
    else:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{section}\n\n{rest.lstrip()}"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text.rstrip() + "\n")


TITLES = {"benchmarks.md": "Benchmarks", "benchmarks-agi.md": "FastAGI caller lookup: benchmark",
          "benchmarks-modem.md": "Modem side: benchmark",
          "benchmarks-announce.md": "Texts the moment they arrive: benchmark",
          "benchmarks-soak.md": "Soak: 100,000 texts through a simulated modem",
          "benchmarks-ui.md": "Operator UI under load: benchmark",
          "benchmarks-proxy.md": "Several UI processes behind HAProxy: benchmark",
          "benchmarks-kalkun.md": "Moving in from Kalkun: benchmark",
          "benchmarks-reports.md": "Exports and reports on a year of texts: benchmark"}


def write_pages(docs: Path, run_info: dict, outcomes: list[Outcome]) -> list[Path]:
    written = []
    put_section(docs / "benchmarks.md", overview(run_info, outcomes), TITLES["benchmarks.md"])
    written.append(docs / "benchmarks.md")
    for out in outcomes:
        if out.bench.page != "benchmarks.md":
            page = docs / out.bench.page
            put_section(page, area_section(run_info, out), TITLES.get(out.bench.page, out.bench.name))
            written.append(page)
    return written


# -- main ----------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke run of every benchmark (writes no page "
                        "unless --docs is given)")
    parser.add_argument("--only", action="append", choices=[b.name for b in BENCHMARKS],
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--docs", type=Path, help="write the pages here (default: docs/, "
                        "for a full run)")
    parser.add_argument("--no-docs", action="store_true", help="write no page")
    parser.add_argument("--mysql", metavar="URL|none",
                        help="the MariaDB database for spine_bench.py (it is emptied)")
    args = parser.parse_args(argv)
    docs = None if args.no_docs else (args.docs or (None if args.quick else DOCS))

    for script in unknown_scripts():
        print(f"bench/{script} is not known to bench/run_all.py: add it to BENCHMARKS or "
              "TOOLS", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="run-all-"))
    run_info = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "quick": args.quick, "machine": machine(), "commit": commit(), "tmp": str(tmp)}
    print(f"bench/run_all.py{' --quick' if args.quick else ''}: {run_info['date']}, "
          f"commit {run_info['commit']}, load average {load_average()}", flush=True)
    run_info["load_start"] = load_average()
    run_info["anchor_before_ms"] = anchor_ms()
    outcomes = []
    for bench in BENCHMARKS:
        if args.only and bench.name not in args.only:
            continue
        outcomes.append(run(bench, args.quick, tmp, args.mysql, spine_doc=docs == DOCS))
    run_info["anchor_after_ms"] = anchor_ms()
    run_info["load_end"] = load_average()
    run_info["spine_doc"] = any(o.bench.name == "spine" and o.status != "failed"
                                for o in outcomes) and docs == DOCS and not args.quick
    print("\n=== summary", flush=True)
    for o in outcomes:
        print(f"{o.bench.name}: {o.status}{': ' + o.why if o.why else ''} ({o.seconds:.0f} s)")
        for line in o.headline:
            print(f"    {line}")
        for what in o.not_measured:
            print(f"    not measured: {what}")
    print(f"CPU anchor: {run_info['anchor_before_ms']:.0f} ms before, "
          f"{run_info['anchor_after_ms']:.0f} ms after")
    if docs is not None:
        for page in write_pages(docs, run_info, outcomes):
            print(f"wrote {page}")
    if not args.quick and not args.only:
        RESULTS.mkdir(exist_ok=True)
        record = {**run_info, "benchmarks": [
            {"name": o.bench.name, "argv": o.argv[2:], "status": o.status, "why": o.why,
             "seconds": o.seconds, "load": [o.load_before, o.load_after],
             "headline": o.headline, "not_measured": o.not_measured} for o in outcomes]}
        record.pop("tmp")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        (RESULTS / f"all-{stamp}.json").write_text(json.dumps(record, indent=1) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
