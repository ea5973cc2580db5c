"""Running the real `helpdesk` command in tests: a config file, the daemon, the API."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HELPDESK = str(Path(sys.executable).with_name("helpdesk"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp_path, db_url, modem_dir, extra="", at_device=None) -> tuple[Path, int]:
    """A config with one modem: Gammu's dummy driver in `modem_dir`, or libGammu's AT
    driver on `at_device` (the simulator's pty)."""
    if at_device:
        modem = f'connection = "at"\ndevice = "{at_device}"'
    else:
        modem = f'connection = "none"\nmodel = "dummy"\ndevice = "{modem_dir}"'
    port = free_port()
    path = tmp_path / "helpdesk.toml"
    path.write_text(f"""
[database]
url = "{db_url}"
[web]
listen = "127.0.0.1:{port}"
secret_file = "{tmp_path}/session.key"
[agi]
listen = "127.0.0.1:{free_port()}"
secret_file = "{tmp_path}/agi.secret"
[sms]
{extra}
[[modem]]
name = "modem1"
{modem}
""")
    return path, port


def helpdesk(config, *args, env=None, input=None, check=True):
    return subprocess.run([HELPDESK, "--config", str(config), *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, input=input,
                          check=check, timeout=60)


def start(config, env=None, log=None):
    return subprocess.Popen([HELPDESK, "--config", str(config), "run"],
                            env={**os.environ, "HELPDESK_LOG_LEVEL": "WARNING", **(env or {})},
                            stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT)


def stop(process, timeout=30) -> int:
    """SIGTERM and wait; a daemon that does not stop is killed (no orphan) and fails."""
    process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"the daemon did not stop within {timeout} s of SIGTERM") from None


def api(port, path, token=None, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     data=json.dumps(body).encode() if body else None,
                                     method="POST" if body else "GET")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_for(predicate, timeout=20.0, interval=0.05, what="condition"):
    """Poll until predicate() is truthy; real processes need real waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ConnectionError):
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def screenshot(browser, name: str) -> None:
    """The README shows these: docs/screenshots/<name>.png, at a thin client's 1280x800."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, 800)
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def page(response) -> str:
    """A Flask test response's body as text."""
    return response.get_data(as_text=True)


def haproxy() -> str:
    """HAProxy's binary; the test fails, never skips, without it."""
    import pytest

    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if not found:
        pytest.fail("haproxy is missing: run `sh tests/system-deps.sh test` (as root it "
                    "installs it; `make test` runs it first)", pytrace=False)
    return found


def haproxy_for_tests(text: str) -> str:
    """A shipped HAProxy configuration logging to its stderr; as a non-root user without
    the chroot and user switch, which need root. Everything else as shipped."""
    text = re.sub(r"(?m)^\s*log /dev/log.*\n", "", text)
    text = text.replace("global\n", "global\n    log stderr format raw local0 info\n", 1)
    if os.geteuid() != 0:
        text = re.sub(r"(?m)^\s*(chroot|user|group) .*\n", "", text)
    return text

