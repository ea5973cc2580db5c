"""The outbox gives a modem one text at a time: a SIM read during a long outbound burst
waits behind at most one send, and a crash leaves at most one text per modem `sending`.
The real daemon and libGammu's AT driver against the simulator, whose sends take the
network's time."""
from __future__ import annotations

import time

from helpers import helpdesk, start, stop, wait_for, write_config
from sqlalchemy import func, select

from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.models import Message
from tests.modem_sim import ModemSimulator

SEND_TIME = 0.25  # seconds the simulated network takes per text


def test_a_sim_read_during_a_100_text_burst_waits_for_at_most_one_send(tmp_path, db_url,
                                                                      engine):
    with ModemSimulator(link=str(tmp_path / "modem"), capacity=50) as modem:
        config, _port = write_config(tmp_path, db_url, None, at_device=modem.device)
        helpdesk(config, "init")
        sessions = make_sessionmaker(make_engine(db_url))
        with sessions.begin() as s:
            s.add_all(Message(direction="out", number=f"+62812{i:07d}", text=f"promo {i}",
                              status="queued") for i in range(100))
        modem.send_delay = SEND_TIME
        process = start(config)
        try:
            wait_for(lambda: len(modem.sent) >= 5, timeout=60, what="the burst to start")
            sending = []
            for _ in range(5):  # while the burst goes on
                with sessions() as s:
                    sending.append(s.scalar(select(func.count()).select_from(Message)
                                            .where(Message.status == "sending")))
                time.sleep(0.1)
            modem.deliver("+6281299990000", "KOMPLAIN pulsa belum masuk")
            arrived = time.monotonic()

            def filed():
                with sessions() as s:
                    return s.scalar(select(Message.id).where(
                        Message.direction == "in", Message.number == "+6281299990000"))
            wait_for(filed, timeout=60, interval=0.02, what="the inbound text")
            waited = time.monotonic() - arrived
            still_queued = 100 - len(modem.sent)
        finally:
            stop(process)
    assert max(sending) <= 1, sending
    assert still_queued > 20, "the burst must still be going on when the text arrives"
    # One poll interval (0.5 s), at most one send ahead of the read, the read and the
    # store; a queue of claimed sends would have cost many SEND_TIMEs.
    assert waited < 0.5 + 2 * SEND_TIME + 1.0, f"the read waited {waited:.2f} s"
