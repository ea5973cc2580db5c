"""The daemon's loops (SIM polls, outbox, multipart sweep, health) share one shape."""
from __future__ import annotations

import logging

from twisted.application import service
from twisted.internet import defer

log = logging.getLogger(__name__)


class Periodic(service.Service):
    """Runs `step()` again and again on a clock; `step` returns (or fires with) the
    seconds until the next run. A stop cancels the next run and waits for the one in
    progress (at most `stop_wait`), so no step outlives the modems and the database it
    uses."""

    first_delay = 0.0
    error_delay = 30.0  # after a step that failed outright (steps catch their own errors)
    stop_wait = 3.0     # a stop waits at most this long for the step in progress

    def __init__(self, clock):
        self.clock = clock
        self._next = None      # the DelayedCall of the next run
        self._current = None   # fires when the run in progress is over
        self._woken = False

    def step(self):
        raise NotImplementedError

    def startService(self):
        super().startService()
        self._schedule(self.first_delay)

    def stopService(self):
        super().stopService()
        if self._next is not None and self._next.active():
            self._next.cancel()
        return self.at_most(self.stop_wait, [self._current])

    def at_most(self, seconds: float, waiting) -> defer.Deferred | None:
        """Fires when every Deferred of `waiting` has, or after `seconds`: a step stuck
        on a hung modem must not hold up a stop (what it left undone is safe: texts not
        yet stored stay on the SIM, a send not yet recorded becomes `unknown`)."""
        waiting = [d for d in waiting if d is not None and not d.called]
        if not waiting:
            return None
        done = defer.Deferred()
        timer = self.clock.callLater(seconds, lambda: done.called or done.callback(None))

        def finished(_):
            if timer.active():
                timer.cancel()
            if not done.called:
                done.callback(None)
        defer.DeferredList(waiting, consumeErrors=True).addCallback(finished)
        return done

    def wake(self):
        """Run now rather than at the next tick (or right after the run in progress)."""
        if not self.running:
            return
        if self._current is not None:
            self._woken = True
        elif self._next is not None and self._next.active():
            self._next.reset(0)

    def _schedule(self, delay):
        if self.running:
            self._next = self.clock.callLater(delay, self._run)

    @defer.inlineCallbacks
    def _run(self):
        self._current = done = defer.Deferred()
        delay = self.error_delay
        try:
            delay = yield self.step()
        except Exception:
            log.exception("%s: step failed; trying again in %.0f s", self.name, delay)
        finally:
            self._current = None
            done.callback(None)
        woken, self._woken = self._woken, False
        self._schedule(0 if woken else delay)


class DailySummaryJob(Periodic):
    """Each minute: queue the day's summary to the supervisors once its hour has come
    (gateway.reports.summary, which keeps each day to one send across restarts)."""

    name = "daily-summary"
    first_delay = 5.0

    def __init__(self, db, config, clock, on_queued=None, every=60.0):
        super().__init__(clock)
        self.db, self.config, self.on_queued, self.every = db, config, on_queued, every

    @defer.inlineCallbacks
    def step(self):
        from sqlalchemy.exc import IntegrityError

        from gateway.db.models import utcnow
        from gateway.reports import summary

        try:
            sent = yield self.db.run(summary.send_due, self.config, utcnow(self.clock))
        except IntegrityError:  # another gateway host queued today's at the same moment
            sent = 0
        if sent:
            log.info("queued the daily summary to %d supervisor(s)", sent)
            if self.on_queued is not None:
                self.on_queued()
        return self.every
