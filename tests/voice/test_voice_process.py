"""FastAGI in its own process (gateway/daemon/voice_process.py), through the real daemon:
`helpdesk run` answers Asterisk on [agi] listen, starts the process again when it dies,
and leaves none behind when it is killed itself."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess

import pytest
from sqlalchemy import select

from gateway.db.models import Call
from tests.helpers import HELPDESK, helpdesk, start, stop, wait_for, write_config


def _agi_port(config) -> int:
    return int(re.search(r'\[agi\]\nlisten = "127\.0\.0\.1:(\d+)"', config.read_text()).group(1))


def _secret(tmp_path) -> str:
    return (tmp_path / "agi.secret").read_text().strip()


def incoming(port: int, secret: str, callerid: str, uniqueid: str) -> dict[str, str]:
    """Play Asterisk for one incoming call: the header, then "200 result=1" to every
    command until the server closes; the variables it set."""
    header = (f"agi_network: yes\nagi_network_script: incoming?secret={secret}\n"
              f"agi_channel: PJSIP/trunk-00000001\nagi_uniqueid: {uniqueid}\n"
              f"agi_callerid: {callerid}\nagi_calleridname: unknown\n\n")
    variables = {}
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(header.encode())
        buffer = b""
        while True:
            data = conn.recv(4096)
            if not data:
                return variables
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                match = re.match(r'SET VARIABLE (\w+) "(.*)"', line.decode())
                if match:
                    variables[match.group(1)] = match.group(2)
                conn.sendall(b"200 result=1\n")


def voice_children(daemon_pid: int | None = None) -> list[int]:
    """Pids of FastAGI processes (of one daemon, given its pid)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"gateway.daemon.voice_process" in cmdline and (
                daemon_pid is None or parent == daemon_pid):
            found.append(int(entry))
    return found


@pytest.fixture
def daemon(tmp_path, db_url, sessionmaker, modem_dir):
    # sessionmaker first: it lays the empty database down before the daemon opens it.
    config, _ = write_config(tmp_path, db_url, modem_dir)
    helpdesk(config, "init")
    process = start(config)
    port, secret = _agi_port(config), _secret(tmp_path)
    wait_for(lambda: incoming(port, secret, "0811000000", "warm.1") != {},
             what="the FastAGI process to answer")
    yield process, port, secret
    stop(process)


def test_the_daemon_answers_asterisk_from_its_own_process(daemon, sessionmaker):
    process, port, secret = daemon
    [child] = voice_children(process.pid)
    assert child != process.pid
    variables = incoming(port, secret, "081234567890", "1700000000.7")
    assert variables["HELPDESK_LOOKUP"] == "ok"
    wait_for(lambda: _call(sessionmaker, "1700000000.7") is not None,
             what="the call row, written by the FastAGI process")


def test_a_dead_fastagi_process_is_started_again(daemon):
    process, port, secret = daemon
    [child] = voice_children(process.pid)
    os.kill(child, signal.SIGKILL)
    wait_for(lambda: voice_children(process.pid) not in ([], [child]),
             what="a new FastAGI process")
    # Calls during the restart waited in the daemon's socket, which stayed open.
    assert incoming(port, secret, "081234567891", "1700000000.8")["HELPDESK_LOOKUP"] == "ok"


def test_a_killed_daemon_leaves_no_fastagi_process(tmp_path, db_url, modem_dir):
    config, _ = write_config(tmp_path, db_url, modem_dir)
    helpdesk(config, "init")
    process = start(config)
    try:
        wait_for(lambda: voice_children(process.pid), what="the FastAGI process")
        [child] = voice_children(process.pid)
    finally:
        process.kill()
        process.wait()
    wait_for(lambda: not os.path.exists(f"/proc/{child}") or _is_zombie(child),
             what="the FastAGI process to end with its daemon")


@pytest.mark.parametrize("key", ["agi", "web"])
def test_a_taken_port_stops_start_up(tmp_path, db_url, modem_dir, key):
    config, web_port = write_config(tmp_path, db_url, modem_dir)
    helpdesk(config, "init")
    port = _agi_port(config) if key == "agi" else web_port
    with socket.create_server(("127.0.0.1", port)):
        result = subprocess.run([HELPDESK, "--config", str(config), "run"], capture_output=True,
                                text=True, timeout=60)   # what started before stops too
    assert result.returncode == 2
    assert f"choose another [{key}] listen" in result.stderr, result.stderr
    assert not voice_children()


def _call(sessionmaker, uniqueid):
    with sessionmaker() as s:
        return s.scalar(select(Call.id).where(Call.uniqueid == uniqueid))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_missed_call_text_queued_by_the_process_wakes_the_outbox():
    from gateway.daemon.voice_process import _Child

    class Owner:
        def __init__(self):
            self.queued, self.ready = [], 0
            self.on_queued = self.queued.append

        def child_ready(self):
            self.ready += 1

    owner = Owner()
    child = _Child(owner)
    child.outReceived(b"ready\nqueued 1")   # a line may come in pieces
    assert (owner.ready, owner.queued) == (1, [])
    child.outReceived(b"2\nqueued x\n" + b"queued 9" * 100 + b"\nqueued 7\n")
    assert owner.queued == [12, 7]       # nothing but its own lines is acted on
