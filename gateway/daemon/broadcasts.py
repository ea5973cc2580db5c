"""Feeds the running broadcasts into the outbox, a few texts at a time.

The outbox never holds more than gateway.desk.broadcasts.WINDOW_PER_MODEM bulk texts per
modem, so an operator's reply (PRIORITY_PERSON) waits behind at most those few, and a
pause or a cancel takes effect within a send or two. The work is one transaction on the
database pool; the send window, the days and [broadcasts] rate are checked there.
"""
from __future__ import annotations

import logging

from twisted.internet import defer

from gateway.daemon.periodic import Periodic
from gateway.db.models import utcnow
from gateway.desk import broadcasts

log = logging.getLogger(__name__)


class BroadcastFeeder(Periodic):
    name = "broadcasts"
    busy_interval = 1.0   # while it queued texts: soon again, the outbox drains fast
    idle_interval = 2.0   # nothing to do, outside the window, or the outbox full: a few
                          # cheap queries, and a new broadcast starts within 2 s

    def __init__(self, db, config, clock, modems: int, on_queued=None):
        super().__init__(clock)
        self.db, self.config, self.modems = db, config, modems
        self.on_queued = on_queued

    @defer.inlineCallbacks
    def step(self):
        try:
            queued = yield self.db.run(broadcasts.feed, self.config, utcnow(self.clock),
                                       self.modems)
        except Exception:
            log.exception("broadcasts: feeding the outbox failed; will try again")
            return self.idle_interval
        if queued and self.on_queued is not None:
            self.on_queued()
        return self.busy_interval if queued else self.idle_interval
