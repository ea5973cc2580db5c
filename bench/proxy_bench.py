"""The queue through HAProxy with two UI processes, against one UI process direct.

    .venv/bin/python bench/proxy_bench.py [--clients 20] [--seconds 20] [--think 0]
                                          [--tickets 20000] [--messages 100000]
                                          [--contacts 5000] [--json FILE]

Fills a SQLite database (WAL) with bench/ui_data.py, starts two `helpdesk web` on it
with one secret file and `trusted_proxies = ["127.0.0.1"]`, and HAProxy on the repo's
proxy/haproxy.cfg (ports changed, logging to a file, as tests/deploy/test_proxy.py runs
it). Then --clients clients on keep-alive connections, logged in once as a user does,
ask for the queue (/tickets) for --seconds, closed loop (--think 0: the next request the
moment the last is answered) or with a mean pause of --think seconds, after the median
of one client alone (15 requests, nothing else running): first straight to
one process, then through the proxy to two, then through the proxy to one (the other
taken out of the configuration), for what the proxy costs by itself. bench/bench_ui.py's
client and percentiles are used. Loopback only: clients, proxy and UI processes share
the machine's cores, and so does whatever else runs on it (the load average is printed).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ui_data  # noqa: E402
from bench_ui import Client, alone, free_port, load  # noqa: E402
from run_all import commit, load_average, machine  # noqa: E402

from gateway import secret  # noqa: E402

HELPDESK = str(Path(sys.executable).with_name("helpdesk"))


def wait_listening(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen within 60 s")


def start_web(url: str, workdir: Path, n: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = workdir / f"web{n}.toml"
    config.write_text(f'[database]\nurl = "{url}"\n\n[web]\nlisten = "127.0.0.1:{port}"\n'
                      f'secret_file = "{workdir / "session.key"}"\n'
                      'trusted_proxies = ["127.0.0.1"]\n\n'
                      f'[agi]\nsecret_file = "{workdir / "agi.secret"}"\n')
    log = workdir / f"web{n}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([HELPDESK, "--config", str(config), "web"], stdout=out,
                                stderr=subprocess.STDOUT)
    wait_listening(port, proc, f"helpdesk web {n}", log)
    return proc, port


def start_haproxy(workdir: Path, backends: list[int], name: str) -> tuple[subprocess.Popen, int]:
    """proxy/haproxy.cfg with these backends (one or two), its log in a file."""
    listen = free_port()
    text = (REPO / "proxy" / "haproxy.cfg").read_text()
    text = re.sub(r"(?m)^(\s*bind )\*:80$", rf"\g<1>127.0.0.1:{listen}", text)
    text = re.sub(r"(?m)^\s*log /dev/log.*\n", "", text)
    text = text.replace("global\n", "global\n    log stderr format raw local0 info\n", 1)
    servers = "".join(f"    server web{n} 127.0.0.1:{port}\n" for n, port in enumerate(backends, 1))
    text = re.sub(r"(?m)^\s*server web\d+ .*\n", "", text).rstrip("\n") + "\n" + servers
    cfg = workdir / f"haproxy-{name}.cfg"
    cfg.write_text(text)
    log = workdir / f"haproxy-{name}.log"
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    with open(log, "w") as out:
        proc = subprocess.Popen([haproxy, "-db", "-f", str(cfg)], stdout=out,
                                stderr=subprocess.STDOUT)
    wait_listening(listen, proc, "haproxy", log)
    time.sleep(2.5)  # the first health checks, so every server is in the rotation
    return proc, listen


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_case(name: str, port: int, facts: dict, args) -> dict:
    client = Client(port)
    client.log_in(facts["user"], facts["password"])
    single = alone(port, client.cookie, "/tickets")
    load(port, client.cookie, "/tickets", args.clients, args.warmup, args.think)
    before = load_average()
    m = load(port, client.cookie, "/tickets", args.clients, args.seconds, args.think)
    m["alone_ms"] = single
    print(f"{name:22} alone {single:6.1f} ms | {args.clients} clients: "
          f"p50 {m['p50']:6.1f}  p95 {m['p95']:6.1f}  p99 {m['p99']:6.1f} ms  "
          f"{m['rps']:6.1f} req/s  {m['requests']} requests, {m['errors']} errors "
          f"{' '.join(m['error_kinds'])} (load {before})", flush=True)
    return {"case": name, **m, "load": before}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--think", type=float, default=0.0)
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=5_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    url = f"sqlite:///{workdir / 'ui.db'}"
    print(f"filling {url}: {args.tickets} tickets, {args.messages} messages, "
          f"{args.contacts} contacts", flush=True)
    ui_data.fill(url, args.tickets, args.messages, args.contacts)
    facts = ui_data.facts(url)
    secret.ensure(str(workdir / "session.key"))
    run = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "commit": commit(), "load_start": load_average(), "clients": args.clients,
           "seconds": args.seconds, "think": args.think, "tickets": args.tickets,
           "messages": args.messages, "contacts": args.contacts, "results": []}
    procs = []
    try:
        web1, port1 = start_web(url, workdir, 1)
        web2, port2 = start_web(url, workdir, 2)
        procs += [web1, web2]
        run["results"].append(run_case("1 process, direct", port1, facts, args))
        proxy, listen = start_haproxy(workdir, [port1, port2], "two")
        procs.append(proxy)
        run["results"].append(run_case("HAProxy, 2 processes", listen, facts, args))
        stop(proxy)
        proxy, listen = start_haproxy(workdir, [port1], "one")
        procs.append(proxy)
        run["results"].append(run_case("HAProxy, 1 process", listen, facts, args))
    finally:
        for proc in procs:
            if proc.poll() is None:
                stop(proc)
    run["load_end"] = load_average()
    m = run["machine"]
    print(f"{args.clients} clients, {args.seconds:g} s per case, think {args.think:g} s; "
          f"{args.tickets} tickets, {args.messages} messages on SQLite (WAL); "
          f"{m['nproc']} CPUs ({m['cpu']}), load average {run['load_start']} at the start, "
          f"{run['load_end']} at the end (the machine's cores are shared with whatever else "
          "runs on it)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(run, indent=1, default=str) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
