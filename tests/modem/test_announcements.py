"""Texts read the moment the modem announces them (+CMTI, +CDS), the fallback poll, and
the SIM credit by USSD: libGammu's AT driver against the simulator, time on a Clock."""
from __future__ import annotations

import datetime as dt
import threading
import time
from types import SimpleNamespace

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from gateway.config import Config, ModemConfig
from gateway.daemon.health import HealthMonitor
from gateway.daemon.inbound import InboundPoller
from gateway.desk.inbox import StoreResult
from gateway.modem.worker import ModemWorker, NoUssdAnswer
from tests.modem_sim import ModemSimulator

SENDER = "+6281234567890"


def result(d):
    outcome = []
    d.addBoth(outcome.append)
    assert outcome, "the modem call did not finish"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


class Inbox:
    """db.inbox as the poller sees it: what was stored, every part deletable."""

    def __init__(self):
        self.parts = []

    def store(self, modem, parts, config, now):
        self.parts.extend(parts)
        return defer.succeed(StoreResult(deletable=[p.location for p in parts],
                                         messages=list(range(len(parts)))))


def make_worker(sim, clock, **config):
    return ModemWorker(ModemConfig("sim", sim.gammu_config("proxyat"), **config), clock,
                       threaded=False, reconnect_delay=(0, 0), call_timeout=10.0)


@pytest.fixture
def setup(request, tmp_path):
    options = getattr(request, "param", {})
    clock = Clock()
    with ModemSimulator(link=str(tmp_path / "modem"), **options) as sim:
        worker = make_worker(sim, clock)
        inbox = Inbox()
        config = Config(poll_interval=0.5, poll_interval_notified=5.0)
        poller = InboundPoller(worker, SimpleNamespace(inbox=inbox), config, clock)
        poller.startService()
        clock.advance(0)  # the first poll: connects, asks for announcements, reads nothing
        try:
            yield SimpleNamespace(sim=sim, worker=worker, poller=poller, inbox=inbox,
                                  clock=clock)
        finally:
            poller.stopService()
            worker._disconnect()


def idle_reads(worker, until, timeout=3.0):
    """What the modem's thread does while idle: ReadDevice, until `until()` or timeout."""
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        worker._read_device()
        time.sleep(0.01)
    return until()


def texts(inbox):
    return [p.text for p in inbox.parts if not p.status_report]


def test_an_announced_text_is_read_without_waiting_for_the_poll(setup):
    assert setup.worker.announcing
    assert any(c.startswith("AT+CNMI=2,1") for c in setup.sim.commands())
    assert setup.poller._next.getTime() == pytest.approx(5.0)  # the fallback poll
    setup.sim.deliver(SENDER, "KOMPLAIN pulsa belum masuk")
    assert idle_reads(setup.worker, lambda: setup.worker.announced == 1)
    setup.clock.advance(0)  # the wake, no poll interval later
    assert texts(setup.inbox) == ["KOMPLAIN pulsa belum masuk"]
    assert setup.sim.sim == {}  # stored, then deleted


@pytest.mark.parametrize("setup", [{"announces": False}], indirect=True)
def test_a_modem_that_announces_nothing_is_polled_at_poll_interval(setup):
    assert not setup.worker.announcing
    assert setup.poller._next.getTime() == pytest.approx(0.5)
    setup.sim.deliver(SENDER, "Halo")
    assert not idle_reads(setup.worker, lambda: setup.worker.announced, timeout=0.3)
    setup.clock.advance(0.4)
    assert texts(setup.inbox) == []
    setup.clock.advance(0.1)
    assert texts(setup.inbox) == ["Halo"]


def test_a_dropped_announcement_is_picked_up_by_the_fallback_poll(setup):
    setup.sim.drop_announcements = 1
    setup.sim.deliver(SENDER, "lost on the line")
    assert not idle_reads(setup.worker, lambda: setup.worker.announced, timeout=0.3)
    assert any("dropped +CMTI" in line for who, line in setup.sim.log if who == "!")
    setup.clock.advance(4.9)
    assert texts(setup.inbox) == []
    setup.clock.advance(0.1)
    assert texts(setup.inbox) == ["lost on the line"]
    # The next one is announced again, and read at once.
    setup.sim.deliver(SENDER, "announced")
    assert idle_reads(setup.worker, lambda: setup.worker.announced == 1)
    setup.clock.advance(0)
    assert texts(setup.inbox) == ["lost on the line", "announced"]


def test_a_delivery_report_announced_by_cds_is_read_at_once_and_kept_until_stored(setup):
    references = result(setup.worker.send("+6285712345678", "Pesanan dikirim",
                                          status_report=True))
    setup.sim.deliver_status_report(references[0], "+6285712345678", delivered=True)
    assert idle_reads(setup.worker, lambda: setup.worker.announced == 1)
    assert len(setup.worker._reports) == 1  # not on the SIM: held by the worker
    setup.clock.advance(0)
    [report] = [p for p in setup.inbox.parts if p.status_report]
    assert report.report_reference == references[0] and report.report_status == "delivered"
    assert report.location < 0
    assert setup.worker._reports == {}  # deleted once its row was committed


