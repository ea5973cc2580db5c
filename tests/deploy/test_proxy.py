"""Several UI processes behind HAProxy (proxy/haproxy.cfg), and X-Forwarded-* believed
only from `[web] trusted_proxies`.

The first tests drive the Flask app with a chosen peer address; the last runs the repo's
own HAProxy configuration (ports changed in a copy) in front of two real `helpdesk web`
processes on one database, and kills one of them in the middle of a session.
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import signal
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import ConfigError, parse
from gateway.db.models import AuditLog
from tests.conftest import CSRF_FIELD, PASSWORD
from tests.helpers import (
    HELPDESK,
    free_port,
    haproxy,
    haproxy_for_tests,
    helpdesk,
    stop,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
HAPROXY_CFG = REPO / "proxy" / "haproxy.cfg"
PROXY, CLIENT, FORGED = "10.1.2.3", "203.0.113.7", "198.51.100.66"


# -- [web] trusted_proxies ------------------------------------------------------------------
def test_trusted_proxies_default_to_none():
    assert parse({}).trusted_proxies == ()


def test_trusted_proxies_take_addresses_and_networks():
    config = parse({"web": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8", "::1"]}})
    assert config.trusted_proxies == ("127.0.0.1", "10.0.0.0/8", "::1")


@pytest.mark.parametrize("value, problem", [
    ("127.0.0.1", "must be a list"),
    (["localhost"], "'localhost' is neither"),
    (["10.0.0.0/33"], "'10.0.0.0/33' is neither"),
    ([8080], "8080 is neither"),
])
def test_trusted_proxies_mistakes_are_one_line(value, problem):
    with pytest.raises(ConfigError) as e:
        parse({"web": {"trusted_proxies": value}}, "shop.toml")
    message = str(e.value)
    assert message.startswith("shop.toml: web.trusted_proxies: ") and problem in message
    assert "\n" not in message


# -- the app behind a proxy, with the peer's address chosen ------------------------------------
@pytest.fixture
def client_from(config, sessionmaker, make_user):
    """A test client of the app trusting 10.0.0.0/8, its requests coming from `peer`."""
    from helpdesk_web import create_app
    from tests.conftest import SECRET_KEY

    make_user("ani")
    app = create_app(dataclasses.replace(config, trusted_proxies=("10.0.0.0/8",)),
                     sessionmaker, secret_key=SECRET_KEY, test_config={"TESTING": True})
    return lambda peer: from_peer(app.test_client(), peer)


def from_peer(client, peer):
    client.environ_base["REMOTE_ADDR"] = peer
    return client


def log_in(client, password=PASSWORD, headers=None):
    token = CSRF_FIELD.search(client.get("/login", headers=headers).get_data(as_text=True))
    return client.post("/login", headers=headers, data={
        "name": "ani", "password": password, "csrf_token": token.group(1)})


def login_addresses(db) -> list[str]:
    db.expire_all()
    rows = db.scalars(select(AuditLog).where(AuditLog.action == "login").order_by(AuditLog.id))
    return [json.loads(row.detail)["address"] for row in rows]


def test_forwarded_for_from_a_trusted_proxy_is_the_client(client_from, db):
    response = log_in(client_from(PROXY), headers={"X-Forwarded-For": CLIENT})
    assert response.status_code == 302
    assert login_addresses(db) == [CLIENT]


def test_forwarded_for_from_anyone_else_is_ignored(client_from, db):
    response = log_in(client_from("192.0.2.9"), headers={"X-Forwarded-For": FORGED})
    assert response.status_code == 302
    assert login_addresses(db) == ["192.0.2.9"]


def test_the_proxy_own_hop_counts_not_what_the_client_put_before_it(client_from, db):
    # A proxy that appends: "what the client claimed, what the proxy saw".
    log_in(client_from(PROXY), headers={"X-Forwarded-For": f"{FORGED}, {CLIENT}"})
    assert login_addresses(db) == [CLIENT]


@pytest.mark.parametrize("peer", ["192.0.2.9", PROXY])
def test_rotating_forwarded_for_does_not_dodge_the_lockout(client_from, peer):
    client = client_from(peer)
    for n in range(5):
        response = log_in(client, "wrong password",
                          headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
        assert response.status_code == 401
    response = log_in(client, headers={"X-Forwarded-For": "198.51.100.99"})
    assert response.status_code == 401, "the right password must wait out the lock"


def test_https_at_a_trusted_proxy_makes_the_cookie_secure(client_from):
    client = client_from(PROXY)
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "helpdesk.example",
               "Referer": "https://helpdesk.example/login"}
    response = log_in(client, headers=headers)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Secure" in cookie
    # The same page over plain HTTP from the proxy: no Secure flag.
    response = log_in(client_from(PROXY))
    assert response.status_code == 302 and "Secure" not in response.headers["Set-Cookie"]


def test_https_is_checked_against_the_forwarded_host(client_from):
    # Over HTTPS a form must come from a page of this very site (Flask-WTF's Referer check),
    # which needs the host and scheme the browser used, not the backend's.
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "helpdesk.example",
               "Referer": "https://evil.example/login"}
    assert log_in(client_from(PROXY), headers=headers).status_code == 400


def test_forwarded_proto_and_host_from_anyone_else_are_ignored(client_from):
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "helpdesk.example",
               "Referer": "https://evil.example/login"}
    response = log_in(client_from("192.0.2.9"), headers=headers)
    assert response.status_code == 302  # plain HTTP: no Referer check, no Secure cookie
    assert "Secure" not in response.headers["Set-Cookie"]


def test_without_trusted_proxies_no_header_is_believed(app, make_user, db):
    make_user("ani")
    client = from_peer(app.test_client(), "127.0.0.1")
    assert log_in(client, headers={"X-Forwarded-For": FORGED}).status_code == 302
    assert login_addresses(db) == ["127.0.0.1"]


# -- two real `helpdesk web` behind the repo's HAProxy configuration ----------------------------
def render_haproxy(tmp_path, listen: int, backends: list[int]) -> Path:
    """proxy/haproxy.cfg with the test's ports (tests/helpers.haproxy_for_tests)."""
    text = HAPROXY_CFG.read_text()
    text, binds = re.subn(r"(?m)^(\s*bind )\*:80$", rf"\g<1>127.0.0.1:{listen}", text)
    assert binds == 1, "proxy/haproxy.cfg: expected one `bind *:80`"
    for default, port in zip((8081, 8082), backends):
        text, n = re.subn(rf"(?m)^(\s*server web\d+ )127\.0\.0\.1:{default}$",
                          rf"\g<1>127.0.0.1:{port}", text)
        assert n == 1, f"proxy/haproxy.cfg: expected one server on 127.0.0.1:{default}"
    path = tmp_path / "haproxy.cfg"
    path.write_text(haproxy_for_tests(text))
    return path


