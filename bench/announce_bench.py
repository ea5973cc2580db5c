"""New text to its ticket, with and without the modem's announcements (+CMTI), in one run.

    .venv/bin/python bench/announce_bench.py [--probes 50]

Two simulated modems (tests/modem_sim.py, libGammu's AT driver over the socat relay), the
real Twisted reactor, a threaded ModemWorker, the InboundPoller and the Database pool on
SQLite: one modem announces each text (read at once, fallback poll every
sms.poll_interval_notified = 5 s), the other announces nothing (polled every
sms.poll_interval = 0.5 s, as before). Each probe delivers one text at a random moment
and times it until its message and ticket are committed (what /api/v1/tickets reads)
and its SIM copy deleted. Budget: p95 under 250 ms with announcements.
"""
from __future__ import annotations

import argparse
import faulthandler
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from modem_bench import machine_info  # noqa: E402
from twisted.internet import defer, reactor  # noqa: E402

from gateway.config import ModemConfig, parse  # noqa: E402
from gateway.daemon.database import Database  # noqa: E402
from gateway.daemon.inbound import InboundPoller  # noqa: E402
from gateway.db.engine import make_engine, make_sessionmaker  # noqa: E402
from gateway.db.schema import upgrade  # noqa: E402
from gateway.modem.worker import ModemWorker  # noqa: E402
from tests.modem_sim import ModemSimulator  # noqa: E402

BUDGET_P95 = 0.250


def sleep(seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d


@defer.inlineCallbacks
def measure(work: Path, announces: bool, probes: int, rng: random.Random):
    url = f"sqlite:///{work}/helpdesk.db"
    engine = make_engine(url)
    upgrade(engine)
    config = parse({"database": {"url": url}}, "bench.toml")
    sim = ModemSimulator(link=str(work / "modem"), announces=announces).start()
    db = Database(make_sessionmaker(engine), reactor, size=2)
    worker = ModemWorker(ModemConfig("A", sim.gammu_config("proxyat")), reactor)
    stored = []
    poller = InboundPoller(worker, db, config, reactor,
                           on_stored=lambda ids: stored.append(time.perf_counter()))
    db.startService()
    worker.startService()
    try:
        yield worker.status()  # Init, kept out of the measurement
        poller.startService()
        yield sleep(0.6)
        latencies = []
        for i in range(probes):
            yield sleep(rng.uniform(0.05, 0.6))  # a random phase against the poll
            before = len(stored)
            started = time.perf_counter()
            sim.deliver(f"+62812{2000000 + i:07d}", f"KOMPLAIN pulsa belum masuk (probe {i})")
            deadline = started + 15
            while len(stored) == before and time.perf_counter() < deadline:
                yield sleep(0.002)
            if len(stored) == before:
                raise RuntimeError(f"probe {i} was not stored within 15 s")
            latencies.append(stored[before] - started)
        return {"announcing": worker.announcing, "announced": worker.announced,
                "latencies": latencies}
    finally:
        yield poller.stopService()
        yield worker.stopService()
        yield db.stopService()
        sim.stop()
        engine.dispose()


def quantile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def report(name, r):
    lat = r["latencies"]
    ms = [v * 1000 for v in lat]
    print(f"{name}: {len(lat)} probes, modem announcing: {r['announcing']}, announcements "
          f"read: {r['announced']}; new text -> ticket committed: p50 {quantile(ms, .5):.0f} ms, "
          f"p95 {quantile(ms, .95):.0f} ms, max {max(ms):.0f} ms, mean "
          f"{statistics.fmean(ms):.0f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=280.0)
    args = parser.parse_args(argv)
    faulthandler.dump_traceback_later(args.limit, exit=True)
    info = machine_info()
    print(f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory']}, {info['os']}")
    print(f"date: {info['date']}; repo at {info['commit']}; python-gammu "
          f"{info['python_gammu']}, relay: {shutil.which('socat') or 'python'}")
    work = Path(tempfile.mkdtemp(prefix="announce-bench-"))
    results, errors = {}, []
    rng = random.Random(args.seed)

    @defer.inlineCallbacks
    def run():
        try:
            for name, announces in (("announced (+CMTI)", True), ("poll only", False)):
                directory = work / name.split()[0]
                directory.mkdir()
                results[name] = yield measure(directory, announces, args.probes, rng)
        except Exception as e:
            errors.append(e)
        finally:
            reactor.stop()

    reactor.callWhenRunning(run)
    reactor.run(installSignalHandlers=False)
    shutil.rmtree(work, ignore_errors=True)
    faulthandler.cancel_dump_traceback_later()
    for name, r in results.items():
        report(name, r)
    if errors:
        print(f"failed: {errors[0]!r}", file=sys.stderr)
        return 1
    p95 = quantile(results["announced (+CMTI)"]["latencies"], .95)
    print(f"budget p95 < {BUDGET_P95 * 1000:.0f} ms with announcements: "
          f"{'met' if p95 < BUDGET_P95 else 'NOT met'} ({p95 * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