def test_a_report_is_read_again_when_its_store_failed(setup):
    setup.sim.deliver_status_report(9, "+6285712345678", delivered=False)
    assert idle_reads(setup.worker, lambda: setup.worker.announced == 1)
    parts, _more = result(setup.worker.read_inbox())
    assert [p.report_reference for p in parts] == [9]
    parts_again, _more = result(setup.worker.read_inbox())  # no delete: still there
    assert [p.report_reference for p in parts_again] == [9]


def test_the_dummy_driver_is_polled_as_before(tmp_path):
    worker = ModemWorker(ModemConfig("dummy", {"Device": str(tmp_path), "Connection": "none",
                                               "Model": "dummy"}), Clock(), threaded=False)
    try:
        result(worker.read_inbox())
        assert not worker.announcing
    finally:
        worker._disconnect()


# -- SIM credit -----------------------------------------------------------------------------

def test_balance_dials_the_code_and_returns_the_operator_answer(setup):
    assert result(setup.worker.balance("*888#")) == ("Sisa Pulsa Anda Rp 12.500. "
                                                     "Aktif s.d 28-02-2027")
    assert setup.sim.ussd_dialled == ["*888#"]


@pytest.mark.parametrize("setup", [{"ussd_answer": None}], indirect=True)
def test_balance_without_an_answer_times_out(setup):
    with pytest.raises(NoUssdAnswer):
        result(setup.worker.balance("*888#", timeout=0.3))
    assert setup.worker.connected  # no answer is not a lost modem


class Modems:
    def __init__(self):
        self.recorded = []

    def record(self, name, readings, error, now, counts, host=None):
        self.recorded.append((name, readings, error))
        return defer.succeed(None)

    def send_alerts(self, config, now, alerted):
        return defer.succeed((0, alerted))


def test_the_health_round_records_credit_on_schedule_and_sim_storage(tmp_path):
    clock = Clock()
    with ModemSimulator(link=str(tmp_path / "modem"), capacity=30) as sim:
        sim.deliver(SENDER, "waiting on the SIM")
        worker = make_worker(sim, clock, ussd_balance="*888#", ussd_every=3600.0)
        modems = Modems()
        monitor = HealthMonitor([worker], SimpleNamespace(modems=modems), Config(), clock)
        try:
            result(monitor.step())
            clock.advance(30)
            result(monitor.step())
            sim.ussd_answer = "Maaf, layanan sedang sibuk"
            clock.advance(3600)
            result(monitor.step())
        finally:
            worker._disconnect()
    first, second, third = (readings for _name, readings, _error in modems.recorded)
    assert first["balance"] == 12500 and first["balance_expiry"] == dt.date(2027, 2, 28)
    assert first["balance_text"].startswith("Sisa Pulsa Anda Rp 12.500")
    assert first["balance_at"] is not None
    assert first["sim_used"] == 1 and first["sim_size"] == 30
    assert "balance" not in second  # not due yet: the last reading stands
    assert second["sim_used"] == 1
    assert third["balance"] is None and third["balance_text"] == "Maaf, layanan sedang sibuk"
    assert sim.ussd_dialled == ["*888#", "*888#"]


class ThreadReactor(Clock):
    """A Clock that also takes calls from other threads, run when the test pumps them."""

    def __init__(self):
        super().__init__()
        self.from_threads = []
        self.lock = threading.Lock()

    def callFromThread(self, fn, *args):
        with self.lock:
            self.from_threads.append((fn, args, threading.current_thread().name))

    def pump(self, until, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                calls, self.from_threads = self.from_threads, []
            for fn, args, _thread in calls:
                fn(*args)
            if until():
                return True
            time.sleep(0.005)
        return until()


def test_the_modem_thread_reads_an_announcement_while_idle_and_wakes_the_reactor(tmp_path):
    reactor = ThreadReactor()
    woken = []
    with ModemSimulator(link=str(tmp_path / "modem")) as sim:
        worker = ModemWorker(ModemConfig("sim", sim.gammu_config("proxyat")), reactor)
        worker.on_announce.append(lambda: woken.append(threading.current_thread().name))
        worker.startService()
        try:
            readings = []
            worker.status().addCallback(readings.append)
            assert reactor.pump(lambda: readings)
            assert worker.announcing
            sim.deliver(SENDER, "Halo")  # nothing is asked of the modem meanwhile
            assert reactor.pump(lambda: woken)
            assert woken == [threading.current_thread().name]  # the wake runs on the reactor
        finally:
            stopped = []
            worker.stopService().addBoth(stopped.append)
            reactor.pump(lambda: stopped)


def test_a_bad_poll_interval_notified_is_one_line():
    from gateway.config import ConfigError, parse
    with pytest.raises(ConfigError, match="sms.poll_interval_notified: must be greater"):
        parse({"database": {"url": "sqlite://"}, "sms": {"poll_interval_notified": 0}}, "x.toml")
    config = parse({"database": {"url": "sqlite://"}}, "x.toml")
    assert config.poll_interval_notified == 5.0
