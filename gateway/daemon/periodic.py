"""The daemon's loops (SIM polls, outbox, multipart sweep, health) share one shape."""
from __future__ import annotations

import logging

from twisted.application import service
from twisted.internet import defer

log = logging.getLogger(__name__)


class Periodic(service.Service):
    """Runs `step()` again and again on a clock; `step` returns (or fires with) the
    seconds until the next run. A stop cancels the next run and waits for the one in
    progress, so no step outlives the modems and the database it uses."""

    first_delay = 0.0
    error_delay = 30.0  # after a step that failed outright (steps catch their own errors)

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
        return self._current

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
