"""The health monitor: each modem's readings on a schedule, written to the modems table
(with the counters its worker kept), and the on-call alerts. The colours and alert rules
are the domain's (gateway.desk.health). A modem with `ussd_balance` has its SIM credit
dialled every `ussd_every` seconds in the same round (gateway.sms.ussd reads the answer)."""
from __future__ import annotations

import logging

from twisted.internet import defer

from gateway.daemon.periodic import Periodic
from gateway.db.models import utcnow
from gateway.modem.translate import error_text
from gateway.sms.ussd import read_balance

log = logging.getLogger(__name__)


class HealthMonitor(Periodic):
    name = "health"

    def __init__(self, workers, db, config, clock, every=30.0):
        super().__init__(clock)
        self.workers, self.db, self.config, self.every = workers, db, config, every
        self.alerted: set = set()  # conditions already told to the on-call numbers
        self.balance_due: dict[str, float] = {}  # modem -> clock time of its next USSD

    @defer.inlineCallbacks
    def step(self):
        for worker in self.workers:
            readings, error = None, None
            try:
                readings = yield worker.status()
            except Exception as e:
                error = error_text(e) if not str(e).startswith("modem ") else str(e)
            if readings is not None:
                credit = yield self.balance(worker)
                if credit:
                    readings.update(credit)
            counts, worker.counts = dict(worker.counts), type(worker.counts)()
            try:
                yield self.db.modems.record(worker.name, readings, error, utcnow(self.clock),
                                            counts, getattr(self.config, "node", None))
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

    @defer.inlineCallbacks
    def balance(self, worker):
        """The SIM credit when it is due: readings for the modems table, or None."""
        config = getattr(worker, "config", None)
        code = getattr(config, "ussd_balance", None)
        now = self.clock.seconds()
        if not code or now < self.balance_due.get(worker.name, 0.0):
            return None
        every = getattr(config, "ussd_every", 21600.0)
        # Dialled again after ussd_every; after a failure within 10 minutes at most.
        self.balance_due[worker.name] = now + min(every, 600.0)
        try:
            text = yield worker.balance(code)
        except Exception as e:
            log.warning("modem %s: no SIM credit from %s: %s", worker.name, code,
                        error_text(e) if not str(e).startswith("modem ") else e)
            return None
        self.balance_due[worker.name] = now + every
        amount, expiry = read_balance(text)
        if amount is None:
            log.info("modem %s: the answer to %s has no balance we know: %r",
                     worker.name, code, text[:255])
        return {"balance": amount, "balance_expiry": expiry, "balance_text": text[:255],
                "balance_at": utcnow(self.clock)}
