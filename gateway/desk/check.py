"""`helpdesk check`: a Nagios plugin reading the health the daemon records."""
from __future__ import annotations

from gateway.db.models import utcnow
from gateway.desk.health import modem_colours, queued_count

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LABELS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def evaluate(modems: list[dict], queued: int, config) -> tuple[str, int]:
    """The status line and exit code for the modems' colours and the outbox backlog."""
    if not modems:
        return "HELPDESK UNKNOWN - no modem configured", UNKNOWN
    red = [m["name"] for m in modems if m["health"] == "red"]
    yellow = [m["name"] for m in modems if m["health"] == "yellow"]
    code = CRITICAL if len(red) == len(modems) else WARNING if red or yellow else OK
    problems = [f"{n} red" for n in red] + [f"{n} yellow" for n in yellow]
    if queued >= config.alert_backlog:
        code = max(code, WARNING)
        problems.append(f"{queued} texts queued")
    summary = ", ".join(problems) or f"{len(modems)} modem(s) green"
    perf = " ".join(f"{m['name']}_signal={m['signal_percent'] or 0}%;{config.signal_yellow}:;"
                    f"{config.signal_red}:;0;100" for m in modems)
    perf += f" outbox_queued={queued};{config.alert_backlog};;0"
    return f"HELPDESK {LABELS[code]} - {summary} | {perf}", code


def run_check(cfg) -> tuple[str, int]:
    from gateway.db.engine import make_engine, make_sessionmaker

    try:
        sessions = make_sessionmaker(make_engine(cfg.database_url))
        with sessions() as session:
            modems = list(modem_colours(session, cfg, utcnow()).values())
            queued = queued_count(session)
    except Exception as e:  # a plugin reports, it never crashes
        return f"HELPDESK UNKNOWN - cannot read the database: {type(e).__name__}", UNKNOWN
    return evaluate(modems, queued, cfg)
