"""FastAGI server, driven byte for byte by a test peer that speaks as Asterisk's res_agi.

No sockets, no sleeps: StringTransport carries the bytes, task.Clock the time, and
Database with no reactor runs each transaction at once on the test's real database.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import re
import stat

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from twisted.internet import defer, error
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from gateway import secret
from gateway.daemon.database import Database
from gateway.db.models import Call, Contact, Message, Ticket, TicketEvent, User
from gateway.desk import calls
from gateway.voice import fastagi as agi

NUMBER = "+6281234567890"
SECRET = "5e" * 32  # what `helpdesk init` writes: 64 hex digits
PEER = IPv4Address("TCP", "127.0.0.1", 40000)
_SET = re.compile(r'^SET VARIABLE (\S+) "((?:[^"\\]|\\.)*)"$')
_GET = re.compile(r"^GET VARIABLE (\S+)$")


class AsteriskPeer:
    """Asterisk's side of one FastAGI connection: the agi_* header, then one reply per
    command, as res_agi writes them; keeps the channel's variables like a channel does.
    The URL carries `?secret=` as the dialplan writes it (secret=None: no query)."""

    def __init__(self, factory, script="incoming", callerid=NUMBER, uniqueid="1700000000.1",
                 channel="PJSIP/trunk-00000001", args=(), variables=None, secret=SECRET):
        self.factory = factory
        self.proto = factory.buildProtocol(PEER)
        self.transport = StringTransport(peerAddress=PEER)
        self.proto.makeConnection(self.transport)
        self.script, self.callerid, self.uniqueid = script, callerid, uniqueid
        self.secret = secret
        self.channel, self.args = channel, list(args)
        self.variables = dict(variables or {})
        self.commands: list[str] = []
        self.refuse: dict[str, str] = {}  # command word or variable -> reply line(s)

    def header(self) -> bytes:
        target = self.script if self.secret is None else f"{self.script}?secret={self.secret}"
        lines = [
            "agi_network: yes",  # then the URL's path and query, as res_agi sends them
            f"agi_network_script: {target}",
            f"agi_request: agi://127.0.0.1:4573/{target}",
            f"agi_channel: {self.channel}",
            "agi_language: en",
            "agi_type: PJSIP",
            f"agi_uniqueid: {self.uniqueid}",
            "agi_version: 22.1.1",
            f"agi_callerid: {self.callerid}",
            "agi_calleridname: unknown",
            "agi_callingpres: 0",
            "agi_callingani2: 0",
            "agi_callington: 0",
            "agi_callingtns: 0",
            "agi_dnid: 0215550000",
            "agi_rdnis: unknown",
            "agi_context: helpdesk-incoming",
            "agi_extension: s",
            "agi_priority: 6",
            "agi_enhanced: 0.0",
            "agi_accountcode: ",
            "agi_threadid: 140245566940736",
        ]
        lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(self.args, 1)]
        return ("\n".join(lines) + "\n\n").encode()

    def send(self, data: bytes):
        self.proto.dataReceived(data)

    def start(self):
        self.send(self.header())

    def pending(self) -> list[str]:
        data = self.transport.value().decode()
        self.transport.clear()
        return [line for line in data.split("\n") if line]

    def answer(self, command: str) -> bytes:
        self.commands.append(command)
        m = _SET.match(command)
        key = command.split(" ", 2)[-1] if command.startswith(("SET", "GET")) else command
        name = (m.group(1) if m else (_GET.match(command).group(1) if _GET.match(command)
                                      else key))
        if name in self.refuse:
            return self.refuse[name].encode()
        if m:
            self.variables[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2))
            return b"200 result=1\n"
        g = _GET.match(command)
        if g:
            value = self.variables.get(g.group(1))
            return (b"200 result=0\n" if value is None
                    else f"200 result=1 ({value})\n".encode())
        return b"510 Invalid or unknown command\n"

    def run(self, limit=50):
        """Header, then answer every command until the server closes the connection."""
        self.start()
        for _ in range(limit):
            lines = self.pending()
            if not lines:
                break
            for line in lines:
                self.send(self.answer(line))
        assert self.transport.disconnecting, "the server should close the AGI connection"
        self.proto.connectionLost(Failure(error.ConnectionDone()))
        return self


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def queued():
    return []


@pytest.fixture
def factory(sessionmaker, clock, queued):
    return agi.FastAGIFactory(Database(sessionmaker).calls, "ID", "id", clock, queued.append,
                              secret=SECRET.encode())


@pytest.fixture
def db(sessionmaker):
    with sessionmaker() as session:
        yield session


def add_operator(db, name="siti", extension="101") -> User:
    user = User(name=name, password_hash="x", role="operator", extension=extension)
    db.add(user)
    db.flush()
    return user


def add_contact(db, phone=NUMBER, name=None, owner=None) -> Contact:
    contact = Contact(phone=phone, name=name, owner_id=owner.id if owner else None)
    db.add(contact)
    db.flush()
    return contact


def add_ticket(db, contact, status="open", assignee=None, kind="question") -> Ticket:
    ticket = Ticket(kind=kind, status=status, contact_id=contact.id,
                    assignee_id=assignee.id if assignee else None)
    db.add(ticket)
    db.flush()
    return ticket


def call_row(db, uniqueid="1700000000.1") -> Call:
    db.expire_all()
    return db.scalar(select(Call).where(Call.uniqueid == uniqueid))


# -- the lookup: each kind of caller has a defined answer ---------------------------------
def test_unknown_caller_gets_a_contact_a_call_ticket_and_a_call_row(factory, db):
    peer = AsteriskPeer(factory).run()
    v = peer.variables
    # the answer names what existed when the caller was looked up: nothing yet
    assert v == {"HELPDESK_LOOKUP": "ok", "HELPDESK_CONTACT": "", "HELPDESK_TICKET": "",
                 "HELPDESK_OPERATOR": "", "HELPDESK_OPERATOR_DIAL": "", "HELPDESK_NEW": "1"}
    # ... and right after it the call is filed
    contact = db.scalar(select(Contact).where(Contact.phone == NUMBER))
    ticket = db.scalar(select(Ticket).where(Ticket.contact_id == contact.id))
    assert ticket.kind == "call" and ticket.status == "new"
    call = call_row(db)
    assert (call.number, call.direction, call.contact_id, call.ticket_id) == (
        NUMBER, "in", contact.id, ticket.id)
    assert call.ended_at is None
    kinds = db.scalars(select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket.id)).all()
    assert kinds == ["created", "call_in"]


def test_known_caller_with_open_ticket_rings_its_assignee(factory, db):
    siti = add_operator(db)
    contact = add_contact(db, name='Budi "Toko" Santoso')
    ticket = add_ticket(db, contact, assignee=siti)
    db.commit()
    peer = AsteriskPeer(factory).run()
    v = peer.variables
    assert v["CALLERID(name)"] == 'Budi "Toko" Santoso'
    assert 'SET VARIABLE CALLERID(name) "Budi \\"Toko\\" Santoso"' in peer.commands
    assert v["HELPDESK_TICKET"] == str(ticket.id)
    assert v["HELPDESK_OPERATOR"] == "siti"
    assert v["HELPDESK_OPERATOR_DIAL"] == "PJSIP/101"
    assert v["HELPDESK_NEW"] == "0"
    assert db.scalar(select(func.count()).select_from(Ticket)) == 1  # no new ticket


def test_known_caller_without_open_ticket_gets_a_call_ticket_for_the_owner(factory, db):
    owner = add_operator(db, "andi", "PJSIP/102")
    contact = add_contact(db, name="Budi", owner=owner)
    add_ticket(db, contact, status="closed")
    db.commit()
    v = AsteriskPeer(factory).run().variables
    ticket = db.scalar(select(Ticket).where(Ticket.status == "new"))
    assert ticket.kind == "call" and ticket.assignee_id == owner.id
    assert v["HELPDESK_TICKET"] == ""  # filed after the answer
    assert v["HELPDESK_CONTACT"] == str(contact.id)
    assert v["HELPDESK_OPERATOR"] == "andi" and v["HELPDESK_OPERATOR_DIAL"] == "PJSIP/102"
    assert v["HELPDESK_NEW"] == "0"


def test_a_disabled_assignee_is_passed_over_for_the_owner(factory, db):
    owner = add_operator(db, "andi", "102")
    gone = add_operator(db, "rina", "103")
    gone.active = False
    contact = add_contact(db, name="Budi", owner=owner)
    ticket = add_ticket(db, contact, assignee=gone)
    db.commit()
    v = AsteriskPeer(factory).run().variables
    assert v["HELPDESK_TICKET"] == str(ticket.id)
    assert v["HELPDESK_OPERATOR"] == "andi" and v["HELPDESK_OPERATOR_DIAL"] == "PJSIP/102"


def test_nobody_active_to_ring_sends_the_call_to_the_queue(factory, db):
    owner = add_operator(db, "andi", "102")
    owner.active = False
    add_contact(db, name="Budi", owner=owner)
    db.commit()
    v = AsteriskPeer(factory).run().variables
    assert v["HELPDESK_OPERATOR"] == "" and v["HELPDESK_OPERATOR_DIAL"] == ""
    assert db.scalar(select(Ticket.assignee_id)) == owner.id  # the ticket is still theirs


@pytest.mark.parametrize("callerid", ["unknown", "anonymous", "", "Restricted", "TELKOMSEL"])
def test_withheld_number_gets_a_call_row_but_no_contact_or_ticket(factory, db, callerid):
    v = AsteriskPeer(factory, callerid=callerid).run().variables
    assert v["HELPDESK_CONTACT"] == "" and v["HELPDESK_TICKET"] == ""
    assert v["HELPDESK_NEW"] == "1"
    call = call_row(db)
    assert call.number == calls.WITHHELD and call.contact_id is None
    assert db.scalar(select(func.count()).select_from(Contact)) == 0
    assert db.scalar(select(func.count()).select_from(Ticket)) == 0


@pytest.mark.parametrize("callerid", ["081234567890", "6281234567890", "+6281234567890",
                                      "006281234567890", "81234567890", "0812-3456-7890",
                                      "+62 812 3456 7890"])
def test_every_indonesian_form_finds_the_same_contact(factory, db, callerid):
    contact = add_contact(db, name="Budi")
    ticket = add_ticket(db, contact)
    db.commit()
    v = AsteriskPeer(factory, callerid=callerid).run().variables
    assert v["HELPDESK_CONTACT"] == str(contact.id)
    assert v["HELPDESK_TICKET"] == str(ticket.id)
    assert call_row(db).number == NUMBER


def test_two_contacts_the_one_with_the_newest_open_ticket_wins(factory, db):
    e164 = add_contact(db, NUMBER, "Budi (new)")
    legacy = add_contact(db, "081234567890", "Budi (legacy)")
    add_ticket(db, e164, status="closed")
    open_ticket = add_ticket(db, legacy)
    db.commit()
    v = AsteriskPeer(factory).run().variables
    assert v["HELPDESK_CONTACT"] == str(legacy.id)
    assert v["HELPDESK_TICKET"] == str(open_ticket.id)
    assert v["CALLERID(name)"] == "Budi (legacy)"


def test_two_contacts_without_open_tickets_the_e164_row_wins(factory, db):
    legacy = add_contact(db, "6281234567890", "Legacy")
    e164 = add_contact(db, NUMBER, "Current")
    db.commit()
    v = AsteriskPeer(factory, callerid="081234567890").run().variables
    assert v["HELPDESK_CONTACT"] == str(e164.id)
    assert legacy.id != e164.id
    assert db.scalar(select(Ticket.contact_id)) == e164.id


def test_the_same_channel_asked_twice_is_filed_once(factory, db):
    first = AsteriskPeer(factory).run().variables
    second = AsteriskPeer(factory).run().variables
    assert db.scalar(select(func.count()).select_from(Call)) == 1
    assert db.scalar(select(func.count()).select_from(Ticket)) == 1
    # the second answer names what the first call filed
    call = call_row(db)
    assert second["HELPDESK_TICKET"] == str(call.ticket_id) != first["HELPDESK_TICKET"]
    assert second["HELPDESK_CONTACT"] == str(call.contact_id)


class FailingCalls:
    """A calls store whose database is down for the methods named."""

    def __init__(self, real, down=("lookup", "incoming", "answered", "ended")):
        self.real, self.down = real, down

    def __getattr__(self, name):
        if name in self.down:
            return lambda *args: defer.fail(OperationalError("SELECT", {}, Exception("down")))
        return getattr(self.real, name)


def test_database_trouble_still_lets_the_call_through(sessionmaker, clock):
    calls_store = FailingCalls(Database(sessionmaker).calls)
    factory = agi.FastAGIFactory(calls_store, clock=clock, secret=SECRET.encode())
    peer = AsteriskPeer(factory).run()
    assert peer.variables == {"HELPDESK_LOOKUP": "failed"}


def test_a_failed_lookup_still_files_the_call(sessionmaker, db, clock):
    calls_store = FailingCalls(Database(sessionmaker).calls, down=("lookup",))
    factory = agi.FastAGIFactory(calls_store, clock=clock, secret=SECRET.encode())
    assert AsteriskPeer(factory).run().variables == {"HELPDESK_LOOKUP": "failed"}
    assert call_row(db).number == NUMBER


def test_a_lost_call_row_is_filed_by_the_hangup_handler(sessionmaker, db, clock):
    store = Database(sessionmaker).calls
    factory = agi.FastAGIFactory(FailingCalls(store, down=("incoming",)), clock=clock,
                                 secret=SECRET.encode())
    assert AsteriskPeer(factory).run().variables["HELPDESK_LOOKUP"] == "ok"
    assert call_row(db) is None  # the write after the answer failed
    factory.calls = store  # the database is back
    hangup(factory, {"QUEUESTATUS": "TIMEOUT"})
    call = call_row(db)
    assert call.number == NUMBER and call.disposition == "missed"


class HeldWrites:
    """The daemon's calls store with every write held until release(): the database's
    writer busy with a burst of texts. Lookups go through at once."""

    def __init__(self, real):
        self.real, self.held = real, []

    def lookup(self, *args):
        return self.real.lookup(*args)

    def __getattr__(self, name):
        def held(*args):
            d = defer.Deferred()
            self.held.append((getattr(self.real, name), args, d))
            return d
        return held

    def release(self):
        """The oldest held write runs."""
        method, args, d = self.held.pop(0)
        method(*args).chainDeferred(d)


def test_the_answer_goes_out_before_the_call_row_is_written(sessionmaker, db, clock, queued):
    siti = add_operator(db)
    contact = add_contact(db, name="Budi")
    ticket = add_ticket(db, contact, assignee=siti)
    db.commit()
    store = HeldWrites(Database(sessionmaker).calls)
    factory = agi.FastAGIFactory(store, clock=clock, on_queued=queued.append,
                                 secret=SECRET.encode())
    peer = AsteriskPeer(factory).run()  # closed by the server while the writer is busy
    assert peer.variables["HELPDESK_OPERATOR_DIAL"] == "PJSIP/101"
    assert peer.variables["HELPDESK_TICKET"] == str(ticket.id)
    assert call_row(db) is None and len(store.held) == 1
    # the caller hangs up before the row is written: the hangup waits for that write
    end = AsteriskPeer(factory, script="hangup", variables={"QUEUESTATUS": "TIMEOUT"})
    end.start()
    for _ in agi.HANGUP_READS:
        (line,) = end.pending()
        end.send(end.answer(line))
    assert end.pending() == [] and not end.transport.disconnecting
    assert call_row(db) is None and len(store.held) == 1  # still only the first write
    store.release()  # the filing; then the hangup's own transaction is asked for
    assert call_row(db) is not None and len(store.held) == 1
    store.release()
    assert end.transport.disconnecting
    call = call_row(db)
    assert call.ticket_id == ticket.id and call.disposition == "missed"
    assert db.scalar(select(func.count()).select_from(Call)) == 1
    assert len(queued) == 1  # one missed-call text


def test_lookup_is_one_statement_on_a_connection_of_its_own(engine, sessionmaker, db, clock):
    from sqlalchemy import event

    from gateway.daemon.database import ReadPool
    from gateway.db.engine import make_read_engine

    siti = add_operator(db)
    add_contact(db, "081234567890", "Budi (legacy)", owner=siti)
    add_contact(db, NUMBER, "Budi")
    db.commit()
    reads = ReadPool(make_read_engine(engine.url.render_as_string(hide_password=False)))
    statements = []
    event.listen(reads.engine, "before_cursor_execute",
                 lambda *a: statements.append(a[2]))
    try:
        factory = agi.FastAGIFactory(Database(sessionmaker, reads=reads).calls, clock=clock,
                                     secret=SECRET.encode())
        for i in range(3):
            statements.clear()
            v = AsteriskPeer(factory, uniqueid=f"1700000000.{i}").run().variables
            assert len(statements) == 1 and statements[0].lstrip().upper().startswith(
                "SELECT")
            assert v["CALLERID(name)"] == "Budi"  # the E.164 row, no open ticket
            assert v["HELPDESK_OPERATOR"] == ""  # its owner is not the legacy row's
    finally:
        reads.stop()


def test_the_lookup_does_not_wait_behind_a_write_in_progress(engine, db_url, db):
    """A writer holds its transaction open (a batch of texts being filed): the lookup on
    its own connection still answers, from the last commit."""
    import threading

    from sqlalchemy import update

    from gateway.daemon.database import ReadPool
    from gateway.db.engine import make_read_engine

    contact = add_contact(db, name="Budi")
    ticket = add_ticket(db, contact)
    db.commit()
    writer = engine.connect()
    writer.begin()
    writer.execute(update(Contact).where(Contact.id == contact.id).values(name="Uncommitted"))
    writer.execute(update(Ticket).where(Ticket.id == ticket.id).values(status="closed"))
    reads = ReadPool(make_read_engine(db_url))
    answer = []
    thread = threading.Thread(target=lambda: reads.run(calls.lookup_caller, NUMBER, "ID")
                              .addCallback(answer.append))
    try:
        thread.start()
        thread.join(5)
        assert answer, "the lookup waited for the writer"
        assert answer[0].name == "Budi" and answer[0].ticket_number == str(ticket.id)
    finally:
        writer.rollback()
        writer.close()
        thread.join(40)
        reads.stop()


# -- the protocol: header, replies, hangup, cuts, time limits ------------------------------
def test_header_lines_with_crlf_and_empty_values_are_read(factory):
    peer = AsteriskPeer(factory)
    peer.send(peer.header().replace(b"\n", b"\r\n"))
    request = peer.proto.request
    assert request.script == "incoming" and request.uniqueid == "1700000000.1"
    assert request.env["agi_accountcode"] == ""
    assert peer.pending()[0].startswith("SET VARIABLE")


def test_header_may_arrive_in_pieces(factory):
    peer = AsteriskPeer(factory)
    data = peer.header()
    for i in range(0, len(data), 7):
        peer.send(data[i:i + 7])
    assert peer.proto.request is not None
    assert peer.pending()


def test_hangup_mid_call_stops_the_commands_and_keeps_the_row(factory, db):
    peer = AsteriskPeer(factory)
    peer.start()
    first = peer.pending()
    assert len(first) == 1  # one command at a time
    peer.send(b"HANGUP\n")  # the caller hung up: a notice, not a reply
    assert peer.pending() == []
    peer.send(b"200 result=1\n")  # the reply to the command in flight
    assert peer.pending() == []
    assert peer.transport.disconnecting
    assert call_row(db) is not None


@pytest.mark.parametrize("reply", [
    b"510 Invalid or unknown command\n",
    b"511 Command Not Permitted on a dead channel or intercept routine\n",
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: SET VARIABLE <variablename> <value>\n"
    b"        Sets a variable to the current channel.\n"
    b"520 End of proper usage.\n",
])
def test_a_refused_command_does_not_cost_the_others(factory, reply):
    peer = AsteriskPeer(factory)
    peer.refuse["HELPDESK_LOOKUP"] = reply.decode()
    peer.run()
    assert "HELPDESK_LOOKUP" not in peer.variables
    assert peer.variables["HELPDESK_NEW"] == "1"


def test_a_connection_cut_mid_call_is_harmless(factory, db):
    peer = AsteriskPeer(factory)
    peer.start()
    assert peer.pending()
    peer.proto.connectionLost(Failure(error.ConnectionLost("cut")))
    assert call_row(db) is not None
    assert peer.proto.command("NOOP").called  # refused at once, nothing written
    assert peer.transport.value() == b""


def test_silent_asterisk_is_dropped_after_the_time_limit(factory, clock):
    peer = AsteriskPeer(factory)
    clock.advance(agi.FastAGIProtocol.header_timeout - 0.1)
    assert not peer.transport.disconnecting
    clock.advance(0.2)
    assert peer.transport.disconnecting  # aborted


def test_a_command_without_reply_times_out(factory, clock):
    peer = AsteriskPeer(factory)
    peer.start()
    assert peer.pending()
    clock.advance(agi.FastAGIProtocol.command_timeout + 0.1)
    assert peer.transport.disconnecting
    peer.proto.connectionLost(Failure(error.ConnectionAborted()))


def test_unknown_script_is_closed_without_commands(factory):
    peer = AsteriskPeer(factory, script="voicemail")
    peer.start()
    assert peer.pending() == [] and peer.transport.disconnecting


def test_a_huge_line_is_refused(factory):
    peer = AsteriskPeer(factory)
    peer.send(b"agi_network: " + b"x" * 20000 + b"\n")
    assert peer.transport.disconnecting


def test_values_cannot_break_out_of_the_command():
    assert agi.quote('a "b"\nSET VARIABLE X 1\\') == '"a \\"b\\" SET VARIABLE X 1\\\\"'


def test_reply_parsing():
    r = agi.parse_reply("200 result=1 (PJSIP/101 (x))")
    assert (r.code, r.result, r.data) == (200, "1", "PJSIP/101 (x)")
    assert agi.parse_reply("200 result=0 endpos=1234").result == "0"
    assert not agi.parse_reply("200 result=-1").ok
    assert agi.parse_reply("511 Command Not Permitted").code == 511


# -- the door: only the dialplan's requests, and a bounded header -----------------------
def counts(db):
    db.expire_all()
    return {model.__name__: db.scalar(select(func.count()).select_from(model))
            for model in (Call, Contact, Ticket, Message)}


@pytest.fixture
def db_work(factory, monkeypatch):
    """Every transaction the server asks the DB pool for."""
    asked = []
    real = factory.run

    def run(method, *args):
        asked.append(method)
        return real(method, *args)
    monkeypatch.setattr(factory, "run", run)
    return asked


def warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == agi.__name__ and r.levelname == "WARNING"]


@pytest.mark.parametrize("script", ["incoming", "hangup", "answered"])
@pytest.mark.parametrize("given, reason", [
    (None, "without a secret"),
    ("", "with an empty secret"),
    ("wrong", "with a wrong secret"),
    (SECRET[:-1], "with a wrong secret"),
    (SECRET + "0", "with a wrong secret"),
    (SECRET.upper(), "with a wrong secret"),
    ("5e" * 31 + "5f", "with a wrong secret"),
])
def test_a_request_without_the_right_secret_is_refused_untouched(
        factory, db, db_work, queued, caplog, script, given, reason):
    before = counts(db)
    peer = AsteriskPeer(factory, script=script, secret=given, args=["1700000000.1"],
                        variables={"QUEUESTATUS": "TIMEOUT", "MEMBERINTERFACE": "PJSIP/101"})
    peer.start()
    assert peer.transport.value() == b""  # not one command
    assert peer.transport.disconnecting and peer.proto.request is None
    peer.send(b"200 result=1\n")  # whatever comes next is not read
    assert peer.transport.value() == b""
    peer.proto.connectionLost(Failure(error.ConnectionDone()))
    assert db_work == [] and queued == []  # no database work, no SMS
    assert counts(db) == before
    (line,) = warnings(caplog)
    assert f"refused a request from 127.0.0.1:40000 {reason}" in line
    assert SECRET not in line


def test_the_right_secret_in_agi_request_alone_also_works(factory, db):
    peer = AsteriskPeer(factory)
    header = peer.header().replace(f"agi_network_script: incoming?secret={SECRET}\n".encode(),
                                   b"")
    peer.send(header)
    assert peer.proto.request.script == "incoming"
    assert peer.pending()[0].startswith("SET VARIABLE")


def test_the_secret_is_compared_in_constant_time(factory, monkeypatch):
    compared = []

    def compare_digest(a, b):
        compared.append((a, b))
        return a == b
    monkeypatch.setattr(agi.hmac, "compare_digest", compare_digest)
    AsteriskPeer(factory, secret="x" * 64).start()
    assert compared == [(b"x" * 64, SECRET.encode())]


def test_a_flood_of_refusals_writes_a_line_a_minute(factory, clock, caplog):
    for _ in range(100):
        AsteriskPeer(factory, secret="guess").start()
    AsteriskPeer(factory, secret=None).start()  # another reason: its own line
    assert len(warnings(caplog)) == 2
    clock.advance(agi.ThrottledLog.interval)
    AsteriskPeer(factory, secret="guess").start()
    lines = warnings(caplog)
    assert len(lines) == 3
    assert lines[-1].endswith("(and 99 more like it since the last such line)")


def test_an_empty_secret_is_never_accepted():
    with pytest.raises(ValueError, match="must not be empty"):
        agi.FastAGIFactory(None, clock=Clock(), secret=b"")


def assert_bounded(proto):
    stored = sum(len(k) + len(v) + 2 for k, v in proto.env.items())
    assert len(proto.env) <= agi.FastAGIProtocol.MAX_HEADER_LINES
    assert stored <= agi.FastAGIProtocol.MAX_HEADER_BYTES
    assert len(proto._buffer) <= agi.FastAGIProtocol.MAX_LENGTH


@pytest.mark.parametrize("line", [
    b"agi_x_%d: y\n",  # new keys
    b"agi_arg_1: y\n",  # the same key again and again
    b"HANGUP\n",  # not a header line, but during the header it counts as one
    b"agi_pad_%d: " + b"p" * 1000 + b"\n",  # few lines, many bytes
])
def test_header_lines_forever_are_cut_at_the_bound(factory, caplog, line):
    peer = AsteriskPeer(factory)
    sent = 0
    for chunk in range(1000):  # 100,000 lines, some 1 GB for the long ones, unless cut
        data = b"".join(line.replace(b"%d", str(chunk * 100 + i).encode()) if b"%d" in line
                        else line for i in range(100))
        peer.send(data)
        sent += 100
        assert_bounded(peer.proto)
        if peer.transport.disconnecting:
            break
    assert peer.transport.disconnecting and sent <= 100  # closed within the first chunk
    counted = peer.proto.header_lines
    assert counted <= agi.FastAGIProtocol.MAX_HEADER_LINES + 1
    for _ in range(50):  # what is still in flight after the close changes nothing
        peer.send(data)
    assert peer.proto.header_lines == counted
    assert_bounded(peer.proto)
    assert peer.transport.value() == b"" and peer.proto.request is None
    (warning,) = warnings(caplog)
    assert "AGI header of over" in warning and "127.0.0.1:40000" in warning


def test_bytes_without_a_newline_are_cut_at_the_line_bound(factory, caplog):
    peer = AsteriskPeer(factory)
    for _ in range(1000):
        peer.send(b"x" * 1000)
        assert len(peer.proto._buffer) <= agi.FastAGIProtocol.MAX_LENGTH
    assert peer.transport.disconnecting and peer.proto._buffer == b""
    (warning,) = warnings(caplog)
    assert f"a line of over {agi.FastAGIProtocol.MAX_LENGTH} bytes from 127.0.0.1:40000" in (
        warning)


def test_a_header_at_the_bounds_is_still_read(factory):
    peer = AsteriskPeer(factory)
    base = peer.header().count(b"\n")  # Asterisk's lines, the blank one included
    peer.args = ["a"] * (agi.FastAGIProtocol.MAX_HEADER_LINES - base)
    header = peer.header()
    assert header.count(b"\n") == agi.FastAGIProtocol.MAX_HEADER_LINES
    peer.send(header)
    assert peer.proto.request is not None and peer.pending()

    peer = AsteriskPeer(factory)
    peer.args = ["a"] * (agi.FastAGIProtocol.MAX_HEADER_LINES - base + 1)
    peer.start()
    assert peer.proto.request is None and peer.transport.disconnecting


def test_a_header_trickling_in_is_cut_at_the_time_limit(factory, clock, caplog):
    peer = AsteriskPeer(factory)
    lines = peer.header().splitlines(keepends=True)[:-1]  # never the blank line
    for line in lines[:10]:
        peer.send(line)
        clock.advance(1)  # a line a second: each within the limit, the whole not
    assert peer.transport.disconnecting and peer.proto.request is None
    (warning,) = warnings(caplog)
    assert "no complete AGI header from 127.0.0.1:40000 within 5 s" in warning


# -- the secret file ----------------------------------------------------------------------
def test_secret_file_is_made_once_with_its_exact_mode(tmp_path):
    path = str(tmp_path / "var" / "agi.secret")
    old = os.umask(0o077)  # a strict umask must not take the group's read away
    try:
        value = secret.ensure(path, mode=0o640)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert re.fullmatch(rb"[0-9a-f]{64}\n", open(path, "rb").read())
    assert secret.ensure(path, mode=0o640) == value == secret.read(path)
    assert os.listdir(tmp_path / "var") == ["agi.secret"]  # no partial file left
    assert secret.ensure(str(tmp_path / "other")) != value


def test_a_missing_or_empty_secret_is_a_sentence(tmp_path):
    path = tmp_path / "agi.secret"
    with pytest.raises(FileNotFoundError, match=r"the FastAGI secret .* does not exist: run "
                                                r"`helpdesk init` first"):
        secret.read(str(path), "FastAGI secret")
    path.write_text("\n")
    with pytest.raises(FileNotFoundError, match="is empty: delete it and run `helpdesk init`"):
        secret.read(str(path), "FastAGI secret")


def test_the_daemon_reads_the_secret_from_agi_secret_file(tmp_path, clock):
    from gateway.config import parse

    path = tmp_path / "agi.secret"
    config = parse({"agi": {"secret_file": str(path)}})
    with pytest.raises(FileNotFoundError, match="run `helpdesk init` first"):
        agi.agi_factory(config, None, clock)
    value = secret.ensure(str(path), mode=0o640)
    assert agi.agi_factory(config, None, clock).secret == value


def test_init_makes_the_agi_secret_for_asterisk(tmp_path, capsys):
    from gateway.cli import main

    config = tmp_path / "helpdesk.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path}/helpdesk.db"\n'
                      f'[web]\nsecret_file = "{tmp_path}/session.key"\n'
                      f'[agi]\nsecret_file = "{tmp_path}/agi/agi.secret"\n')
    assert main(["--config", str(config), "init"]) == 0
    made = tmp_path / "agi" / "agi.secret"
    assert stat.S_IMODE(made.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "session.key").stat().st_mode) == 0o600
    first = made.read_bytes()
    assert main(["--config", str(config), "init"]) == 0
    assert made.read_bytes() == first  # kept: Asterisk has it


# -- answered and hangup: the call row's life and the missed-call SMS -------------------
def incoming(factory, **kw):
    return AsteriskPeer(factory, **kw).run()


def hangup(factory, variables, **kw):
    return AsteriskPeer(factory, script="hangup", variables=variables, **kw).run()


def test_queue_answer_then_hangup_closes_the_row_as_answered(factory, db, clock, queued):
    siti = add_operator(db)
    db.commit()
    incoming(factory)
    clock.advance(12)
    AsteriskPeer(factory, script="answered",
                 variables={"MEMBERINTERFACE": "PJSIP/101"}).run()
    clock.advance(60)
    peer = hangup(factory, {"HELPDESK_HOURS": "open", "HANGUPCAUSE": "16"})
    assert [c for c in peer.commands if c.startswith("GET")] == [
        f"GET VARIABLE {name}" for name in agi.HANGUP_READS]
    call = call_row(db)
    assert call.disposition == "answered" and call.operator_id == siti.id
    assert call.answered_at - call.started_at == dt.timedelta(seconds=12)
    assert call.ended_at - call.answered_at == dt.timedelta(seconds=60)
    ticket = db.get(Ticket, call.ticket_id)
    assert ticket.status == "open" and ticket.assignee_id == siti.id
    assert queued == []


def test_owner_dial_answer_reports_from_the_operator_channel(factory, db):
    siti = add_operator(db)
    db.commit()
    incoming(factory)
    AsteriskPeer(factory, script="answered", uniqueid="1700000000.2",
                 channel="PJSIP/101-0000000a", args=["1700000000.1"]).run()
    call = call_row(db)
    assert call.answered_at is not None and call.operator_id == siti.id


def test_caller_who_hangs_up_in_the_queue_gets_one_sms(factory, db, clock, queued):
    incoming(factory)
    hangup(factory, {"HELPDESK_HOURS": "open", "HANGUPCAUSE": "16"})
    call = call_row(db)
    assert call.disposition == "missed" and call.ended_at is not None
    sms = db.scalar(select(Message).where(Message.direction == "out"))
    assert sms.number == NUMBER and sms.status == "queued"
    assert f"tiket {call.ticket_id}" in sms.text and "menelepon Anda kembali" in sms.text
    assert queued == [sms.id]
    event = db.scalar(select(TicketEvent).where(TicketEvent.kind == "call_missed"))
    assert event.message_id == sms.id and "SMS sent" in event.detail

    # a second missed call soon after: on the timeline, but no second text
    clock.advance(300)
    incoming(factory, uniqueid="1700000300.5")
    hangup(factory, {"QUEUESTATUS": "TIMEOUT"}, uniqueid="1700000300.5")
    assert call_row(db, "1700000300.5").disposition == "missed"
    assert db.scalar(select(func.count()).select_from(Message)) == 1


def test_out_of_hours_call_gets_the_closed_text(factory, db):
    contact = add_contact(db, name="Budi")
    contact.language = "en"
    db.commit()
    incoming(factory)
    hangup(factory, {"HELPDESK_HOURS": "closed"})
    call = call_row(db)
    assert call.disposition == "out_of_hours"
    sms = db.scalar(select(Message))
    assert "opening hours" in sms.text and f"tiket {call.ticket_id}" in sms.text


def test_dead_channel_refusing_every_read_still_closes_the_row(factory, db):
    incoming(factory)
    peer = AsteriskPeer(factory, script="hangup")
    for name in agi.HANGUP_READS:
        peer.refuse[name] = "511 Command Not Permitted on a dead channel or intercept routine\n"
    peer.run()
    assert call_row(db).disposition == "missed"


def test_hangup_without_a_lookup_files_the_call_then(factory, db):
    hangup(factory, {"QUEUESTATUS": "JOINEMPTY"})
    call = call_row(db)
    assert call.number == NUMBER and call.disposition == "missed"
    assert db.scalar(select(func.count()).select_from(Message)) == 1


def test_withheld_caller_is_never_texted(factory, db, queued):
    incoming(factory, callerid="unknown")
    hangup(factory, {"QUEUESTATUS": "TIMEOUT"}, callerid="unknown")
    assert call_row(db).disposition == "missed"
    assert queued == [] and db.scalar(select(func.count()).select_from(Message)) == 0


def test_hangup_reported_twice_keeps_the_first(factory, db, clock):
    incoming(factory)
    hangup(factory, {"QUEUESTATUS": "TIMEOUT"})
    first = call_row(db).ended_at
    clock.advance(5)
    hangup(factory, {"QUEUESTATUS": "TIMEOUT"})
    assert call_row(db).ended_at == first


def test_channel_names_map_to_extensions():
    assert calls.extension_of("PJSIP/101-0000002a") == "101"
    assert calls.extension_of("PJSIP/101") == "101"
    assert calls.extension_of("PJSIP/op-siti-00000001") == "op-siti"
    assert calls.dial_string("101") == "PJSIP/101"
    assert calls.dial_string("SIP/7") == "SIP/7"


# -- the stdio script on pyst2's asterisk.agi ------------------------------------------
def test_stdio_script_gives_the_same_answer(config, sessionmaker, db, monkeypatch):
    from gateway.voice import stdio_agi as agi_script

    contact = add_contact(db, name="Budi")
    ticket = add_ticket(db, contact)
    db.commit()
    # a stdio header: no agi_network, no URL, so no secret (stdio_agi says why)
    peer = AsteriskPeer(agi.FastAGIFactory(None, clock=Clock(), secret=b"x"), script="",
                        args=["incoming"], secret=None)
    replies = "200 result=1\n" * 20
    stdin = io.StringIO(peer.header().decode() + replies)
    stdout = io.StringIO()
    monkeypatch.setattr(agi_script, "_sessionmaker", lambda cfg: sessionmaker)
    assert agi_script.main(config, stdin=stdin, stdout=stdout, stderr=io.StringIO()) == 0
    sent = stdout.getvalue().splitlines()
    assert f'SET VARIABLE HELPDESK_TICKET "{ticket.id}"' in sent
    assert 'SET VARIABLE CALLERID(name) "Budi"' in sent
    call = call_row(db)  # filed after the answer, as the FastAGI server does
    assert (call.contact_id, call.ticket_id) == (contact.id, ticket.id)
