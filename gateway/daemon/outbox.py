"""The outbox dispatcher: claims queued texts and hands each to a modem.

A modem is given one text at a time, claimed when it is free to send it: a SIM read
queued on the modem's thread waits behind at most one send, and a crash leaves at most
one text per modem `sending` (then `unknown`). A claimed row is `sending` until the
modem answers: `sent`, retried with backoff for an error that may pass, `failed` for one
that will not, `unknown` when part of a long text already left. Each text is sent on
its own, so one bad text never holds up the rest.
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
from gateway.desk.outbox import Outcome
from gateway.modem.translate import (
    MAYBE_SENT_ERRORS,
    PERMANENT_SEND_ERRORS,
    ModemHung,
    ModemUnavailable,
    PartialSend,
    Unencodable,
    error_text,
)

log = logging.getLogger(__name__)


def node_name(config=None) -> str:
    """Who claimed a row: this host ([sms] node, else the hostname; several gateway
    hosts may share one database)."""
    return getattr(config, "node", None) or socket.gethostname()


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
        self._sending: dict[str, defer.Deferred] = {}  # modem name -> its send in flight
        self.country_code = str(phonenumbers.country_code_for_region(config.country))
        # The live hosts sharing the database, as of the last beat: this one is number
        # `slot` of `peers` (gateway.desk.outbox.spread).
        self.slot, self.peers = 0, 1
        self.lease = getattr(config, "claim_lease", 60.0)
        self._beat_due = 0.0  # clock time of the next beat
        # Outcomes the modem gave whose write failed (a database outage, a Galera
        # conflict past its retries): written again every round, so a text this host
        # sent never stays `sending` while the host lives (README rule 4).
        self.unrecorded: dict[int, tuple[object, Outcome]] = {}
        # Texts claimed and in hand (being sent, or sent and not yet recorded): what the
        # beat must not take for a lost claim.
        self.in_hand: set[int] = set()

    @defer.inlineCallbacks
    def step(self):
        """A beat when due, and a dispatch; a send that ends wakes the next one, so the
        tick is a fallback."""
        if self.clock.seconds() >= self._beat_due:
            yield self.beat()
        yield self.record_again()
        yield self.dispatch()
        return min(self.interval, max(0.0, self._beat_due - self.clock.seconds()))

    @defer.inlineCallbacks
    def beat(self):
        """Tell the other hosts this one is alive, four times a lease, and take over
        from those whose lease ran out."""
        self._beat_due = self.clock.seconds() + self.lease / 4
        try:
            result = yield self.db.outbox.beat(self.node, utcnow(self.clock), self.lease,
                                               self.in_hand)
        except Exception:
            log.exception("outbox: could not tell the other gateway hosts this one is alive")
            return
        if (result.slot, result.peers) != (self.slot, self.peers):
            log.info("outbox: %d gateway host(s) share the outbox; this one (%s) is number %d",
                     result.peers, self.node, result.slot + 1)
        self.slot, self.peers = result.slot, result.peers
        for host, count in sorted(result.taken_over.items()):
            log.warning("gateway host %s stopped beating over %g s ago; the %d text(s) it "
                        "was sending are now unknown (it may have sent them)", host,
                        self.lease, count)
        if result.released:
            log.warning("outbox: %d text(s) claimed by this host whose claim's answer was "
                        "lost (a broken database connection) are queued again; no modem "
                        "had them", result.released)

    @defer.inlineCallbacks
    def record_again(self):
        """Write the outcomes whose first write failed; those that fail stay for the
        next round."""
        for message_id, (item, outcome) in list(self.unrecorded.items()):
            try:
                status, _claimed = yield self.db.outbox.finish(
                    outcome, utcnow(self.clock), self.config.send_attempts, self.node, 0)
            except Exception as e:
                log.debug("text %d: recording %s failed again: %s", message_id, outcome.kind, e)
                continue
            del self.unrecorded[message_id]
            self.in_hand.discard(message_id)
            log.warning("text %d to %s: %s recorded at last; it is %s", message_id,
                        item.number, outcome.kind, status)

    def stopService(self):
        """Waits for the run in progress and the sends in flight (at most `stop_wait`)."""
        in_progress = super().stopService()
        return self.at_most(self.stop_wait, [in_progress, *self._sending.values()])

    @defer.inlineCallbacks
    def dispatch(self):
        """Claim for each free modem the one text it sends next and start it; again while
        modems are free and texts were there. Returns how many were claimed."""
        total = 0
        while True:
            free = self._free()
            if not free:
                break
            try:
                claimed = yield self.db.outbox.claim(self.node, utcnow(self.clock), len(free),
                                                     self.slot, self.peers)
            except Exception:
                log.exception("outbox: claiming texts failed; will try again")
                break
            total += len(claimed)
            self.in_hand.update(item.id for item in claimed)
            for item in claimed:
                self._start(item)
            if len(claimed) < len(free):
                break
        return total

    def _available(self) -> list:
        """Modems to send through: connected ones, or any not known to be down."""
        return [w for w in self.workers.values() if w.connected or w.last_error is None]

    def _free(self, also=None) -> list:
        """Modems that may take a text now: up, not sending (or `also`, the one asking),
        within their send_rate."""
        return [w for w in self._available()
                if (w is also or w.name not in self._sending) and self._tokens(w) >= 1]

    def _tokens(self, worker) -> float:
        """How many texts a modem may send now under its send_rate (a token bucket that
        holds at most one text, so sends are spaced, never bunched)."""
        rate = worker.config.send_rate
        if rate is None:
            return 1.0
        now = self.clock.seconds()
        tokens, since = self._buckets.get(worker.name, (1.0, now))
        return min(1.0, tokens + (now - since) * rate / 60 + 1e-9)  # 1e-9: float dust

    def _choose(self, item, also=None):
        """A free modem for this text: one whose prefixes route the number, else the one
        the customer wrote to, else the next in turn."""
        ready = {w.name: w for w in self._free(also)}
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

    def _start(self, item):
        try:
            worker = self._choose(item)
        except ModemUnavailable as e:
            # Nothing was tried: the text goes back, no attempt spent.
            self._finish(item, Outcome(item.id, "release", error=str(e)))
            return
        self._begin(worker, item)

    def _begin(self, worker, item):
        self._sending[worker.name] = d = defer.Deferred()

        def done(_):
            self._sending.pop(worker.name, None)
            d.callback(None)
            self.wake()  # the modem is free: whatever else waits, now
        self._serve(worker, item).addBoth(done)

    @defer.inlineCallbacks
    def _serve(self, worker, item):
        """Send `item`, then record it and claim this modem's next text in one
        transaction; on while there is one for it (a text another free modem should
        take is handed to that one)."""
        while item is not None:
            outcome = yield self._send(item, worker)
            item = yield self._finish(item, outcome, self._claim_next(worker, outcome))
            if item is None:
                return
            try:
                target = self._choose(item, also=worker)
            except ModemUnavailable as e:
                yield self._finish(item, Outcome(item.id, "release", error=str(e)))
                return
            if target is not worker:
                self._begin(target, item)
                return

    def _claim_next(self, worker, outcome) -> int:
        """1 when this modem should take the next text at once: it is still up, within
        its rate, and no other modem is free to share the queue (then the dispatcher
        deals the texts out in turn)."""
        if not self.running or outcome.kind == "release" or self._tokens(worker) < 1:
            return 0
        return 0 if any(w is not worker for w in self._free()) else 1

    @defer.inlineCallbacks
    def _send(self, item, worker):
        """Send one text; fires with its Outcome (never fails)."""
        try:
            references = yield worker.send(item.number, item.text,
                                           self.config.delivery_reports)
        except ModemUnavailable as e:
            return Outcome(item.id, "release", error=str(e))
        except (PartialSend, ModemHung, *MAYBE_SENT_ERRORS) as e:
            # The modem stopped answering mid-send: the text may have left. Sending it
            # again could double it, so a person decides (README rule 4).
            log.warning("text %d to %s: %s; marked unknown", item.id, item.number, error_text(e))
            worker.counts["failed"] += 1
            return Outcome(item.id, "unknown", worker.name, error_text(e))
        except (Unencodable, *PERMANENT_SEND_ERRORS) as e:
            log.warning("text %d to %s failed for good: %s", item.id, item.number, error_text(e))
            worker.counts["failed"] += 1
            return Outcome(item.id, "failed", worker.name, error_text(e))
        except gammu.GSMError as e:
            return Outcome(item.id, "retry", worker.name, error_text(e))
        except Exception as e:
            # Not a modem answer: a bug or a crash in the binding. Whether the text left is
            # unknown, and sending it again could double it.
            log.exception("text %d: unexpected error while sending", item.id)
            return Outcome(item.id, "unknown", worker.name, error_text(e))
        worker.counts["sent"] += 1
        return Outcome(item.id, "sent", worker.name, references=tuple(references))

    @defer.inlineCallbacks
    def _finish(self, item, outcome, claim_next=0):
        """Write an outcome (and claim the next text); fires with that text or None. A
        failure is logged with the text it concerns and the outcome is written again
        each round (`unrecorded`); the row stays `sending` until then, and becomes
        `unknown` if this host stops first."""
        try:
            status, claimed = yield self.db.outbox.finish(
                outcome, utcnow(self.clock), self.config.send_attempts, self.node, claim_next,
                self.slot, self.peers)
        except Exception:
            self.unrecorded[item.id] = (item, outcome)
            log.exception("text %d to %s: %s, but recording that failed; it stays 'sending' "
                          "and is written again each round", item.id, item.number,
                          outcome.kind)
            return None
        self.in_hand.discard(item.id)
        self.in_hand.update(c.id for c in claimed)
        if outcome.kind == "retry":
            log.info("text %d to %s: %s; now %s", item.id, item.number, outcome.error, status)
        return claimed[0] if claimed else None
