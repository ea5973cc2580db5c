"""Every configured modem: health colour, signal, battery, operator, IMEI, SIM credit and
storage, counters and last error, as the daemon's health monitor last recorded them."""
from __future__ import annotations

from flask import Blueprint, render_template

from gateway.db.models import utcnow
from gateway.desk import health
from helpdesk_web.auth import login_required
from helpdesk_web.db import get_db, helpdesk

bp = Blueprint("modems", __name__)


@bp.route("/modems")
@login_required
def index():
    modems = health.modem_colours(get_db(), helpdesk().config, utcnow()).values()
    return render_template("modems/list.html", modems=list(modems))
