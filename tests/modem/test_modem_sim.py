"""The real libGammu AT driver against our simulated GSM modem (tests/modem_sim.py).

Most tests reach the modem through connection = "proxyat" (Init about 0.4 s); the
unplug test uses connection = "at", Gammu opening the pty as it opens a real modem
(Init about 4 s), because only there does a pulled modem fail at once. Every wait is
bounded: Gammu's own timeouts, Abort() for a hung modem, deadlines on events.
"""
from __future__ import annotations

import threading
import time

import gammu
import pytest
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from gateway.config import ModemConfig
from gateway.modem.translate import ModemHung
from gateway.modem.worker import ModemWorker
from gateway.sms.encoding import encode
from tests.modem_sim import STO_SENT, ModemSimulator, status_report_requested

SENDER = "+6281234500001"


def result(d):
    """The outcome of a Deferred that has already fired (ModemWorker with threaded=False)."""
    outcome = []
    d.addBoth(outcome.append)
    assert outcome, "the modem call did not finish"
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


@pytest.fixture
def sim(tmp_path):
    with ModemSimulator(link=str(tmp_path / "modem")) as simulator:
        yield simulator


def make_worker(sim, connection="proxyat"):
    return ModemWorker(ModemConfig("sim", sim.gammu_config(connection)), Clock(),
                       threaded=False, reconnect_delay=(0, 0))


@pytest.fixture
def worker(sim):
    worker = make_worker(sim)
    yield worker
    worker._disconnect()  # Terminate the StateMachine; stopService only does so when threaded


@pytest.fixture
def machine(sim):
    machine = gammu.StateMachine()
    machine.SetConfig(0, sim.gammu_config("proxyat"))
    machine.Init()
    yield machine
    machine.Terminate()


def whole_texts(parts):
    """RawParts -> {sender: text}, multipart parts joined in order of their part number."""
    groups: dict = {}
    for part in parts:
        groups.setdefault((part.sender, part.reference), []).append(part)
    texts = {}
    for (sender, _), group in groups.items():
        group.sort(key=lambda p: p.part_number)
        assert [p.part_number for p in group] == list(range(1, group[0].part_count + 1))
        texts[sender] = "".join(p.text for p in group)
    return texts


def test_init_identifies_the_simulated_modem(machine, sim):
    assert machine.GetManufacturer() == sim.manufacturer
    assert machine.GetIMEI() == sim.imei
    assert machine.GetSignalQuality()["SignalPercent"] > 0
    commands = sim.commands()
    assert commands[:2] == ["AT", "ATE1"]
    assert "AT+CMEE=1" in commands and "AT+CGMM" in commands


def test_texts_are_read_as_raw_parts_and_deleted(worker, sim):
    texts = {
        "+6281234500001": "Halo, saya mau pesan beras 5 kg untuk besok pagi.",
        "+6281234500002": "Tolong kirim nota ke alamat saya.",
        "+6281234500003": "Pesanan saya nomor 4471 belum datang sejak kemarin. " * 4,  # 2 parts
        # The dash is not in GSM-7: UCS-2, 3 parts.
        "+6281234500004": "Terima kasih — barang sudah sampai dengan selamat! " * 3,
        "+6281234500005": "Status pesanan 123?",
    }
    for sender, text in texts.items():
        sim.deliver(sender, text)

    parts, more = result(worker.read_inbox())

    assert more is False
    assert len(parts) == 1 + 1 + 2 + 3 + 1 == len(sim.sim)
    assert whole_texts(parts) == texts
    multipart = [p for p in parts if p.sender == "+6281234500004"]
    assert {p.part_count for p in multipart} == {3}
    assert len({p.reference for p in multipart}) == 1 and multipart[0].reference is not None
    assert {p.coding for p in multipart} == {"Unicode_No_Compression"}
    assert all(p.smsc_time is not None and not p.status_report for p in parts)

    locations = [p.location for p in parts]
    assert result(worker.delete(locations)) == len(locations)
    assert sim.sim == {}
    assert {f"AT+CMGD={n}" for n in locations} <= set(sim.commands())
    assert result(worker.read_inbox()) == ([], False)


