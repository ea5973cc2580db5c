"""The outbox dispatcher: claims queued texts and hands each to a modem.

A claimed row is `sending` until the modem answers: `sent`, retried with backoff for an
error that may pass, `failed` for one that will not, `unknown` when part of a long text
already left. Each text is sent on its own, so one bad text never holds up the rest.
"""
from __future__ import annotations

import itertools
import logging
import socket

import gammu
import phonenumbers
from twisted.internet import defer

from gateway.daemon.periodic import Periodic
from gateway.db.models import utcnow
from gateway.modem.translate import (
    MAYBE_SENT_ERRORS,
    PERMANENT_SEND_ERRORS,
    ModemHung,
    ModemUnavailable,
    PartialSend,
    error_text,
)

log = logging.getLogger(__name__)

CLAIM_BATCH = 50


def node_name() -> str:
    """Who claimed a row: this host (several gateway hosts may share one MariaDB)."""
    return socket.gethostname()


class OutboxDispatcher(Periodic):
    name = "outbox"

    def __init__(self, workers, db, config, clock, node=None, interval=0.5):
        super().__init__(clock)
        self.workers = {w.name: w for w in workers}
        self.db = db
        self.config = config
        self.node = node or node_name()
        self.interval = interval
        self._turn = itertools.count()
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, since when)
        self.country_code = str(phonenumbers.country_code_for_region(config.country))

    @defer.inlineCallbacks
    def step(self):
        """A dispatch; at once again while the modems took all they had room for."""
        room = self._room()
        claimed = yield self.dispatch(room)
        return 0 if room and claimed == room else self.interval

    @defer.inlineCallbacks
    def dispatch(self, room=None):
        """Claim what the modems can send now (at most `room`), and send it; returns how
        many were claimed."""
        claimed = []
        try:
            room = self._room() if room is None else room
            if room:
                claimed = yield self.db.outbox.claim(self.node, utcnow(self.clock),
                                            room)
                sends = [self._send(item) for item in claimed]
                yield defer.DeferredList(sends, consumeErrors=True)
        except Exception:
            log.exception("outbox dispatch failed; will try again")
        return len(claimed)

    def _available(self) -> list:
        """Modems to send through: connected ones, or any not known to be down."""
        return [w for w in self.workers.values() if w.connected or w.last_error is None]

    def _tokens(self, worker) -> float:
        """How many texts a modem may send now under its send_rate (a token bucket that
        holds at most one text, so sends are spaced, never bunched)."""
        rate = worker.config.send_rate
        if rate is None:
            return float(CLAIM_BATCH)
        now = self.clock.seconds()
        tokens, since = self._buckets.get(worker.name, (1.0, now))
        return min(1.0, tokens + (now - since) * rate / 60 + 1e-9)  # 1e-9: float dust

    def _room(self) -> int:
        """How many texts to claim: what the healthy modems may send now."""
        return min(CLAIM_BATCH, sum(int(self._tokens(w)) for w in self._available()))

    def _choose(self, item):
        """A modem with room for this text: one whose prefixes route the number, else the
        one the customer wrote to, else the next in turn."""
        ready = {w.name: w for w in self._available() if self._tokens(w) >= 1}
        routed = [w for w in ready.values() if w.config.routes(item.number, self.country_code)]
        if routed:
            worker = routed[next(self._turn) % len(routed)]
        elif item.modem in ready:
            worker = ready[item.modem]
        elif ready:
            worker = list(ready.values())[next(self._turn) % len(ready)]
        else:
            raise ModemUnavailable("no modem is connected and free to send")
        if worker.config.send_rate is not None:  # spend a token, counted from now
            self._buckets[worker.name] = (self._tokens(worker) - 1, self.clock.seconds())
        return worker

    @defer.inlineCallbacks
    def _send(self, item):
        now = lambda: utcnow(self.clock)  # noqa: E731 - read after the send, not before
        worker = None
        try:
            worker = self._choose(item)
            references = yield worker.send(item.number, item.text,
                                           self.config.delivery_reports)
        except ModemUnavailable as e:
            # Nothing was tried: the text goes back for another modem, no attempt spent.
            yield self.db.outbox.release(item.id, str(e))
        except (PartialSend, ModemHung, *MAYBE_SENT_ERRORS) as e:
            # The modem stopped answering mid-send: the text may have left. Sending it
            # again could double it, so a person decides (rule 4).
            log.warning("text %d to %s: %s; marked unknown", item.id, item.number, error_text(e))
            worker.counts["failed"] += 1
            yield self.db.outbox.mark_failed(item.id, error_text(e), "unknown",
                              worker.name)
        except PERMANENT_SEND_ERRORS as e:
            log.warning("text %d to %s failed for good: %s", item.id, item.number, error_text(e))
            worker.counts["failed"] += 1
            yield self.db.outbox.mark_failed(item.id, error_text(e), "failed",
                              worker.name)
        except gammu.GSMError as e:
            status = yield self.db.outbox.mark_retry(item.id, error_text(e), now(),
                                       self.config.send_attempts)
            log.info("text %d to %s: %s; now %s", item.id, item.number, error_text(e), status)
        except Exception as e:
            # Not a modem answer: a bug or a crash in the binding. Whether the text left is
            # unknown, and sending it again could double it.
            log.exception("text %d: unexpected error while sending", item.id)
            yield self.db.outbox.mark_failed(item.id, error_text(e), "unknown",
                              worker.name if worker else None)
        else:
            worker.counts["sent"] += 1
            yield self.db.outbox.mark_sent(item.id, worker.name, references, now())
