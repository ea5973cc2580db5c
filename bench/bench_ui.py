"""The operator UI under load: p50/p95/p99 and requests/s per page, 20 clients at once.

    .venv/bin/python bench/bench_ui.py [--tickets 100000] [--messages 1000000]
                                       [--contacts 50000] [--clients 20] [--seconds 20]
                                       [--think 1.0]
                                       [--mysql URL|none] [--sqlite FILE] [--reuse]
                                       [--write docs/benchmarks-ui.md] [--json FILE]

For each database (SQLite, and MariaDB unless --mysql none; default URL
$HELPDESK_BENCH_UI_MYSQL_URL, else the helpdesk_bench_ui database on 127.0.0.1, which is
emptied) it fills the database with bench/ui_data.py (--reuse keeps one that holds
these sizes already), starts the real server, `helpdesk --config FILE web` (the Flask app
in twisted.web's WSGIResource on its thread pool, as `helpdesk run` serves it), logs in
as a user does (login form, CSRF token, session cookie), and then, page by page, has
--clients clients on keep-alive connections request it for --seconds: the queue, a
ticket page (the ticket with the most texts), a contact page (the contact with the most tickets), and a
search in the queue for a name, a word of the texts (one in 0.3 % of them, and one in a
tenth) and a phone number written as customers write it; --pages picks some of them. Each page twice: as --clients operators who pause --think seconds on
average between clicks (the budget's "20 concurrent users"), and as a closed loop with
no pause (what the server can answer per second). A warm-up goes before each page, and
one client alone is timed too, for the time a request takes when nothing else runs.

Any answer but 200 counts as an error and is reported. The budget (README) is p95 under
100 ms with 20 clients. Loopback only; the clients share the machine with the server.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ui_data  # noqa: E402
from run_all import commit, load_average, machine  # noqa: E402

from gateway import secret  # noqa: E402

DEFAULT_MYSQL = os.environ.get("HELPDESK_BENCH_UI_MYSQL_URL",
                               "mysql+pymysql://root@127.0.0.1:3306/helpdesk_bench_ui")
BUDGET_MS = 100.0
COMMON_WORD = "pulsa"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`helpdesk web` on a config of its own, in a child process."""

    def __init__(self, url: str, workdir: Path):
        self.port = free_port()
        self.config = workdir / "bench-ui.toml"
        self.config.write_text(
            f'[database]\nurl = "{url}"\n\n[web]\nlisten = "127.0.0.1:{self.port}"\n'
            f'secret_file = "{workdir / "session.key"}"\n\n'
            f'[agi]\nsecret_file = "{workdir / "agi.secret"}"\n')
        helpdesk = [str(Path(sys.executable).with_name("helpdesk")), "--config", str(self.config)]
        secret.ensure(str(workdir / "session.key"))  # what `helpdesk init` makes; the fill
        # made the schema and the users
        self.log = open(workdir / "server.log", "w")
        self.proc = subprocess.Popen([*helpdesk, "web"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("helpdesk web exited: "
                                       + (workdir / "server.log").read_text()) from None
                time.sleep(0.2)
        raise RuntimeError("helpdesk web did not listen within 60 s")

    def rss_mib(self) -> float:
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
            return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
        except (OSError, AttributeError):
            return 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Client:
    """One operator's browser: a keep-alive connection and the session cookie."""

    def __init__(self, port: int, cookie: str = ""):
        self.port, self.cookie = port, cookie
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes, http.client.HTTPMessage]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):  # a keep-alive connection the server closed: once more
            try:
                self.conn.request(method, path, body=body, headers=headers)
                answer = self.conn.getresponse()
                data = answer.read()
                return answer.status, data, answer.headers  # names in any case (HAProxy)
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def log_in(self, user: str, password: str) -> None:
        status, page, headers = self.request("GET", "/login")
        cookie = headers.get("Set-Cookie", "").split(";", 1)[0]
        self.cookie = cookie
        token = CSRF.search(page.decode()).group(1)
        body = urllib.parse.urlencode({"name": user, "password": password, "csrf_token": token})
        status, page, headers = self.request("POST", "/login", body)
        if status != 302:
            raise RuntimeError(f"login as {user} answered {status}: {page[:300]!r}")
        self.cookie = headers.get("Set-Cookie", "").split(";", 1)[0] or cookie


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def load(port: int, cookie: str, path: str, clients: int, seconds: float,
         think: float = 0.0) -> dict:
    """`clients` loops on `path` for `seconds`, each pausing a random time of mean
    `think` seconds (exponential; 0: none) between an answer and its next request."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    start = threading.Barrier(clients + 1)

    def run(n):
        client = Client(port, cookie)
        rng = random.Random(n)
        mine, bad = [], []
        start.wait()
        if think:
            time.sleep(rng.uniform(0, think))  # operators do not click in step
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                status, _, _ = client.request("GET", path)
            except (http.client.HTTPException, OSError) as e:
                status = repr(e)
            mine.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                bad.append(str(status))
            if think:
                time.sleep(min(rng.expovariate(1 / think), 10 * think))
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.monotonic()
    for t in threads:
        t.join()
    took = time.monotonic() - began
    return {"requests": len(latencies), "errors": len(errors), "error_kinds": sorted(set(errors)),
            "p50": percentile(latencies, 50), "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99), "rps": len(latencies) / took}


def alone(port: int, cookie: str, path: str, n: int = 15) -> float:
    client = Client(port, cookie)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, body, _ = client.request("GET", path)
        times.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    return statistics.median(times)


def pages(facts: dict) -> list[tuple[str, str]]:
    q = urllib.parse.quote_plus
    return [("queue", "/tickets"),
            ("ticket page", f"/tickets/{facts['ticket']}"),
            ("contact page", f"/contacts/{facts['contact']}"),
            ("name search", f"/tickets?q={q(facts['name'])}"),
            ("word search", f"/tickets?q={q(facts['word'])}"),
            # A word in a tenth of the texts (100,000 at 1M): what a page of a word search
            # reads, not how many texts hold the word, decides its time.
            ("common word search", f"/tickets?q={COMMON_WORD}"),
            ("phone search", f"/tickets?q={q(facts['phone'])}")]


def measure(backend: str, url: str, args, workdir: Path) -> dict:
    filled = None
    if args.reuse and ui_data.sizes(url) == (args.tickets, args.messages, args.contacts):
        print(f"{backend}: reusing {url}, filled before to these sizes", flush=True)
    else:
        print(f"{backend}: filling {url} with {args.tickets} tickets, {args.messages} "
              f"messages, {args.contacts} contacts", flush=True)
        filled = ui_data.fill(url, args.tickets, args.messages, args.contacts)
    facts = ui_data.facts(url)
    server = Server(url, workdir)
    result = {"backend": backend, "fill_s": filled and filled["seconds"], "facts": facts,
              "pages": []}
    try:
        client = Client(server.port)
        client.log_in(facts["user"], facts["password"])
        for name, path in pages(facts):
            if args.pages and name not in args.pages:
                continue
            single = alone(server.port, client.cookie, path)
            load(server.port, client.cookie, path, args.clients, args.warmup)
            r = {"page": name, "path": path, "alone_ms": single}
            for mode, think in (("operators", args.think), ("closed", 0.0)):
                before = load_average()
                m = load(server.port, client.cookie, path, args.clients, args.seconds, think)
                r[mode] = {**m, "load": before}
                print(f"{backend:8} {name:13} alone {single:6.1f} ms | {args.clients} "
                      f"clients, think {think:.1f} s: p50 {m['p50']:6.1f} p95 {m['p95']:6.1f} "
                      f"p99 {m['p99']:6.1f} ms, {m['rps']:6.1f} req/s, {m['requests']} "
                      f"requests, {m['errors']} errors {' '.join(m['error_kinds'])} "
                      f"(load {before})", flush=True)
            result["pages"].append(r)
        result["rss_mib"] = round(server.rss_mib())
    finally:
        server.stop()
    return result


def report(run: dict) -> str:
    m = run["machine"]
    lines = [
        "## Latest run of `bench/bench_ui.py`",
        "",
        "Written by `bench/bench_ui.py --write` (and by `bench/run_all.py`), replaced by each "
        "run; the rest of the page is kept. The budget "
        "(README): the queue, a ticket page, a contact page and a search answer with p95 "
        f"under {BUDGET_MS:.0f} ms at {run['clients']} concurrent clients, with 100,000 "
        "tickets and 1,000,000 messages, on SQLite and on MariaDB.",
        "",
        f"- Date: {run['date']}",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['mem_gib']} GiB memory, {m['os']}, "
        f"kernel {m['kernel']}, Python {m['python']}",
        f"- Code: commit {run['commit']}",
        f"- Load average (1, 5, 15 min) {run['load_start']} at the start, {run['load_end']} "
        "at the end (other work on the machine shares its cores)",
        f"- Data (bench/ui_data.py): {run['tickets']:,} tickets, {run['messages']:,} messages, "
        f"{run['contacts']:,} contacts, their events, orders and payments",
        f"- Load: {run['clients']} clients on keep-alive connections, {run['seconds']:.0f} s "
        f"per page and mode after {run['warmup']:g} s of warm-up; `helpdesk web` serving, "
        "the clients in another process on the same machine. **Operators** (the budget's "
        f"users): each waits a random time, {run['think']:.1f} s on average (exponential), "
        "between an answer and its next click, several times the pace of a person. "
        "**Closed loop**: each sends the next request the moment the last is answered, "
        "which measures how many requests per second the server can answer; its latency "
        f"is then about {run['clients']} / (req/s), whatever the page. `alone`: the median "
        "of one client by itself.",
        f"- Command: `{run['command']}`",
        "",
    ]
    for r in run["results"]:
        f = r["facts"]
        lines += [f"## {r['backend']}", "",
                  f"Searched for: name `{f['name']}`, word `{f['word']}`, phone "
                  f"`{f['phone']}`; ticket {f['ticket']} (the most texts), contact "
                  f"{f['contact']} (the most tickets). Server memory after the run: "
                  f"{r.get('rss_mib', '?')} MiB." + (f" Fill took {r['fill_s']:.0f} s."
                                                     if r.get("fill_s") else ""), "",
                  f"| Page | alone ms | {run['clients']} operators: p50 / **p95** / p99 ms "
                  "| req/s | errors | closed loop: p50 / p95 / p99 ms | req/s | errors "
                  "| load avg |", "|---|---|---|---|---|---|---|---|---|"]
        for p in r["pages"]:
            o, c = p["operators"], p["closed"]
            flag = "" if o["p95"] < BUDGET_MS else " (over budget)"
            lines.append(f"| {p['page']} `{p['path']}` | {p['alone_ms']:.1f} "
                         f"| {o['p50']:.1f} / **{o['p95']:.1f}**{flag} / {o['p99']:.1f} "
                         f"| {o['rps']:.1f} | {o['errors']} "
                         f"| {c['p50']:.1f} / {c['p95']:.1f} / {c['p99']:.1f} | {c['rps']:.1f} "
                         f"| {c['errors']} | {o['load']} |")
        lines.append("")
    for skipped in run["not_measured"]:
        lines.append(f"- Not measured: {skipped}")
    return "\n".join(lines).rstrip() + "\n"


BEGIN, END = "<!-- bench/bench_ui.py: begin -->", "<!-- bench/bench_ui.py: end -->"


def write_page(path: Path, report_text: str) -> None:
    """Put the report between the page's markers (under its title on a new page)."""
    section = f"{BEGIN}\n{report_text}{END}"
    text = path.read_text() if path.is_file() else "# Operator UI under load: benchmark\n"
    begin, end = text.find(BEGIN), text.find(END)
    if 0 <= begin < end:
        text = text[:begin] + section + text[end + len(END):]
    else:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{section}\n\n{rest.lstrip()}"
    path.write_text(text.rstrip() + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--think", type=float, default=1.0,
                        help="operators' mean pause between an answer and the next click, s")
    parser.add_argument("--mysql", default=DEFAULT_MYSQL, metavar="URL|none")
    parser.add_argument("--sqlite", type=Path, help="the SQLite file (default: in a temporary "
                        "directory, or var/ui-bench/ with --reuse); none: MariaDB only")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a database that holds these sizes already (filled before)")
    parser.add_argument("--write", type=Path, help="write the report page here")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--pages", type=lambda v: [p.strip() for p in v.split(",")],
                        help="only these pages, by name: 'queue,word search'")
    args = parser.parse_args(argv)

    workdir = (REPO / "var" / "ui-bench") if args.reuse else Path(tempfile.mkdtemp(prefix="ui-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sqlite = args.sqlite or workdir / "ui.db"
    run = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "commit": commit(), "load_start": load_average(), "clients": args.clients,
           "seconds": args.seconds, "warmup": args.warmup, "think": args.think, "tickets": args.tickets,
           "messages": args.messages, "contacts": args.contacts, "results": [],
           "not_measured": [],
           "command": " ".join([".venv/bin/python", "bench/bench_ui.py", *(argv or sys.argv[1:])])}
    targets = [] if str(args.sqlite) == "none" else [("SQLite", f"sqlite:///{sqlite.resolve()}")]
    if args.mysql != "none":
        targets.append(("MariaDB", args.mysql))
    for backend, url in targets:
        try:
            run["results"].append(measure(backend, url, args, workdir))
        except Exception as e:
            if backend != "MariaDB" or "Can't connect" not in str(e) and "Unknown database" not in str(e):
                raise
            why = f"MariaDB: {url}: {str(e).splitlines()[0][:200]}"
            print(f"not measured: {why}", flush=True)
            run["not_measured"].append(why)
    run["load_end"] = load_average()
    page = report(run)
    print(page)
    if args.write:
        write_page(args.write, page)
    if args.json:
        args.json.write_text(json.dumps(run, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