def test_long_ucs2_text_leaves_as_five_linked_parts(worker, sim):
    text = ("Pesanan Anda sudah kami terima — kurir datang besok pagi. " * 6)[:320]

    references = result(worker.send("+6285712345678", text))

    assert len(references) == 5 == len(sim.sent)
    assert references == sim.sent_references
    sent = sim.sent_messages()
    assert [m["Number"] for m in sent] == ["+6285712345678"] * 5
    assert {m["Coding"] for m in sent} == {"Unicode_No_Compression"}
    udhs = [m["UDH"] for m in sent]
    assert {u["Type"] for u in udhs} == {"ConcatenatedMessages"}
    assert len({(u["ID8bit"], u["ID16bit"]) for u in udhs}) == 1  # one reference for all
    assert [(u["PartNumber"], u["AllParts"]) for u in udhs] == [(i, 5) for i in range(1, 6)]
    assert sim.sent_texts() == [text]
    assert not any(status_report_requested(pdu) for pdu in sim.sent)


def test_cms_error_fails_only_the_send_to_that_number(worker, sim):
    sim.fail_numbers = {"+6281111111111": 21}  # short message transfer rejected

    with pytest.raises(gammu.ERR_UNKNOWN):
        result(worker.send("+6281111111111", "Halo"))
    assert result(worker.send("+6282222222222", "Halo juga")) == sim.sent_references

    assert [m["Number"] for m in sim.sent_messages()] == ["+6281111111111", "+6282222222222"]
    assert len(sim.sent_references) == 1
    assert worker.connected  # an error from the network is not a lost modem


def test_cms_322_means_the_memory_is_full(worker, sim):
    sim.fail_next_send(cms=322)
    with pytest.raises(gammu.ERR_FULL):
        result(worker.send("+6281111111111", "Halo"))


def test_error_answer_leaves_that_reading_empty(worker, sim):
    sim.fail_next("AT+CSQ")  # plain ERROR
    readings = result(worker.status())
    assert readings["signal_percent"] is None
    assert readings["battery_percent"] == sim.battery
    assert readings["network"] == "HomeNetwork" and readings["imei"] == sim.imei


def test_full_sim_is_drained_without_loss(tmp_path):
    with ModemSimulator(capacity=10, sim_full=True, link=str(tmp_path / "modem")) as sim:
        worker = make_worker(sim)
        try:
            expected = [stored.text for stored in sim.sim.values()]
            for n in range(3):  # the network holds these until the SIM has room
                sim.deliver(f"+62813000000{n}", f"late {n}")
                expected.append(f"late {n}")
            assert len(sim.sim) == 10 and len(sim.network_queue) == 3

            got = []
            for _ in range(5):
                parts, _more = result(worker.read_inbox())
                if not parts:
                    break
                got.extend(p.text for p in parts)
                assert result(worker.delete([p.location for p in parts])) == len(parts)
            assert sorted(got) == sorted(expected)
            assert sim.sim == {} and sim.network_queue == []
        finally:
            worker._disconnect()


def test_status_report_stored_on_the_sim_is_read_as_a_report(worker, sim):
    references = result(worker.send("+6285712345678", "Pesanan dikirim"))
    sim.deliver_status_report(references[0], "+6285712345678", delivered=True, store=True)

    parts, _ = result(worker.read_inbox())

    assert len(parts) == 1
    assert parts[0].status_report and parts[0].report_reference == references[0]
    assert parts[0].sender == "+6285712345678"


