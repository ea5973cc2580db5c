"""Rule 1 of the design under SIGKILL: every text exactly once, none lost, none doubled."""
from __future__ import annotations

import os
import signal
import time

from sqlalchemy import func, select

from gateway.db.models import Message, Ticket
from gateway.modem import simulator as sim
from tests.helpers import helpdesk, start, stop, wait_for, write_config


def counts(sessionmaker):
    with sessionmaker() as s:
        inbound = s.execute(select(Message.text, func.count()).where(Message.direction == "in")
                            .group_by(Message.text)).all()
        acks = s.scalar(select(func.count()).select_from(Message)
                        .where(Message.direction == "out"))
        tickets = s.scalar(select(func.count()).select_from(Ticket))
    return dict(inbound), acks, tickets


def sim_count(modem_dir):
    return len(os.listdir(modem_dir / "sms" / "1"))


def test_killed_between_commit_and_delete(tmp_path, db_url, sessionmaker, modem_dir,
                                          modem_config):
    config, _ = write_config(tmp_path, db_url, modem_dir)
    helpdesk(config, "init")
    sim.inject(modem_config, "081234567890", "KOMPLAIN pulsa belum masuk")
    sim.inject(modem_config, "081298765432",
               "KOMPLAIN " + "layar laptop saya bergaris, " * 7)  # two parts

    crashing = start(config, env={"HELPDESK_TEST_KILL_AFTER_COMMIT": "1"})
    assert crashing.wait(timeout=30) == -signal.SIGKILL
    texts, _, _ = counts(sessionmaker)
    assert len(texts) == 2  # committed...
    assert sim_count(modem_dir) == 3  # ...but still on the SIM

    process = start(config)
    try:
        wait_for(lambda: sim_count(modem_dir) == 0, what="the SIM to be emptied")
    finally:
        stop(process)
    texts, acks, tickets = counts(sessionmaker)
    assert texts == {"KOMPLAIN pulsa belum masuk": 1,
                     ("KOMPLAIN " + "layar laptop saya bergaris, " * 7).strip(): 1}
    assert tickets == 2 and acks == 2


def test_killed_repeatedly_during_a_500_text_burst(tmp_path, db_url, sessionmaker, modem_dir,
                                                   modem_config):
    config, _ = write_config(tmp_path, db_url, modem_dir)
    helpdesk(config, "init")
    expected = {f"pesan nomor {i} dari pelanggan": 1 for i in range(500)}
    for i, text in enumerate(expected):
        sim.inject(modem_config, f"0812{i:08d}", text)

    kills = 0
    while sim_count(modem_dir) and kills < 20:
        process = start(config)
        stored_before = len(counts(sessionmaker)[0])
        # Kill as soon as it has made some progress: mid-burst, mid-batch.
        wait_for(lambda before=stored_before: (len(counts(sessionmaker)[0]) > before
                                               or not sim_count(modem_dir)),
                 timeout=30, interval=0.01, what="progress")
        time.sleep(0.05 * (kills % 4))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        kills += 1
    assert kills >= 2  # the burst really was interrupted

    process = start(config)  # a last clean run finishes whatever is left
    try:
        wait_for(lambda: sim_count(modem_dir) == 0, timeout=60, what="the SIM to be emptied")
        wait_for(lambda: len(counts(sessionmaker)[0]) == 500, what="all texts stored")
    finally:
        stop(process)
    texts, acks, tickets = counts(sessionmaker)
    assert texts == expected  # every text exactly once
    assert tickets == 500 and acks == 500
