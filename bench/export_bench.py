"""Time and peak memory of `helpdesk export messages` (CSV and XLSX) on a big database,
and the time of each report over a year on it.

    .venv/bin/python bench/export_bench.py [--db /tmp/export-bench/ui.db] [--messages 1000000]
                                           [--tickets 100000] [--reuse] [--formats csv,xlsx]

The SQLite database is filled by bench/ui_data.py (a shop's year: contacts, tickets of
every kind, ~10 texts each, orders, payments) unless --reuse finds one of that size. Each
export runs as its own process, `helpdesk --config ... export messages --from --to -o`,
and its wall time and peak RSS (the child's VmHWM) are printed, with the
file's size and rows. The reports run in this process, each timed once for the whole year
grouped by month and then by day.
"""
from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ui_data  # noqa: E402

FIRST, LAST = "2025-11-01", "2026-12-31"  # ui_data's year ends on 2026-12-01


def _high_water(pid: int) -> int | None:
    """The process's peak RSS so far (VmHWM, KiB); None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def run_export(config: Path, fmt: str, out: Path, first=FIRST, last=LAST) -> dict:
    # Peak RSS is read from /proc (VmHWM, reset at exec) while the child runs, not from
    # getrusage: a child's ru_maxrss starts from this process's size at the fork, and
    # this one has just filled a million rows.
    helpdesk = REPO / ".venv" / "bin" / "helpdesk"
    started = time.monotonic()
    child = subprocess.Popen([str(helpdesk), "--config", str(config), "export", "messages",
                              "--from", first, "--to", last, "--format", fmt, "-o", str(out)])
    peak = 0
    while child.poll() is None:
        peak = max(peak, _high_water(child.pid) or 0)
        time.sleep(0.2)
    seconds = time.monotonic() - started
    if child.returncode != 0:
        raise SystemExit(f"export {fmt} failed with {child.returncode}")
    return {"format": fmt, "seconds": round(seconds, 1), "peak_rss_mib": round(peak / 1024, 1),
            "file_mib": round(out.stat().st_size / 2**20, 1)}


def time_reports(url: str) -> list[tuple[str, str, float]]:
    from gateway.db.engine import make_engine, make_sessionmaker
    from gateway.reports import queries

    sessions = make_sessionmaker(make_engine(url))
    out = []
    for grouping in ("month", "day"):
        period = queries.Range(dt.date.fromisoformat(FIRST), dt.date.fromisoformat(LAST),
                               grouping)
        for name in queries.REPORTS:
            with sessions() as session:
                started = time.monotonic()
                queries.run(session, name, period)
                out.append((name, grouping, time.monotonic() - started))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="/tmp/export-bench/ui.db")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--reuse", action="store_true", help="keep a database of that size")
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--from", dest="first", default=FIRST, help="the export's first day")
    parser.add_argument("--to", dest="last", default=LAST, help="the export's last day")
    parser.add_argument("--no-reports", action="store_true")
    args = parser.parse_args(argv)
    db = Path(args.db)
    db.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    size = ui_data.sizes(url) if db.exists() else None
    if not (args.reuse and size and size[1] == args.messages):
        made = ui_data.fill(url, args.tickets, args.messages, args.contacts, quiet=True)
        print(f"filled {args.messages:,} messages, {args.tickets:,} tickets in "
              f"{made['seconds']:.0f} s")
    config = db.parent / "bench.toml"
    config.write_text(f'[database]\nurl = "{url}"\n[reports]\ncompany = "Toko Bench"\n')
    for fmt in args.formats.split(","):
        result = run_export(config, fmt, db.parent / f"messages.{fmt}", args.first, args.last)
        print(f"export messages {args.first}..{args.last} {fmt}: {result['seconds']} s, peak RSS "
              f"{result['peak_rss_mib']} MiB, file {result['file_mib']} MiB")
    if args.no_reports:
        return 0
    for name, grouping, seconds in time_reports(url):
        print(f"report {name} by {grouping}, {FIRST}..{LAST}: {seconds * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
