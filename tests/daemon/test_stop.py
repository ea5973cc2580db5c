"""A stop during working hours: SIGTERM with operators' browsers polling the UI and a
modem that stopped answering ends cleanly, well before systemd's SIGKILL."""
from __future__ import annotations

import threading
import time
import urllib.request

from helpers import api, helpdesk, start, wait_for, write_config

from tests.modem_sim import ModemSimulator


def _hammer(port, stop, answered, errors):
    paths = ["/api/v1/health", "/login", "/metrics"]
    i = 0
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{paths[i % 3]}",
                                        timeout=5) as response:
                response.read()
                answered.append(response.status)
        except Exception as e:  # the server going away mid-request is expected here
            errors.append(type(e).__name__)
            time.sleep(0.01)
        i += 1


def test_sigterm_with_requests_in_flight_and_a_hung_modem_exits_0_within_10_s(
        tmp_path, db_url):
    with ModemSimulator(link=str(tmp_path / "modem")) as modem:
        config, port = write_config(tmp_path, db_url, None, at_device=modem.device)
        helpdesk(config, "init")
        log = open(tmp_path / "daemon.log", "w")
        process = start(config, log=log)
        try:
            wait_for(lambda: api(port, "/api/v1/health")[1]["modems"][0]["status"] == "up",
                     timeout=40, what="the modem to be up")
            modem.hang()
            seen = len(modem.log)
            # The next SIM read goes to the hung modem and waits there (the watchdog
            # would abort it only after 30 s).
            wait_for(lambda: any(kind == "<" for kind, _ in modem.log[seen:]), timeout=10,
                     what="a command sent to the hung modem")
            stop, answered, errors = threading.Event(), [], []
            clients = [threading.Thread(target=_hammer, args=(port, stop, answered, errors))
                       for _ in range(20)]
            for client in clients:
                client.start()
            wait_for(lambda: len(answered) > 100, timeout=20, what="the UI under load")
            started = time.monotonic()
            process.terminate()
            code = process.wait(timeout=15)
            took = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            stop_clients = locals().get("stop")
            if stop_clients is not None:
                stop_clients.set()
                for client in clients:
                    client.join(timeout=10)
            log.close()
    output = (tmp_path / "daemon.log").read_text()
    assert code == 0, output[-3000:]
    assert took < 10, f"the stop took {took:.1f} s\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
