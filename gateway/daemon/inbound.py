"""The inbound pipeline of one modem: read the SIM, store and commit, then delete.

Runs on the reactor; the modem calls go to the modem's thread and the database work to
the DB pool. Polls every `poll_interval` seconds, and at once again while the SIM still
holds texts. A modem that announces new texts (+CMTI, +CDS) wakes the poller at once
and is then polled only every `poll_interval_notified` seconds, for an announcement
lost. If the database is down, nothing is deleted and the poll retries with backoff;
the texts wait on the SIM.
"""
from __future__ import annotations

import logging
import os
import signal

from twisted.internet import defer

from gateway.daemon.periodic import Periodic
from gateway.db.models import utcnow
from gateway.modem.translate import ModemHung, ModemUnavailable

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0

# Crash-safety tests set this to die between the commit and the delete (SIGKILL, no
# clean-up), the moment the README's first rule exists for.
_KILL_AFTER_COMMIT = os.environ.get("HELPDESK_TEST_KILL_AFTER_COMMIT") == "1"


class InboundPoller(Periodic):
    def __init__(self, worker, db, config, clock, on_stored=None):
        super().__init__(clock)
        self.worker = worker
        self.db = db
        self.config = config
        self.on_stored = on_stored  # called with new message ids (wakes the outbox)
        self.name = f"inbound-{worker.name}"
        self.failures = 0
        listeners = getattr(worker, "on_announce", None)
        if listeners is not None:
            listeners.append(self.wake)  # a text announced is read now, not at the tick

    def interval(self) -> float:
        """The fallback poll while the modem announces texts, else sms.poll_interval."""
        if getattr(self.worker, "announcing", False):
            return max(self.config.poll_interval,
                       getattr(self.config, "poll_interval_notified", self.config.poll_interval))
        return self.config.poll_interval

    @defer.inlineCallbacks
    def step(self):
        """A poll, then the wait: none while texts remain, backoff after failures."""
        started = self.clock.seconds()
        more = yield self.poll()
        if self.failures:
            return min(MAX_BACKOFF, self.config.poll_interval * 2 ** self.failures)
        if more:
            return 0
        # Fixed rate: a slow read does not stretch the wait for the next text.
        return max(0.0, self.interval() - (self.clock.seconds() - started))

    @defer.inlineCallbacks
    def poll(self):
        """One read-store-delete round; returns whether the SIM may hold more."""
        more = False
        try:
            more = yield self._poll_once()
            self.failures = 0
        except ModemUnavailable as e:
            self.failures += 1
            log.debug("%s", e)
        except ModemHung as e:  # the watchdog or a stop aborted the read: nothing lost
            self.failures += 1
            log.warning("%s; texts stay on the SIM", e)
        except Exception:
            self.failures += 1
            log.exception("modem %s: inbound poll failed; texts stay on the SIM", self.worker.name)
        return more

    @defer.inlineCallbacks
    def _poll_once(self):
        parts, more = yield self.worker.read_inbox()
        if not parts:
            return more
        result = yield self.db.inbox.store(self.worker.name, parts, self.config,
                                           utcnow(self.clock))
        # Committed: only now may the SIM copies go.
        if _KILL_AFTER_COMMIT:
            os.kill(os.getpid(), signal.SIGKILL)
        yield self.worker.delete(result.deletable)
        self.worker.counts["received"] += len(result.messages)
        if result.messages and self.on_stored:
            self.on_stored(result.messages)
        return more


class MultipartSweeper(Periodic):
    """Files multipart texts whose last parts never came, once their timeout passes."""

    name = "multipart-sweeper"

    def __init__(self, db, config, clock, every=15.0):
        super().__init__(clock)
        self.db, self.config, self.every = db, config, every
        self.first_delay = every

    @defer.inlineCallbacks
    def step(self):
        try:
            filed = yield self.db.inbox.finish_expired(self.config, utcnow(self.clock))
            if filed:
                log.info("filed %d incomplete multipart texts after their timeout", len(filed))
        except Exception:
            log.exception("multipart sweep failed; will try again")
        return self.every
