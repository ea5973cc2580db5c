"""The dashboard at `/`: the day's figures, refreshed in place by static/dashboard.js.

The page and /dashboard.json show the same figures, formatted here once (numbers,
rupiah, ages, dates in the user's language), so the script only copies text into place
and a browser without JavaScript still gets the whole page.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, jsonify, render_template
from flask_babel import format_timedelta
from flask_babel import gettext as _

from gateway.db.models import utcnow
from gateway.desk import dashboard, replies
from gateway.desk.outbox import OUTBOX_STATES
from helpdesk_web.auth import login_required
from helpdesk_web.db import get_db, helpdesk
from helpdesk_web.i18n import when

bp = Blueprint("dashboard", __name__)

@bp.route("/")
@login_required
def index():
    summary, figures, modems = _figures()
    return render_template("dashboard/index.html", summary=summary, figures=figures,
                           modems=modems, bands=dashboard.AGE_BANDS,
                           states=OUTBOX_STATES)


@bp.route("/dashboard.json")
@login_required
def figures_json():
    _summary, figures, modems = _figures()
    response = jsonify(figures=figures, modems=modems)
    response.headers["Cache-Control"] = "no-store"
    return response


def _figures() -> tuple[dashboard.Summary, dict[str, str], list[dict]]:
    now = utcnow()
    summary = dashboard.summary(get_db(), helpdesk().config, now)
    figures = {f"tickets.{kind}.{band}": str(n)
               for kind, bands in summary.tickets.items() for band, n in bands.items()}
    figures.update({
        "waiting": str(summary.waiting),
        "waiting_age": _("oldest waits %(age)s", age=_age(now - summary.oldest_waiting))
        if summary.oldest_waiting else "",
        "orders_today": str(summary.orders_today),
        "orders_today_total": replies.rupiah(summary.orders_today_total),
        "payments_waiting": str(summary.payments_waiting),
        "payments_waiting_total": replies.rupiah(summary.payments_waiting_total),
        "attention": str(summary.attention),
        **{f"outbox.{state}": str(n) for state, n in summary.outbox.items()},
    })
    labels = health_labels()
    modems = [{
        "name": m["name"], "health": m["health"],
        "health_label": labels.get(m["health"], m["health"]),
        "status": m["status"],
        "signal": f"{m['signal_percent']} %" if m["signal_percent"] is not None else "-",
        "last_seen": when(m["last_seen"]) if m["last_seen"] else _("never"),
    } for m in summary.modems]
    return summary, figures, modems


def _age(age: dt.timedelta) -> str:
    return format_timedelta(max(age, dt.timedelta(0)), threshold=1.0)



def health_labels() -> dict[str, str]:
    """A modem's colour in words, for the screen reader and the colour-blind."""
    return {"green": _("working"), "yellow": _("weak signal or low credit"), "red": _("down")}