@pytest.mark.parametrize("shipped", [HAPROXY_CFG, HAPROXY_CFG.with_name("haproxy-galera.cfg")],
                         ids=lambda p: p.name)
def test_the_shipped_configuration_is_valid(shipped):
    done = subprocess.run([haproxy(), "-c", "-f", str(shipped)], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


class Browser:
    """One operator's browser from its own loopback address: one session cookie."""

    def __init__(self, port: int, source: str = "127.0.0.5"):
        self.port, self.source, self.cookie = port, source, None

    def request(self, method, path, form=None, port=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=30,
                                          source_address=(self.source, 0))
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        cookie = response.getheader("Set-Cookie")
        if cookie and cookie.startswith("session=") and (port or self.port) == self.port:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, response.getheader("Location"), text

    def post(self, path, form, **kwargs):
        status, _, page = self.request("GET", "/", **kwargs)
        assert status == 200, page
        token = CSRF_FIELD.search(page).group(1)
        return self.request("POST", path, {**form, "csrf_token": token}, **kwargs)


def start_web(config: Path, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "a")
    try:
        return subprocess.Popen([HELPDESK, "--config", str(config), "web"],
                                env={**os.environ, "HELPDESK_LOG_LEVEL": "WARNING"},
                                stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def health(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/api/v1/health")
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.fixture
def cluster(tmp_path, db_url, engine):
    """HAProxy on the repo's configuration before two `helpdesk web` on one database and
    one secret file, both trusting the proxy at 127.0.0.1; yields what the test needs."""
    ports = [free_port(), free_port()]
    configs = []
    for n, port in enumerate(ports, 1):
        path = tmp_path / f"web{n}.toml"
        path.write_text(f"""
[database]
url = "{db_url}"
[web]
listen = "127.0.0.1:{port}"
secret_file = "{tmp_path}/session.key"
trusted_proxies = ["127.0.0.1"]
language = "en"
[agi]
secret_file = "{tmp_path}/agi.secret"
""")
        configs.append(path)
    helpdesk(configs[0], "init")
    helpdesk(configs[0], "user", "add", "ani", "--role", "operator", "--password-stdin",
             input=PASSWORD + "\n")
    webs = [start_web(path, tmp_path / f"web{n}.log") for n, path in enumerate(configs, 1)]
    listen = free_port()
    state = {"webs": webs, "ports": ports, "configs": configs, "listen": listen,
             "tmp": tmp_path}
    proxy = proxy_log = None
    try:
        for port in ports:
            wait_for(lambda port=port: health(port) == 200, timeout=60,
                     what=f"helpdesk web on {port}")
        # Started after the processes answer, HAProxy has both in the rotation at once.
        cfg = render_haproxy(tmp_path, listen, ports)
        checked = subprocess.run([haproxy(), "-c", "-f", str(cfg)], capture_output=True,
                                 text=True, timeout=30)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        proxy_log = open(tmp_path / "haproxy.log", "w")
        proxy = subprocess.Popen([haproxy(), "-db", "-f", str(cfg)], stdout=proxy_log,
                                 stderr=subprocess.STDOUT)
        wait_for(lambda: health(listen) == 200, what="haproxy to answer")
        yield state
    finally:
        if proxy is not None:
            proxy.send_signal(signal.SIGUSR1)  # HAProxy's graceful stop
            try:
                proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait()
        if proxy_log is not None:
            proxy_log.close()
        for web in state["webs"]:
            if web.poll() is None:
                stop(web)


def served_by(tmp_path, request_line: str) -> set[str]:
    """The processes HAProxy's log says answered `request_line` with a 200."""
    log = (tmp_path / "haproxy.log").read_text()
    return set(re.findall(rf"helpdesk_web/(web\d) \S+ 200 .*\"{re.escape(request_line)} ", log))


def figures(browser: Browser) -> dict:
    status, _, body = browser.request("GET", "/dashboard.json",
                                      headers={"Accept": "application/json"})
    assert status == 200, body
    return json.loads(body)["figures"]


def test_two_ui_processes_behind_haproxy_one_killed_mid_session(cluster):
    listen, ports = cluster["listen"], cluster["ports"]
    ani = Browser(listen)
    status, _, page = ani.request("GET", "/login")
    assert status == 200
    token = CSRF_FIELD.search(page).group(1)
    status, location, _ = ani.request("POST", "/login", {"name": "ani", "password": PASSWORD,
                                                         "csrf_token": token})
    assert status == 302 and location == "/", "the login through the proxy"
    session = ani.cookie

    # One session, good on every process: no sticky sessions needed.
    for port in ports:
        status, _, page = ani.request("GET", "/", port=port)
        assert status == 200 and "ani (operator)" in page, f"the session on {port}"
    for _ in range(4):
        status, _, page = ani.request("GET", "/tickets")
        assert status == 200 and "ani (operator)" in page
    # Round robin: both processes answered the session through the proxy.
    wait_for(lambda: served_by(cluster["tmp"], "GET /tickets") == {"web1", "web2"},
             what="both processes in haproxy.log")

    # The dashboard's live figures through the proxy: a text queued now is in the next
    # poll, whichever process answers it.
    status, _, page = ani.request("GET", "/")
    assert 'data-dashboard="/dashboard.json"' in page and "dashboard.js" in page
    queued = int(figures(ani)["outbox.queued"])
    helpdesk(cluster["configs"][0], "sms", "send", "081234567890", "Pesanan sudah dikirim")
    for _ in range(2):
        assert int(figures(ani)["outbox.queued"]) == queued + 1

    # One process dies in the middle of the session; the next requests go to the other.
    cluster["webs"][0].kill()
    cluster["webs"][0].wait()
    for _ in range(6):
        status, _, page = ani.request("GET", "/tickets")
        assert status == 200 and "ani (operator)" in page, "a request after the kill"
        assert int(figures(ani)["outbox.queued"]) == queued + 1
    # HAProxy's log shows it: requests sent to the dead process were sent again to the
    # other (the retries field "+1" of its log line: redispatched).
    wait_for(lambda: re.search(r" \d+/\d+/\d+/\d+/\+\d+ .*GET /tickets",
                               (cluster["tmp"] / "haproxy.log").read_text()),
             what="a redispatched request in haproxy.log")
    # (The cookie may have been re-signed meanwhile, e.g. with a CSRF token in it: the
    # same session; both copies are replayed after the logout.)
    cookies = {session, ani.cookie}

    # It comes back: the same session is good on the new process too.
    cluster["webs"][0] = start_web(cluster["configs"][0], cluster["tmp"] / "web1.log")
    wait_for(lambda: health(ports[0]) == 200, timeout=60, what="helpdesk web again")
    status, _, page = ani.request("GET", "/", port=ports[0])
    assert status == 200 and "ani (operator)" in page

    # Logout through the proxy ends the session on the server: the old cookie is refused
    # by both processes.
    status, location, _ = ani.post("/logout", {})
    assert status == 302 and location.startswith("/login")
    if ani.cookie != "session=":  # the logout's answer empties the cookie
        cookies.add(ani.cookie)
    replay = Browser(listen)
    for replay.cookie in cookies:
        for port in (*ports, listen):
            status, location, _ = replay.request("GET", "/", port=port)
            assert status == 302 and location.startswith("/login"), f"an old cookie on {port}"


def test_login_addresses_behind_haproxy(cluster, db):
    """The audit row of a login has the browser's address, which only the proxy's
    X-Forwarded-For tells the UI process; one the browser forged counts for nothing,
    through the proxy (which replaces it) or straight to a process (not a proxy)."""
    ani = Browser(cluster["listen"], source="127.0.0.5")
    status, _, page = ani.request("GET", "/login", headers={"X-Forwarded-For": FORGED})
    token = CSRF_FIELD.search(page).group(1)
    status, _, _ = ani.request("POST", "/login", {"name": "ani", "password": PASSWORD,
                                                  "csrf_token": token},
                               headers={"X-Forwarded-For": FORGED})
    assert status == 302
    direct = Browser(cluster["ports"][1], source="127.0.0.7")  # a process, not the proxy
    status, _, page = direct.request("GET", "/login")
    token = CSRF_FIELD.search(page).group(1)
    status, _, _ = direct.request("POST", "/login", {"name": "ani", "password": PASSWORD,
                                                     "csrf_token": token},
                                  headers={"X-Forwarded-For": FORGED})
    assert status == 302
    assert login_addresses(db) == ["127.0.0.5", "127.0.0.7"]
