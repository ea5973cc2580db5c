"""AMI client and click-to-call, against a test peer that writes what Asterisk's manager
writes (banner, CRLF `Key: Value` blocks, responses and events by ActionID)."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from gateway.daemon.database import Database
from gateway.db.models import Call, Contact, Ticket, TicketEvent, User
from gateway.voice import ami

SETTINGS = {"host": "127.0.0.1", "port": 5038, "username": "helpdesk", "secret": "s3cret"}


class ManagerPeer:
    """Asterisk's manager side of one AMI connection."""

    def __init__(self, factory):
        self.factory = factory
        self.proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5038))
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def send(self, *messages):
        for headers in messages:
            block = "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
            self.proto.dataReceived(block.encode())

    def actions(self) -> list[dict]:
        """Actions the client wrote since last asked (repeated keys as lists)."""
        data = self.transport.value().decode()
        self.transport.clear()
        out = []
        for block in data.split("\r\n\r\n"):
            if not block.strip():
                continue
            action: dict = {}
            for line in block.split("\r\n"):
                key, _, value = line.partition(": ")
                if key in action:
                    action[key] = (action[key] if isinstance(action[key], list)
                                   else [action[key]]) + [value]
                else:
                    action[key] = value
            out.append(action)
        return out

    def login(self):
        self.proto.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
        (login,) = self.actions()
        self.send([("Response", "Success"), ("ActionID", login["ActionID"]),
                   ("Message", "Authentication accepted")])
        self.send([("Event", "FullyBooted"), ("Privilege", "system,all"),
                   ("Uptime", "5"), ("LastReload", "5"), ("Status", "Fully Booted")])
        return login


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def factory(clock):
    return ami.AMIClientFactory(SETTINGS, clock)


def test_login_with_the_configured_user_and_only_call_events(factory):
    peer = ManagerPeer(factory)
    login = peer.login()
    assert login["Action"] == "Login" and login["Username"] == "helpdesk"
    assert login["Secret"] == "s3cret" and login["Events"] == "call"
    assert login["ActionID"].startswith("helpdesk-")
    assert factory.connection is peer.proto and peer.proto.logged_in


def test_login_refused_closes_and_is_not_ready(factory):
    peer = ManagerPeer(factory)
    peer.proto.dataReceived(b"Asterisk Call Manager/9.0.0\r\n")
    (login,) = peer.actions()
    peer.send([("Response", "Error"), ("ActionID", login["ActionID"]),
               ("Message", "Authentication failed")])
    assert peer.transport.disconnecting and factory.connection is None
    with pytest.raises(ami.AMIError, match="not connected"):
        factory.require()


def test_responses_are_matched_by_action_id_not_order(factory):
    peer = ManagerPeer(factory)
    peer.login()
    first = peer.proto.send_action("Ping")
    second = peer.proto.send_action("CoreStatus")
    a, b = peer.actions()
    got = []
    first.addCallback(lambda m: got.append(("first", m.get("Ping"))))
    second.addCallback(lambda m: got.append(("second", m.get("CoreCurrentCalls"))))
    peer.send([("Response", "Success"), ("ActionID", b["ActionID"]),
               ("CoreCurrentCalls", "3")])
    peer.send([("Response", "Success"), ("ActionID", a["ActionID"]), ("Ping", "Pong"),
               ("Timestamp", "1700000000.000000")])
    assert got == [("second", "3"), ("first", "Pong")]


def test_repeated_headers_and_multiline_output_are_kept(factory):
    peer = ManagerPeer(factory)
    peer.login()
    events = []
    factory.listeners.append(events.append)
    peer.send([("Event", "Newchannel"), ("Channel", "PJSIP/101-00000001"),
               ("ChanVariable", "HELPDESK_TICKET=12"), ("ChanVariable", "HELPDESK_NEW=0"),
               ("Uniqueid", "1700000000.1")])
    assert events[0].getall("ChanVariable") == ["HELPDESK_TICKET=12", "HELPDESK_NEW=0"]
    d = peer.proto.send_action("Command", [("Command", "core show uptime")])
    (action,) = peer.actions()
    peer.send([("Response", "Success"), ("ActionID", action["ActionID"]),
               ("Message", "Command output follows"), ("Output", "System uptime: 5 minutes"),
               ("Output", "Last reload: 5 minutes")])
    assert d.result.getall("Output") == ["System uptime: 5 minutes", "Last reload: 5 minutes"]


def test_values_cannot_inject_headers(factory):
    peer = ManagerPeer(factory)
    peer.login()
    peer.proto.send_action("Originate", [("CallerID", "Budi\r\nAction: Logoff")])
    (action,) = peer.actions()
    assert action["CallerID"] == "Budi Action: Logoff" and action["Action"] == "Originate"


def test_cut_link_fails_pending_actions_and_reconnects(factory, clock):
    class Connector:
        attempts = 0

        def connect(self):
            self.attempts += 1

    peer = ManagerPeer(factory)
    peer.login()
    pending = peer.proto.send_action("Ping")
    failures = []
    pending.addErrback(failures.append)
    reason = Failure(error.ConnectionLost("Asterisk restarted"))
    peer.proto.connectionLost(reason)
    assert failures and failures[0].check(ami.AMIError)
    assert factory.connection is None
    connector = Connector()
    factory.clientConnectionLost(connector, reason)
    clock.advance(factory.maxDelay + 1)
    assert connector.attempts == 1
    # and the new connection logs in again
    again = ManagerPeer(factory)
    again.login()
    assert factory.connection is again.proto


