"""Modem health: readings taken on a schedule and kept in the modems table.

The UI, /api/v1/health and `helpdesk check` read that table, so a `helpdesk web`
process on another host sees the same picture.
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from gateway.db.models import Modem, utcnow
from gateway.modem import error_text
from twisted.application import service
from twisted.internet import defer

log = logging.getLogger(__name__)


def register_modems(session, names: list[str]) -> None:
    """A row per configured modem, so health shows a modem before its first reading."""
    existing = set(session.scalars(select(Modem.name).where(Modem.name.in_(names))))
    for name in names:
        if name not in existing:
            session.add(Modem(name=name, status="unknown"))


def record(session, name: str, readings: dict | None, error: str | None, now,
           counts: dict | None = None) -> None:
    """A modem's readings (None: it did not answer) and its counters since last time."""
    modem = session.scalar(select(Modem).where(Modem.name == name))
    if modem is None:
        modem = Modem(name=name, received_count=0, sent_count=0, failed_count=0)
        session.add(modem)
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
            setattr(modem, key, value if not isinstance(value, str) else value[:64])


class HealthMonitor(service.Service):
    def __init__(self, workers, db, clock, every=30.0):
        self.workers, self.db, self.clock, self.every = workers, db, clock, every
        self.name = "health"
        self._call = None

    def startService(self):
        super().startService()
        self._call = self.clock.callLater(0, self.check)

    def stopService(self):
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()

    @defer.inlineCallbacks
    def check(self):
        for worker in self.workers:
            readings, error = None, None
            try:
                readings = yield worker.status()
            except Exception as e:
                error = error_text(e) if not str(e).startswith("modem ") else str(e)
            counts, worker.counts = dict(worker.counts), type(worker.counts)()
            try:
                yield self.db.run(record, worker.name, readings, error, utcnow(self.clock),
                                  counts)
            except Exception:
                worker.counts.update(counts)  # not lost: written with the next reading
                log.exception("could not record the health of modem %s", worker.name)
        if self.running:
            self._call = self.clock.callLater(self.every, self.check)
