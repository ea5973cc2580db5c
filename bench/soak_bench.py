"""Soak: 100,000 texts through a simulated modem into a running `helpdesk run`.

Run:  .venv/bin/python bench/soak_bench.py [--texts N] [--wave N] [--senders N]
                                          [--mysql URL]

Texts arrive in waves (default 1,000 at a time, the SIM drained between waves, as a busy
shop's modems see them), written as Gammu backup files into the dummy driver's inbox
while the daemon runs. The words are the customer texts of tests/data/sms_unseen.tsv in
turn, from a pool of senders (default 20,000), so most texts find a contact and many an
open ticket; after each wave every ticket older than the wave before is resolved, as
operators do all day, so new tickets keep being opened. Each wave records the time per
text (written to filed: the inbound rows committed), the daemon's VmRSS and the
database's size.

Levelling off: memory is judged on the second half of the run (after the caches and the
allocator have settled): the RSS at the end against the RSS at the midpoint, and the time
per text of the last tenth against the second tenth. It prints that and a line for every
tenth of the run; `make bench` (bench/run_all.py) puts it on docs/benchmarks-soak.md with
the machine, load, date and commit.

SQLite by default; --mysql URL runs the same on MariaDB (that database is emptied first).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import spine_bench as spine  # noqa: E402  (its helpers; it sets sys.path for gateway/)
from sqlalchemy import create_engine, func, select, text, update  # noqa: E402

from gateway.config import dummy_inbox  # noqa: E402
from gateway.db.models import CLOSED_RANK, OPEN_TICKET_STATUSES, Message, Ticket  # noqa: E402

REPO = spine.REPO
TEXTS = REPO / "tests" / "data" / "sms_unseen.tsv"
WAVE_TIMEOUT = 300.0  # seconds for one wave to be filed before the run is called failed


def customer_texts() -> list[str]:
    with open(TEXTS, newline="", encoding="utf-8") as f:
        return [row["text"] for row in csv.DictReader(f, delimiter="\t")]


def sender(i: int) -> str:
    return f"+62813{50000000 + i:08d}"


def db_size(engine, url: str) -> int:
    if url.startswith("sqlite"):
        path = Path(engine.url.database)
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables"
            " WHERE table_schema = DATABASE()")).scalar())


def soak(work: Path, url: str, total: int, wave: int, senders: int) -> dict:
    device = work / "modem"
    inbox = dummy_inbox(spine.modem(device))
    inbox.mkdir(parents=True)
    config, _port = spine.write_config(work, url, device)
    spine.helpdesk(config, "init")
    engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    words = customer_texts()
    rng = random.Random(7)
    count_in = select(func.count()).select_from(Message).where(Message.direction == "in")
    newest_ticket = select(func.max(Ticket.id))

    proc = spine.start([spine.HELPDESK, "--config", str(config), "run"], work / "daemon.log",
                       env={"HELPDESK_LOG_LEVEL": "WARNING"})
    samples = []
    filed = 0
    resolve_up_to = 0
    t_run = time.monotonic()
    try:
        while filed < total:
            size = min(wave, total - filed)
            when = dt.datetime.now(dt.UTC).replace(microsecond=0)
            t0 = time.monotonic()
            for location in range(1, size + 1):  # the SIM was drained: its slots are free
                n = filed + location
                spine.write_deliver_backup(inbox, location, sender(rng.randrange(senders)),
                                           words[n % len(words)], when)
            deadline = t0 + WAVE_TIMEOUT
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"daemon exited with {proc.returncode}; see "
                                       f"{work}/daemon.log")
                with engine.connect() as conn:
                    stored = conn.execute(count_in).scalar()
                if stored >= filed + size and not any(inbox.iterdir()):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"wave at {filed} not filed in {WAVE_TIMEOUT:.0f} s "
                                       f"({stored} stored)")
                time.sleep(0.02)
            seconds = time.monotonic() - t0
            filed += size
            # Operators resolve what came before this wave; the next wave opens new tickets.
            with engine.begin() as conn:
                if resolve_up_to:
                    conn.execute(update(Ticket).where(
                        Ticket.id <= resolve_up_to, Ticket.status.in_(OPEN_TICKET_STATUSES))
                        .values(status="resolved", closed_at=dt.datetime.utcnow(),
                                waiting_since=None,  # as the models keep the queue
                                queue_rank=Ticket.queue_rank + CLOSED_RANK))
                resolve_up_to = conn.execute(newest_ticket).scalar() or 0
            samples.append({"texts": filed, "ms_per_text": 1000 * seconds / size,
                            "rss_mib": spine.rss_kib(proc.pid)["VmRSS"] / 1024,
                            "db_mib": db_size(engine, url) / 2**20,
                            "elapsed_s": time.monotonic() - t_run})
            if len(samples) % 10 == 0 or filed >= total:
                spine.log("soak: " + json.dumps({k: round(v, 2) for k, v in samples[-1].items()}))
        with engine.connect() as conn:
            tickets = conn.execute(select(func.count()).select_from(Ticket)).scalar()
            outbound = conn.execute(select(func.count()).select_from(Message)
                                    .where(Message.direction == "out")).scalar()
    finally:
        spine.stop(proc)
        engine.dispose()
    return {"backend": url.split(":")[0].split("+")[0], "texts": filed, "wave": wave,
            "senders": senders, "tickets": tickets, "outbound": outbound,
            "seconds": samples[-1]["elapsed_s"], "samples": samples}


def verdict(result: dict) -> dict:
    samples = result["samples"]
    tenth = max(1, len(samples) // 10)
    mid, end = samples[len(samples) // 2], samples[-1]
    early = samples[tenth:2 * tenth] or samples[:1]
    late = samples[-tenth:]
    per_text = [sum(s["ms_per_text"] for s in part) / len(part) for part in (early, late)]
    return {"rss_mid_mib": mid["rss_mib"], "rss_end_mib": end["rss_mib"],
            "rss_growth_second_half": end["rss_mib"] / mid["rss_mib"] - 1,
            "rss_peak_mib": max(s["rss_mib"] for s in samples),
            "ms_per_text_second_tenth": per_text[0], "ms_per_text_last_tenth": per_text[1],
            "db_mib_end": end["db_mib"],
            "db_kib_per_text": end["db_mib"] * 1024 / result["texts"]}


def table(result: dict) -> list[str]:
    v = verdict(result)
    lines = [
        f"{result['backend']}: {result['texts']:,} texts in waves of {result['wave']:,} from "
        f"{result['senders']:,} senders, {result['seconds']:.0f} s; {result['tickets']:,} "
        f"tickets opened, {result['outbound']:,} texts queued out",
        f"RSS {v['rss_mid_mib']:.0f} MiB at the midpoint, {v['rss_end_mib']:.0f} MiB at the end "
        f"({100 * v['rss_growth_second_half']:+.1f} % over the second half), peak "
        f"{v['rss_peak_mib']:.0f} MiB",
        f"per text {v['ms_per_text_second_tenth']:.2f} ms in the second tenth, "
        f"{v['ms_per_text_last_tenth']:.2f} ms in the last",
        f"database {v['db_mib_end']:.0f} MiB at the end ({v['db_kib_per_text']:.1f} KiB per text)",
        "",
        "   texts  ms/text  RSS MiB  DB MiB",
    ]
    step = max(1, len(result["samples"]) // 10)
    for s in result["samples"][step - 1::step]:
        lines.append(f"{s['texts']:>8,} {s['ms_per_text']:>8.2f} {s['rss_mib']:>8.0f} "
                     f"{s['db_mib']:>7.0f}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--wave", type=int, default=1_000)
    parser.add_argument("--senders", type=int, default=20_000)
    parser.add_argument("--mysql", help="also soak MariaDB (this database is emptied)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        (work / "sqlite").mkdir()
        results.append(soak(work / "sqlite", f"sqlite:///{work}/sqlite/helpdesk.db",
                            args.texts, args.wave, args.senders))
        if args.mysql:
            spine.use_mysql(args.mysql)
            spine.empty_database(spine.HELPDESK_DB)
            (work / "mysql").mkdir()
            results.append(soak(work / "mysql", args.mysql, args.texts, args.wave,
                                args.senders))
    print(f"code: {spine.SOURCE_LABEL}")
    for result in results:
        print("\n".join(table(result)) + "\n")


if __name__ == "__main__":
    main()
