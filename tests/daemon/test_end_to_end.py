"""The whole product as a user runs it: `helpdesk init`, `helpdesk run` with a simulated
modem on Gammu's dummy driver, `helpdesk sim inject`, and the JSON API."""
from __future__ import annotations

import os
import re

import pytest

from tests.helpers import api, helpdesk, start, stop, wait_for, write_config


@pytest.fixture
def daemon(tmp_path, db_url, engine, modem_dir):
    """A running gateway with an API token; `engine` gives a clean database."""
    config, port = write_config(tmp_path, db_url, modem_dir)
    helpdesk(config, "init")
    token = helpdesk(config, "token", "create", "tests").stdout.strip()
    log = open(tmp_path / "daemon.log", "w")
    process = start(config, log=log)
    try:
        wait_for(lambda: api(port, "/api/v1/health")[0] == 200, what="the daemon to listen")
        yield config, port, token
    finally:
        code = stop(process)
        log.close()
    assert code == 0, (tmp_path / "daemon.log").read_text()


def test_init_prints_admin_password_once(tmp_path, db_url, engine, modem_dir):
    config, _ = write_config(tmp_path, db_url, modem_dir)
    first = helpdesk(config, "init").stdout
    assert re.search(r"user 'admin' with password: \S{12,}", first)
    second = helpdesk(config, "init").stdout
    assert "password" not in second and "up to date" in second


def test_text_becomes_ticket_ack_is_sent_and_reply_goes_out(daemon, modem_dir):
    config, port, token = daemon
    out = helpdesk(config, "sim", "inject", "--modem", "modem1", "081234567890",
                   "KOMPLAIN pulsa belum masuk").stdout
    assert "delivered to modem1" in out

    tickets = wait_for(lambda: api(port, "/api/v1/tickets", token)[1]["items"],
                       what="the ticket in the API")
    [ticket] = tickets
    assert ticket["contact"]["phone"] == "+6281234567890"
    assert ticket["kind"] == "complaint" and ticket["status"] == "new"
    # deleted from the SIM right after the commit that made the ticket visible
    wait_for(lambda: os.listdir(modem_dir / "sms" / "1") == [], what="the SIM to be empty")

    def ack_sent():
        items = api(port, f"/api/v1/messages?direction=out&ticket={ticket['id']}", token)[1]
        return [m for m in items["items"] if m["status"] == "sent"]
    [ack] = wait_for(ack_sent, what="the acknowledgement to be sent")
    assert ticket["number"] in ack["text"] and ack["modem"] == "modem1"

    status, inbound = api(port, "/api/v1/messages?direction=in&number=081234567890", token)
    assert status == 200
    assert [m["text"] for m in inbound["items"]] == ["KOMPLAIN pulsa belum masuk"]
    assert inbound["items"][0]["ticket_id"] == ticket["id"]

    status, queued = api(port, "/api/v1/messages", token,
                         {"to": "0812-3456-7890", "text": "Pulsa sudah masuk ya kak 🙏"})
    assert status == 202 and queued["status"] == "queued"
    sent = wait_for(lambda: api(port, f"/api/v1/messages/{queued['id']}", token)[1]
                    ["status"] == "sent", what="the operator's text to be sent")
    assert sent


def test_second_text_joins_the_open_ticket(daemon):
    config, port, token = daemon
    helpdesk(config, "sim", "inject", "--modem", "modem1", "081234567890", "halo")
    wait_for(lambda: api(port, "/api/v1/tickets", token)[1]["items"], what="first ticket")
    helpdesk(config, "sim", "inject", "--modem", "modem1", "+62 812-3456-7890", "masih ada?")
    messages = wait_for(lambda: len(api(port, "/api/v1/messages?direction=in", token)[1]
                                    ["items"]) == 2 and
                        api(port, "/api/v1/messages?direction=in", token)[1]["items"],
                        what="the second text")
    assert len({m["ticket_id"] for m in messages}) == 1
    assert len(api(port, "/api/v1/tickets", token)[1]["items"]) == 1


def test_long_unicode_text_arrives_whole(daemon):
    config, port, token = daemon
    text = "Barang sudah sampai, terima kasih banyak 🙏😀 " * 8  # several UCS-2 parts
    helpdesk(config, "sim", "inject", "--modem", "modem1", "081234567890", text)
    [message] = wait_for(lambda: api(port, "/api/v1/messages?direction=in", token)[1]["items"],
                         what="the long text")
    assert message["text"] == text.strip()


def test_sms_send_command_queues_and_daemon_sends(daemon):
    config, port, token = daemon
    out = helpdesk(config, "sms", "send", "081298765432", "Promo voucher XL").stdout
    message_id = int(re.search(r"text (\d+) ", out).group(1))
    wait_for(lambda: api(port, f"/api/v1/messages/{message_id}", token)[1]["status"] == "sent",
             what="the text to be sent")


def test_stops_cleanly_on_sigterm_with_work_in_flight(tmp_path, db_url, engine, modem_dir,
                                                       modem_config):
    """A stop arriving mid-burst lets the pipeline finish its commit-then-delete; the
    modems and the database stop after it, and the process exits by itself."""
    from gateway.modem import simulator as sim

    config, port = write_config(tmp_path, db_url, modem_dir)
    helpdesk(config, "init")
    for i in range(300):
        sim.inject(modem_config, f"0812{i:08d}", f"halo nomor {i}")
    process = start(config)
    wait_for(lambda: len(os.listdir(modem_dir / "sms" / "1")) < 300, what="the burst to start")
    assert stop(process) == 0
