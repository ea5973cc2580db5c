"""The health monitor: each modem's readings on a schedule, written to the modems table
(with the counters its worker kept), and the on-call alerts. The colours and alert rules
are the domain's (gateway.desk.health)."""
from __future__ import annotations

import logging

from twisted.internet import defer

from gateway.daemon.periodic import Periodic
from gateway.db.models import utcnow
from gateway.modem.translate import error_text

log = logging.getLogger(__name__)


class HealthMonitor(Periodic):
    name = "health"

    def __init__(self, workers, db, config, clock, every=30.0):
        super().__init__(clock)
        self.workers, self.db, self.config, self.every = workers, db, config, every
        self.alerted: set = set()  # conditions already told to the on-call numbers

    @defer.inlineCallbacks
    def step(self):
        for worker in self.workers:
            readings, error = None, None
            try:
                readings = yield worker.status()
            except Exception as e:
                error = error_text(e) if not str(e).startswith("modem ") else str(e)
            counts, worker.counts = dict(worker.counts), type(worker.counts)()
            try:
                yield self.db.modems.record(worker.name, readings, error, utcnow(self.clock),
                                            counts)
            except Exception:
                worker.counts.update(counts)  # not lost: written with the next reading
                log.exception("could not record the health of modem %s", worker.name)
        try:
            sent, self.alerted = yield self.db.modems.send_alerts(
                self.config, utcnow(self.clock), self.alerted)
            if sent:
                log.warning("queued %d alert(s) to the on-call numbers", sent)
        except Exception:
            log.exception("could not check for alerts")
        return self.every
