"""Modem health: readings taken on a schedule and kept in the modems table, a colour
for each modem, and an SMS to the on-call numbers when a modem turns red or the outbox
backs up (once, and again when it recovers).

The UI, /api/v1/health, /metrics and `helpdesk check` read the same table, so a
`helpdesk web` process on another host sees the same picture.
"""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select

from gateway.db.models import Message, Modem
from gateway.desk import replies
from gateway.desk.outbox import queue_message
from gateway.sms.phone import normalise

log = logging.getLogger(__name__)

GREEN, YELLOW, RED = "green", "yellow", "red"


def colour(status: str, signal_percent, last_seen, now: dt.datetime, config) -> str:
    """Red: down, silent for `stale_after`, or signal below `signal_red`; yellow: signal
    below `signal_yellow`; else green."""
    stale = last_seen is None or (now - last_seen).total_seconds() > config.stale_after
    if status != "up" or stale or (signal_percent is not None
                                    and signal_percent < config.signal_red):
        return RED
    if signal_percent is not None and signal_percent < config.signal_yellow:
        return YELLOW
    return GREEN


FIELDS = ("host", "status", "signal_percent", "battery_percent", "operator", "network", "imei",
          "last_seen", "last_error", "sent_count", "received_count", "failed_count",
          "balance", "balance_expiry", "balance_text", "balance_at", "sim_used", "sim_size")


def modem_colours(session, config, now) -> dict[str, dict]:
    """Every configured modem's row as plain data, with its colour: a modem that is
    green by its readings is yellow while its credit is under `balance_floor`."""
    rows = {m.name: m for m in session.scalars(select(Modem))}
    found = {}
    for modem in config.modems:
        row = rows.get(modem.name)
        data = {"name": modem.name}
        data.update({field: getattr(row, field) if row else None for field in FIELDS})
        data["status"] = data["status"] or "unknown"
        for count in ("sent_count", "received_count", "failed_count"):
            data[count] = data[count] or 0
        data["balance_floor"] = modem.balance_floor
        data["low_balance"] = (modem.balance_floor is not None and data["balance"] is not None
                               and data["balance"] < modem.balance_floor)
        data["sim_full"] = bool(data["sim_size"]) and data["sim_used"] >= data["sim_size"]
        data["health"] = colour(data["status"], data["signal_percent"], data["last_seen"],
                                now, config)
        if data["health"] == GREEN and data["low_balance"]:
            data["health"] = YELLOW
        found[modem.name] = data
    return found


def queued_count(session) -> int:
    return session.scalar(select(func.count()).select_from(Message).where(
        Message.direction == "out", Message.status == "queued"))


def attention_count(session) -> int:
    """Inbound texts the pipeline marked for a person (it could not read or file them)."""
    return session.scalar(select(func.count()).select_from(Message).where(
        Message.direction == "in", Message.attention.is_not(None)))


def register_modems(session, names: list[str]) -> None:
    """A row per configured modem, so health shows a modem before its first reading."""
    existing = set(session.scalars(select(Modem.name).where(Modem.name.in_(names))))
    for name in names:
        if name not in existing:
            session.add(Modem(name=name, status="unknown"))


def record(session, name: str, readings: dict | None, error: str | None, now,
           counts: dict | None = None, host: str | None = None) -> None:
    """A modem's readings (None: it did not answer) and its counters since last time,
    written by `host`, the gateway host whose daemon has the modem: several hosts share
    the table, each writes only its own modems' rows."""
    modem = session.scalar(select(Modem).where(Modem.name == name))
    if modem is None:
        modem = Modem(name=name, received_count=0, sent_count=0, failed_count=0)
        session.add(modem)
    if host is not None:
        if modem.host not in (None, host) and modem.last_seen is not None \
                and (now - modem.last_seen).total_seconds() < 600:
            log.warning("modem %s is configured on gateway hosts %s and %s; each host's "
                        "modems need names of their own", name, modem.host, host)
        modem.host = host
    for key, value in (counts or {}).items():
        column = f"{key}_count"
        setattr(modem, column, (getattr(modem, column) or 0) + value)
    if readings is None:
        modem.status = "down"
        modem.last_error = (error or "")[:255]
        return
    modem.status = "up"
    modem.last_seen = now
    modem.last_error = None
    for key, value in readings.items():
        if value is not None:
            if isinstance(value, str):  # cut to the column: a modem's answer is not ours
                value = value[:Modem.__table__.c[key].type.length]
            setattr(modem, key, value)


def alerts_due(session, config, now, alerted: set) -> list[str]:
    """The alert texts whose condition changed since `alerted` (updated in place)."""
    texts = []
    for name, modem in modem_colours(session, config, now).items():
        key = f"modem:{name}"
        if modem["health"] == RED and key not in alerted:
            alerted.add(key)
            texts.append(replies.render("alert_modem_down", config.language, session,
                                        modem=name, status=modem["status"]))
        elif modem["health"] != RED and key in alerted:
            alerted.discard(key)
            texts.append(replies.render("alert_modem_up", config.language, session,
                                        modem=name))
        key = f"balance:{name}"
        if modem["low_balance"] and key not in alerted:
            alerted.add(key)  # once; told again only after it was topped up and fell again
            texts.append(replies.render("alert_low_balance", config.language, session,
                                        modem=name, balance=modem["balance"],
                                        floor=modem["balance_floor"]))
        elif not modem["low_balance"] and modem["balance"] is not None:
            alerted.discard(key)
    queued = queued_count(session)
    if queued >= config.alert_backlog and "backlog" not in alerted:
        alerted.add("backlog")
        texts.append(replies.render("alert_backlog", config.language, session, queued=queued))
    elif queued < config.alert_backlog // 2 and "backlog" in alerted:  # hysteresis
        alerted.discard("backlog")
        texts.append(replies.render("alert_backlog_cleared", config.language, session,
                                    queued=queued))
    return texts


def send_alerts(session, config, now, alerted: set) -> tuple[int, set]:
    """Queue the due alerts to every on-call number (the outbox picks a healthy modem):
    (how many, the conditions alerted now). `alerted` itself is left as it was, so a
    transaction that fails leaves the alert due next time."""
    alerted = set(alerted)
    numbers = [n for n in (normalise(raw, config.country) for raw in config.alert_numbers) if n]
    if not numbers:
        return 0, alerted
    texts = alerts_due(session, config, now, alerted)
    for text in texts:
        for number in numbers:
            queue_message(session, number, text)
    return len(texts), alerted