def test_keepalive_ping_and_a_silent_manager_is_dropped(factory, clock):
    peer = ManagerPeer(factory)
    peer.login()
    clock.advance(ami.AMIProtocol.ping_interval)
    (ping,) = peer.actions()
    assert ping["Action"] == "Ping"
    peer.send([("Response", "Success"), ("ActionID", ping["ActionID"]), ("Ping", "Pong")])
    clock.advance(ami.AMIProtocol.ping_interval)
    (ping,) = peer.actions()
    clock.advance(ami.AMIProtocol.action_timeout)
    assert peer.transport.disconnecting


# -- click-to-call ---------------------------------------------------------------------
@pytest.fixture
def operator(sessionmaker):
    with sessionmaker.begin() as s:
        user = User(name="siti", password_hash="x", role="operator", extension="101")
        contact = Contact(phone="+6281234567890", name="Budi")
        s.add_all([user, contact])
        s.flush()
        s.add(Ticket(kind="question", status="open", contact_id=contact.id))
        return user.id


@pytest.fixture
def clicker(sessionmaker, factory, clock):
    return ami.ClickToCall(Database(sessionmaker).calls, factory, "ID", clock)


def test_click_to_call_rings_the_operator_then_dials_the_customer(
        factory, clicker, operator, sessionmaker):
    peer = ManagerPeer(factory)
    peer.login()
    d = clicker.call(operator, "0812 3456 7890")
    (originate,) = peer.actions()
    assert originate["Action"] == "Originate"
    assert originate["Channel"] == "PJSIP/101"  # the operator's softphone first
    assert originate["Context"] == "helpdesk-outgoing"
    assert originate["Exten"] == "+6281234567890" and originate["Priority"] == "1"
    assert originate["Async"] == "true"
    assert originate["CallerID"] == '"Budi" <+6281234567890>'
    assert originate["ChannelId"].startswith("helpdesk-")
    peer.send([("Response", "Success"), ("ActionID", originate["ActionID"]),
               ("Message", "Originate successfully queued")])
    call_id = d.result
    with sessionmaker() as s:
        call = s.get(Call, call_id)
        assert (call.direction, call.number, call.uniqueid) == (
            "out", "+6281234567890", originate["ChannelId"])
        assert call.operator_id == operator and call.ticket_id is not None
        assert originate["Variable"] == f"HELPDESK_CALL={call_id}"
        assert s.scalar(select(TicketEvent.kind).where(
            TicketEvent.ticket_id == call.ticket_id)) == "call_out"
    # the operator picked up: Asterisk reports success; the hangup handler closes the row
    peer.send([("Event", "OriginateResponse"), ("Privilege", "call,all"),
               ("ActionID", originate["ActionID"]), ("Response", "Success"),
               ("Channel", "PJSIP/101-00000004"), ("Reason", "4"),
               ("Uniqueid", originate["ChannelId"])])
    with sessionmaker() as s:
        assert s.get(Call, call_id).ended_at is None


def test_operator_not_answering_closes_the_row(factory, clicker, operator, sessionmaker):
    peer = ManagerPeer(factory)
    peer.login()
    d = clicker.call(operator, "+6281234567890")
    (originate,) = peer.actions()
    peer.send([("Response", "Success"), ("ActionID", originate["ActionID"]),
               ("Message", "Originate successfully queued")])
    peer.send([("Event", "OriginateResponse"), ("ActionID", originate["ActionID"]),
               ("Response", "Failure"), ("Channel", "PJSIP/101"), ("Reason", "3")])
    with sessionmaker() as s:
        call = s.get(Call, d.result)
        assert call.disposition == "operator_no_answer" and call.ended_at is not None


def test_originate_refused_is_an_error_and_closes_the_row(
        factory, clicker, operator, sessionmaker):
    peer = ManagerPeer(factory)
    peer.login()
    d = clicker.call(operator, "+6281234567890")
    (originate,) = peer.actions()
    peer.send([("Response", "Error"), ("ActionID", originate["ActionID"]),
               ("Message", "Permission denied")])
    failure = []
    d.addErrback(failure.append)
    assert failure[0].check(ami.AMIError) and "Permission denied" in str(failure[0].value)
    with sessionmaker() as s:
        assert s.scalar(select(Call.disposition)) == "failed"


def test_click_to_call_needs_a_link_an_extension_and_a_number(
        factory, clicker, operator, sessionmaker):
    failures = []
    clicker.call(operator, "+6281234567890").addErrback(failures.append)
    assert failures.pop().check(ami.AMIError)
    ManagerPeer(factory).login()
    clicker.call(operator, "TELKOMSEL").addErrback(failures.append)
    with sessionmaker.begin() as s:
        s.add(User(name="noext", password_hash="x", role="operator"))
    noext = clicker.call(2, "+6281234567890")
    noext.addErrback(failures.append)
    assert [f.check(ValueError) for f in failures] == [ValueError, ValueError]
    assert "not a phone number" in str(failures[0].value)
    assert "extension" in str(failures[1].value)


def test_service_only_with_an_ami_section(config):
    from dataclasses import replace

    assert ami.ami_service(config, None, Clock()) == (None, None)
    service, clicker = ami.ami_service(replace(config, ami=SETTINGS), None, Clock())
    assert service.name == "ami" and isinstance(clicker, ami.ClickToCall)
