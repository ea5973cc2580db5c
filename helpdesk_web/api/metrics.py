"""/metrics: the gateway's health in Prometheus' text format, for any scraper.

Built per request from the database, so every UI process reports the same figures.
"""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from gateway.db.models import utcnow
from gateway.desk import health
from helpdesk_web.db import get_db, helpdesk

bp = Blueprint("metrics", __name__)

HEALTH_VALUE = {health.GREEN: 0, health.YELLOW: 1, health.RED: 2}


@bp.route("/metrics")
def metrics():
    session, config = get_db(), helpdesk().config
    registry = CollectorRegistry()
    labels = ["modem"]
    up = Gauge("helpdesk_modem_up", "1 if the modem answered its last reading", labels,
               registry=registry)
    colour = Gauge("helpdesk_modem_health", "0 green, 1 yellow, 2 red", labels,
                   registry=registry)
    signal = Gauge("helpdesk_modem_signal_percent", "signal strength", labels,
                   registry=registry)
    battery = Gauge("helpdesk_modem_battery_percent", "battery charge", labels,
                    registry=registry)
    seen = Gauge("helpdesk_modem_last_seen_timestamp_seconds", "last answer", labels,
                 registry=registry)
    texts = Gauge("helpdesk_modem_texts", "texts since the modem was first configured",
                  ["modem", "outcome"], registry=registry)
    balance = Gauge("helpdesk_modem_balance_rupiah", "the SIM's prepaid credit, from USSD",
                    labels, registry=registry)
    floor = Gauge("helpdesk_modem_balance_floor_rupiah", "credit under which it alerts",
                  labels, registry=registry)
    sim_used = Gauge("helpdesk_modem_sim_used", "texts held on the SIM", labels,
                     registry=registry)
    sim_size = Gauge("helpdesk_modem_sim_size", "texts the SIM can hold", labels,
                     registry=registry)
    queued = Gauge("helpdesk_outbox_queued", "texts waiting to be sent", registry=registry)
    attention = Gauge("helpdesk_messages_attention",
                      "texts that came in and wait for a person to read them", registry=registry)
    for name, m in health.modem_colours(session, config, utcnow()).items():
        up.labels(name).set(1 if m["status"] == "up" else 0)
        colour.labels(name).set(HEALTH_VALUE[m["health"]])
        if m["signal_percent"] is not None:
            signal.labels(name).set(m["signal_percent"])
        if m["battery_percent"] is not None:
            battery.labels(name).set(m["battery_percent"])
        if m["last_seen"] is not None:
            # stored as naive UTC
            seen.labels(name).set(m["last_seen"].replace(tzinfo=dt.UTC).timestamp())
        for gauge, field in ((balance, "balance"), (floor, "balance_floor"),
                             (sim_used, "sim_used"), (sim_size, "sim_size")):
            if m[field] is not None:
                gauge.labels(name).set(m[field])
        for outcome in ("received", "sent", "failed"):
            texts.labels(name, outcome).set(m[f"{outcome}_count"] or 0)
    queued.set(health.queued_count(session))
    attention.set(health.attention_count(session))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
