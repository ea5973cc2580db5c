"""Broadcasts through the real daemon (`helpdesk run`, Gammu's dummy driver), made with
the CLI: the outbox holds only a small window of bulk texts, STOP and blocked contacts
get nothing, and a restart mid-broadcast sends nobody the text twice."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from gateway.db.models import (
    PRIORITY_BULK,
    Broadcast,
    BroadcastRecipient,
    Contact,
    ContactGroup,
    ContactGroupMember,
    Message,
)
from gateway.desk.broadcasts import WINDOW_PER_MODEM
from tests.helpers import api, helpdesk, start, stop, wait_for, write_config

OPTED_OUT, BLOCKED = "+6281100000000", "+6281100000001"


def _config(tmp_path, db_url, modem_dir, send_rate):
    config, port = write_config(tmp_path, db_url, modem_dir)
    # After the [[modem]] table: send_rate is the modem's, then the section of our own.
    with open(config, "a") as f:
        f.write(f'send_rate = {send_rate}\n[broadcasts]\nwindow = "00:00-24:00"\n')
    helpdesk(config, "init")
    token = helpdesk(config, "token", "create", "tests").stdout.strip()
    return config, port, token


def _group(sessionmaker, size):
    with sessionmaker() as db:
        group = ContactGroup(name="Pelanggan")
        db.add(group)
        db.flush()
        for i in range(size):
            phone = f"+62811000000{i:02d}"
            contact = Contact(phone=phone, name=f"Pelanggan {i}", opted_out=phone == OPTED_OUT,
                              blocked=phone == BLOCKED)
            db.add(contact)
            db.flush()
            db.add(ContactGroupMember(group_id=group.id, contact_id=contact.id))
        db.commit()


def _bulk_texts(sessionmaker) -> list[tuple[str, str]]:
    with sessionmaker() as db:
        return db.execute(select(Message.number, Message.status).where(
            Message.direction == "out", Message.priority == PRIORITY_BULK)).all()


class Sampler(threading.Thread):
    """Counts, again and again, the bulk texts the outbox holds (queued or sending)."""

    def __init__(self, sessionmaker):
        super().__init__(daemon=True)
        self.sessionmaker, self.stopped, self.most = sessionmaker, threading.Event(), 0

    def run(self):
        query = select(func.count()).select_from(Message).where(
            Message.priority == PRIORITY_BULK, Message.status.in_(("queued", "sending")))
        while not self.stopped.wait(0.02):
            with self.sessionmaker() as db:
                self.most = max(self.most, db.scalar(query))


def _broadcast_left(sessionmaker) -> int:
    """Recipients whose text has not left yet: not queued, or queued and not sent."""
    with sessionmaker() as db:
        return db.scalar(select(func.count()).select_from(BroadcastRecipient)
                         .outerjoin(Message, Message.id == BroadcastRecipient.message_id)
                         .where(BroadcastRecipient.status.in_(("pending", "queued")),
                                (Message.status.is_(None)) | (Message.status != "sent")))


def _broadcast(port, token, broadcast_id):
    return api(port, f"/api/v1/broadcasts/{broadcast_id}", token)[1]


def test_a_broadcast_goes_out_a_few_at_a_time_and_skips_stop(tmp_path, db_url, engine,
                                                            sessionmaker, modem_dir):
    config, port, token = _config(tmp_path, db_url, modem_dir, send_rate=600)
    _group(sessionmaker, 14)
    out = helpdesk(config, "broadcast", "send", "--group", "Pelanggan", "Halo {name}").stdout
    assert f"skipped {OPTED_OUT}: opted out" in out and f"skipped {BLOCKED}: blocked" in out
    assert "12 texts to send" in out
    with sessionmaker() as db:
        broadcast_id = db.scalar(select(Broadcast.id))
    sampler = Sampler(sessionmaker)
    sampler.start()
    log = open(tmp_path / "daemon.log", "w")
    process = start(config, log=log)
    try:
        done = wait_for(lambda: (b := _broadcast(port, token, broadcast_id))["sent"] == 12
                        and b["status"] == "done" and b, timeout=60,
                        what="the broadcast to be sent")
    finally:
        sampler.stopped.set()
        sampler.join()
        code = stop(process)
        log.close()
    output = (tmp_path / "daemon.log").read_text()
    assert code == 0 and "Traceback" not in output, output[-3000:]
    assert done["skipped_opted_out"] == 1 and done["skipped_blocked"] == 1
    texts = _bulk_texts(sessionmaker)
    numbers = [n for n, _ in texts]
    assert len(numbers) == 12 and len(set(numbers)) == 12
    assert OPTED_OUT not in numbers and BLOCKED not in numbers
    assert {s for _, s in texts} == {"sent"}
    assert 1 <= sampler.most <= WINDOW_PER_MODEM


@pytest.mark.parametrize("send_rate", [30])  # one text per 2 s: time to stop mid-way
def test_a_restart_mid_broadcast_sends_nobody_twice(tmp_path, db_url, engine, sessionmaker,
                                                    modem_dir, send_rate):
    config, port, token = _config(tmp_path, db_url, modem_dir, send_rate)
    _group(sessionmaker, 10)  # 8 to send
    helpdesk(config, "broadcast", "send", "--group", "Pelanggan", "Promo untuk {name}")
    with sessionmaker() as db:
        broadcast_id = db.scalar(select(Broadcast.id))
    for run in (1, 2):
        log = open(tmp_path / f"daemon{run}.log", "w")
        process = start(config, log=log)
        try:
            if run == 1:
                wait_for(lambda: _broadcast(port, token, broadcast_id)["sent"] >= 2,
                         timeout=60, what="two texts sent")
            else:
                wait_for(lambda: _broadcast(port, token, broadcast_id)["status"] == "done"
                         and not _broadcast(port, token, broadcast_id)["in_outbox"],
                         timeout=60, what="the rest sent after the restart")
        finally:
            code = stop(process)
            log.close()
        assert code == 0, (tmp_path / f"daemon{run}.log").read_text()[-3000:]
        if run == 1:  # stopped mid-way, or the test proves nothing
            assert _broadcast_left(sessionmaker) > 0
    texts = _bulk_texts(sessionmaker)
    numbers = sorted(n for n, _ in texts)
    assert numbers == sorted(set(numbers)) and len(numbers) == 8
    # A text the stop caught mid-send would be `unknown`, never sent again.
    assert {s for _, s in texts} <= {"sent", "unknown"}
