"""`helpdesk check`: a Nagios plugin reading the health the daemon records."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from gateway.db.models import Message, Modem, utcnow

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}
STALE = dt.timedelta(minutes=5)  # no reading for this long: the daemon is not running
BACKLOG_WARN, BACKLOG_CRIT = 50, 500


def evaluate(modems: list[dict], queued: int, now: dt.datetime) -> tuple[str, int]:
    """The status line and exit code for modem rows and the outbox backlog."""
    if not modems:
        return "HELPDESK UNKNOWN - no modem configured", UNKNOWN
    problems, code = [], OK
    for m in modems:
        stale = m["last_seen"] is None or now - m["last_seen"] > STALE
        if m["status"] != "up" or stale:
            problems.append(f"{m['name']} {'down' if m['status'] == 'down' else 'not seen'}")
    if problems:
        code = CRITICAL if len(problems) == len(modems) else WARNING
    if queued >= BACKLOG_CRIT:
        code = CRITICAL
    elif queued >= BACKLOG_WARN:
        code = max(code, WARNING)
    if queued >= BACKLOG_WARN:
        problems.append(f"{queued} texts queued")
    summary = ", ".join(problems) or f"{len(modems)} modem(s) up"
    perf = " ".join(f"{m['name']}_signal={m['signal_percent'] or 0}%;;;0;100" for m in modems)
    perf += f" outbox_queued={queued};{BACKLOG_WARN};{BACKLOG_CRIT};0"
    return f"HELPDESK {LABELS[code]} - {summary} | {perf}", code


def run_check(cfg) -> tuple[str, int]:
    from gateway.db.engine import make_engine, make_sessionmaker

    try:
        sessions = make_sessionmaker(make_engine(cfg.database_url))
        with sessions() as session:
            names = [m.name for m in cfg.modems]
            rows = session.scalars(select(Modem).where(Modem.name.in_(names))).all()
            seen = {r.name: r for r in rows}
            modems = [{"name": n, "status": seen[n].status if n in seen else "unknown",
                       "last_seen": seen[n].last_seen if n in seen else None,
                       "signal_percent": seen[n].signal_percent if n in seen else None}
                      for n in names]
            queued = session.scalar(select(func.count()).select_from(Message).where(
                Message.direction == "out", Message.status == "queued"))
    except Exception as e:  # a plugin reports, it never crashes
        return f"HELPDESK UNKNOWN - cannot read the database: {type(e).__name__}", UNKNOWN
    return evaluate(modems, queued, utcnow())