def test_notifications_reach_the_incoming_callback(machine, sim):
    events = []
    arrived = threading.Event()

    def incoming(_machine, kind, data):
        events.append((kind, data))
        arrived.set()

    machine.SetIncomingCallback(incoming)
    with pytest.raises(gammu.ERR_NOTSUPPORTED):
        machine.SetIncomingSMS(True)  # Gammu 1.45 refuses AT+CNMI here, yet reports +CMTI

    def read_until(count, timeout=3.0):
        deadline = time.monotonic() + timeout
        while len(events) < count and time.monotonic() < deadline:
            machine.ReadDevice(True)
        return len(events) >= count

    location = sim.deliver(SENDER, "Halo", notify=True)[0]
    assert read_until(1)
    assert events[0] == ("SMS", {"Location": location, "Folder": 0, "InboxFolder": 1})

    message = encode("Pesanan dikirim")[0]
    message.update(Number="+6285712345678", SMSC={"Location": 1}, Type="Status_Report")
    reference = machine.SendSMS(message)
    assert status_report_requested(sim.sent[-1])  # Type "Status_Report" sets TP-SRR
    sim.deliver_status_report(reference, "+6285712345678", delivered=False)
    assert read_until(2)
    kind, report = events[1]
    assert kind == "SMS" and report["Type"] == "Status_Report"
    assert report["MessageReference"] == reference and report["Number"] == "+6285712345678"
    assert report["Text"] != "Delivered"


def test_hung_modem_is_ended_by_the_watchdog_and_reconnected(worker, sim):
    assert result(worker.status())["signal_percent"] is not None
    machine = worker.machine
    sim.hang()
    # Without the watchdog's Abort() Gammu would wait 20 s for AT+CSQ (minutes for CMGL).
    worker.call_timeout = 1.0
    started = time.monotonic()
    with pytest.raises(ModemHung):
        result(worker.status())
    assert time.monotonic() - started < 4
    assert worker.machine is None and not worker.connected  # an aborted machine is not reused

    sim.resume()
    assert result(worker.status())["signal_percent"] is not None
    assert worker.machine is not machine


def test_unplugged_modem_fails_at_once_and_replug_reconnects(sim):
    worker = make_worker(sim, connection="at")  # Gammu opens the pty like a real modem
    try:
        assert result(worker.status())["imei"] == sim.imei
        sim.unplug()

        started = time.monotonic()
        with pytest.raises(gammu.ERR_DEVICEWRITEERROR):
            result(worker.status())
        assert time.monotonic() - started < 1
        assert not worker.connected

        sim.replug()  # a new /dev/pts/N behind the same symlink
        assert result(worker.status())["imei"] == sim.imei
        assert worker.connected
    finally:
        worker._disconnect()


def test_delete_of_an_empty_location_depends_on_the_modem(machine, sim):
    # What gateway.modem.worker._delete meets after a crash between delete and commit.
    with pytest.raises(gammu.ERR_INVALIDLOCATION):  # "+CMS ERROR: 321", most modems
        machine.DeleteSMS(Folder=0, Location=3)
    sim.empty_location_reply = "OK"
    with pytest.raises(gammu.ERR_EMPTY):
        machine.DeleteSMS(Folder=0, Location=3)
    assert "AT+CMGD=3" not in sim.commands()  # Gammu reads first and never deletes


def test_sent_item_on_the_sim_is_in_the_outbox_folder(machine, sim):
    draft = encode("Balasan tersimpan")[0]
    draft.update(Number="+6285712345678",
                 SMSC={"Number": sim.smsc, "Location": 0, "Validity": "NA", "Format": "Text"})
    sim.store_pdu(gammu.EncodePDU(draft).hex(), STO_SENT)
    sim.deliver(SENDER, "Halo")

    first = machine.GetNextSMS(Start=True, Folder=0)[0]
    second = machine.GetNextSMS(Location=first["Location"], Folder=0)[0]

    assert (first["Type"], first["Folder"], first["InboxFolder"]) == ("Submit", 2, 0)
    assert first["InboxFolder"] is not False  # an int: `is False` does not catch it
    assert (second["Type"], second["Folder"], second["InboxFolder"]) == ("Deliver", 1, 1)
