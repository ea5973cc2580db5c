"""The planner's statistics, gathered again as the tables grow (SQLite keeps none itself)."""
from __future__ import annotations

import logging

from twisted.internet import defer

from gateway.daemon.periodic import Periodic
from gateway.desk import search

log = logging.getLogger(__name__)


class PlannerStatistics(Periodic):
    """Every `every` seconds, gateway.desk.search.refresh_statistics in one transaction:
    the queue and the search keep their indexes as 1,000 tickets become 100,000."""

    name = "planner-statistics"

    def __init__(self, db, clock, every=3600.0, first=600.0):
        super().__init__(clock)
        self.db, self.every = db, every
        self.first_delay = first

    @defer.inlineCallbacks
    def step(self):
        try:
            yield self.db.run(search.refresh_statistics)
        except Exception:
            log.exception("gathering the planner's statistics failed; will try again")
        return self.every
