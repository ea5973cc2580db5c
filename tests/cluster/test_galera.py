"""Rule 6 on a real MariaDB Galera cluster: three gateway hosts (three `helpdesk run`
processes, each on its own node with its own simulated modem) share one outbox; a host
dies, then a database node; every text goes out once or is marked `unknown`, never
twice. And a double click reaching two UI processes on two nodes confirms a payment once.

The cluster boots in about 45 s (tests/cluster/galera.py); the figures this test prints
(with -s) are in docs/scaling.md."""
from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from galera import GaleraCluster
from helpers import (
    HELPDESK,
    api,
    free_port,
    haproxy,
    haproxy_for_tests,
    helpdesk,
    start,
    wait_for,
)
from sqlalchemy import func, select, update

from gateway.db.engine import make_engine, make_sessionmaker
from gateway.db.models import (
    Contact,
    Message,
    Modem,
    Order,
    OrderItem,
    Payment,
    Product,
    Ticket,
    utcnow,
)

# 3,000 in `make test`; fewer only to try a change quickly on a loaded machine.
TEXTS = int(os.environ.get("HELPDESK_GALERA_TEXTS", "3000"))
LEASE = 10  # seconds: [sms] claim_lease of every host here
HOSTS = ("gw-a", "gw-b", "gw-c")
RECIPIENT = re.compile(r'Recipient number "(\+\d+)"')
CONFLICT = "database conflict in"
GALERA_PROXY_CFG = Path(__file__).resolve().parents[2] / "proxy" / "haproxy-galera.cfg"


@pytest.fixture(scope="module")
def cluster():
    with GaleraCluster(3) as cluster:
        yield cluster


def host_config(base, cluster, index: int, node: str, lease=LEASE, url=None):
    """A gateway host on cluster node `index` (or at `url`), with its own dummy modem
    whose libGammu debug log records every text it was handed (the dummy driver keeps no
    copy)."""
    directory = base / node
    (directory / "modem" / "sms" / "1").mkdir(parents=True, exist_ok=True)
    port = free_port()
    path = directory / "helpdesk.toml"
    path.write_text(f"""
[database]
url = "{url or cluster.url(index)}"
[web]
listen = "127.0.0.1:{port}"
secret_file = "{directory}/session.key"
[agi]
listen = "127.0.0.1:{free_port()}"
secret_file = "{directory}/agi.secret"
[sms]
node = "{node}"
claim_lease = {lease}
poll_interval = 2  # no texts come in here: the modem's thread is for sending
[[modem]]
name = "modem_{node[-1]}"
connection = "none"
model = "dummy"
device = "{directory}/modem"
logfile = "{directory}/gammu.log"
logformat = "text"
""")
    return path, port


def sent_numbers(base) -> collections.Counter:
    """Every number a modem was handed a text for, over all hosts, with how often."""
    counts = collections.Counter()
    for node in HOSTS:
        log = base / node / "gammu.log"
        if log.exists():
            counts.update(RECIPIENT.findall(log.read_text(errors="replace")))
    return counts


def conflicts(base, names) -> dict[str, int]:
    found = {}
    for name in names:
        log = base / name / "daemon.log"
        found[name] = log.read_text(errors="replace").count(CONFLICT) if log.exists() else 0
    return found


def post(port, path, token, body):
    """helpers.api with a long timeout: a request that timed out may have been committed,
    so it can be neither retried nor counted as refused."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()[:500]


def galera_proxy(base, cluster, order: list[int]):
    """proxy/haproxy-galera.cfg on a free port, its servers the cluster's nodes in
    `order` (the first takes the writes, the others are backups); (process, url)."""
    text = GALERA_PROXY_CFG.read_text()
    listen = free_port()
    text, n = re.subn(r"(?m)^(\s*bind )127\.0\.0\.1:3307$", rf"\g<1>127.0.0.1:{listen}", text)
    assert n == 1, "proxy/haproxy-galera.cfg: expected one `bind 127.0.0.1:3307`"
    servers = re.findall(r"(?m)^\s*server node\d+ \S+:3306.*$", text)
    assert len(servers) == len(order), "proxy/haproxy-galera.cfg: one server per node"
    for line, index in zip(servers, order, strict=True):
        port = cluster.url(index).split("@127.0.0.1:", 1)[1].split("/", 1)[0]
        text = text.replace(line, re.sub(r"\S+:3306", f"127.0.0.1:{port}", line), 1)
    path = base / "haproxy-galera.cfg"
    path.write_text(haproxy_for_tests(text))
    checked = subprocess.run([haproxy(), "-c", "-f", str(path)], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = open(base / "haproxy.log", "w")  # noqa: SIM115 (the process keeps it)
    process = subprocess.Popen([haproxy(), "-db", "-f", str(path)], stdout=log,
                               stderr=subprocess.STDOUT)
    url = re.sub(r"@127\.0\.0\.1:\d+/", f"@127.0.0.1:{listen}/", cluster.url(order[0]))
    return process, url


def token(config) -> str:
    return helpdesk(config, "token", "create", "cluster-test").stdout.strip().splitlines()[-1]


def halt(process, timeout=30) -> None:
    """SIGTERM, and SIGKILL after `timeout`: a host whose database node is gone may wait
    on a connection that will never answer."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_double_click_on_two_nodes_confirms_a_payment_once(cluster, tmp_path):
    configs = [host_config(tmp_path, cluster, i, f"gw-{x}") for i, x in ((0, "a"), (1, "b"))]
    helpdesk(configs[0][0], "init")
    helpdesk(configs[1][0], "init")  # its own secrets; the schema is there already
    key = token(configs[0][0])
    sessions = make_sessionmaker(make_engine(cluster.url(0)))
    with sessions.begin() as s:
        product = Product(code="XL25", name="XL 25GB", price=25500, stock=1000, active=True)
        s.add(product)
        s.flush()
        ids = []
        for i in range(20):
            contact = Contact(phone=f"+62813{i:08d}", name=f"Pelanggan {i}")
            s.add(contact)
            s.flush()
            ticket = Ticket(kind="order", status="pending", contact_id=contact.id,
                            created_at=utcnow())
            s.add(ticket)
            s.flush()
            total = 51000 + i + 1
            order = Order(contact_id=contact.id, ticket_id=ticket.id, status="awaiting_payment",
                          unique_code=i + 1, total=total, open_total=total, created_at=utcnow())
            order.items.append(OrderItem(product_id=product.id, code="XL25", quantity=2,
                                         unit_price=25500))
            s.add(order)
            s.flush()
            payment = Payment(contact_id=contact.id, order_id=order.id, amount=total,
                              bank="BCA", payer_name="Budi", status="unverified",
                              created_at=utcnow())
            s.add(payment)
            s.flush()
            ids.append((payment.id, order.id))
        product_id = product.id
    webs = []
    for config, _port in configs:
        log = open(config.parent / "daemon.log", "w")  # noqa: SIM115 (closed with the process)
        webs.append((subprocess.Popen([HELPDESK, "--config", str(config), "web"],
                                      env={**os.environ, "HELPDESK_LOG_LEVEL": "WARNING"},
                                      stdout=log, stderr=subprocess.STDOUT), log))
    try:
        for _config, port in configs:
            wait_for(lambda p=port: api(p, "/api/v1/health")[0] in (200, 503), timeout=60,
                     what="the UI to answer")
        answers = {}
        for payment_id, order_id in ids:  # two requests at once, one to each UI process
            barrier = threading.Barrier(2)
            got = []

            def click(port, payment_id=payment_id, order_id=order_id, barrier=barrier, got=got):
                barrier.wait()
                got.append(post(port, f"/api/v1/payments/{payment_id}/confirm", key,
                                {"order_id": order_id})[0])
            clicks = [threading.Thread(target=click, args=(port,)) for _c, port in configs]
            for t in clicks:
                t.start()
            for t in clicks:
                t.join()
            answers[payment_id] = sorted(got)
    finally:
        for process, log in webs:
            halt(process)
            log.close()
    retried = conflicts(tmp_path, ("gw-a", "gw-b"))
    print(f"\npayment double clicks on two nodes: {sum(retried.values())} conflicts retried "
          f"{retried}; answers {collections.Counter(tuple(a) for a in answers.values())}")
    assert all(a == [200, 409] for a in answers.values()), answers  # never a 500
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Payment)
                        .where(Payment.status == "confirmed")) == len(ids)
        assert s.get(Product, product_id).stock == 1000 - 2 * len(ids)  # taken once each
        told = s.execute(select(Message.number, func.count()).where(Message.direction == "out")
                         .group_by(Message.number)).all()
    assert len(told) == len(ids) and all(count == 1 for _n, count in told)  # one SMS each


def test_three_hosts_share_the_outbox_through_a_host_and_a_node_dying(cluster, tmp_path):
    # gw-c reaches the cluster through HAProxy (proxy/haproxy-galera.cfg): node 2 first,
    # nodes 0 and 1 as backups; the others each straight to their own node.
    proxy, c_url = galera_proxy(tmp_path, cluster, [2, 0, 1])
    hosts = {node: host_config(tmp_path, cluster, i, node, url=c_url if node == "gw-c" else None)
             for i, node in enumerate(HOSTS)}
    for config, _port in hosts.values():
        helpdesk(config, "init")  # the schema once (it is there after the first), secrets each
    key = token(hosts["gw-a"][0])
    sessions = make_sessionmaker(make_engine(cluster.url(0)))
    with sessions.begin() as s:  # the first test's replies are not this test's business
        s.execute(update(Message).where(Message.status == "queued").values(status="failed"))
        first_id = s.scalar(select(func.coalesce(func.max(Message.id), 0)))
    processes, logs = {}, []
    for node, (config, _port) in hosts.items():
        log = open(config.parent / "daemon.log", "w")  # noqa: SIM115 (closed at the end)
        logs.append(log)
        processes[node] = start(config, env={"HELPDESK_LOG_LEVEL": "INFO"}, log=log)
    try:
        for node, (_config, port) in hosts.items():
            wait_for(lambda p=port: api(p, "/api/v1/health")[1]["modems"][0]["status"] == "up",
                     timeout=90, what=f"{node}'s modem to be up")
        # Each UI shows its own host's modem, written by that host.
        for node, (_config, port) in hosts.items():
            [modem] = api(port, "/api/v1/health")[1]["modems"]
            assert (modem["name"], modem["host"]) == (f"modem_{node[-1]}", node)

        started = time.monotonic()
        samples = []  # (seconds, texts handed to a modem), until gw-b dies
        sampling = threading.Event()

        def sample():
            while not sampling.wait(0.5):
                samples.append((time.monotonic() - started, sum(sent_numbers(tmp_path).values())))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        refused = []

        def queue(port, numbers):
            for i in numbers:
                status, body = post(port, "/api/v1/messages", key,
                                    {"to": f"+6281234{i:06d}", "text": f"Promo kluster {i}"})
                if status != 202:
                    refused.append((i, status, body))
        # Four clients per UI process, each its own share of the numbers.
        ports = [port for _config, port in hosts.values()]
        queuers = [threading.Thread(target=queue, args=(ports[n % 3], range(n, TEXTS, 12)))
                   for n in range(12)]
        for t in queuers:
            t.start()
        for t in queuers:
            t.join()
        queued_at = time.monotonic() - started
        assert not refused, refused[:5]

        def handed(at_least):
            return sum(sent_numbers(tmp_path).values()) >= at_least
        wait_for(lambda: handed(TEXTS // 4), timeout=900, interval=0.2,
                 what="a quarter of the texts to go out")

        # 1. host gw-b dies (SIGKILL): its texts in flight stay `sending` until its lease
        # runs out, then the others mark them `unknown` and share its part of the queue.
        a_log = tmp_path / "gw-a" / "daemon.log"
        a_seen = len(a_log.read_text())
        processes["gw-b"].kill()
        processes["gw-b"].wait()
        b_killed, b_killed_at = utcnow(), time.monotonic()
        sampling.set()
        with sessions() as s:
            left = s.scalar(select(func.count()).select_from(Message)
                            .where(Message.status == "queued"))
            b_sending = s.scalar(select(func.count()).select_from(Message).where(
                Message.status == "sending", Message.claimed_by == "gw-b"))
        assert left > TEXTS // 4, "the kill must come while much of the outbox is queued"
        three_hosts = [(t, n) for t, n in samples if n >= TEXTS // 30]  # past the start
        rate = ((three_hosts[-1][1] - three_hosts[0][1])
                / max(0.001, three_hosts[-1][0] - three_hosts[0][0])) if len(three_hosts) > 1 \
            else float("nan")

        def b_taken_over():
            with sessions() as s:
                return not s.scalar(select(func.count()).select_from(Message).where(
                    Message.status == "sending", Message.claimed_by == "gw-b")) and \
                    "2 gateway host(s) share the outbox" in a_log.read_text()[a_seen:]
        wait_for(b_taken_over, timeout=LEASE * 6, interval=0.2, what="gw-b's lease to run out")
        takeover = time.monotonic() - b_killed_at

        def queued_at_most(count):  # the database's count: the modems' logs lag behind
            with sessions() as s:
                return s.scalar(select(func.count()).select_from(Message)
                                .where(Message.status == "queued")) <= count
        wait_for(lambda: queued_at_most(TEXTS // 3), timeout=900, interval=0.1,
                 what="two thirds of the texts to be claimed")
        # 2. database node 2 dies under gw-c: HAProxy cuts gw-c's connections and sends
        # the next ones to node 0; gw-c records what it had sent when the database
        # answers again, and goes on sending.
        cluster.kill(2)
        node_killed = utcnow()
        with sessions() as s:
            left_at_node_kill = s.scalar(select(func.count()).select_from(Message)
                                         .where(Message.status == "queued"))
        assert left_at_node_kill > 0, "the node must die while texts are queued"

        def done():
            with sessions() as s:
                return not s.scalar(select(func.count()).select_from(Message).where(
                    Message.status.in_(("queued", "sending"))))
        wait_for(done, timeout=1200, interval=0.5, what="the outbox to drain")
        drained = time.monotonic() - started

        # Each modem's health is its own host's: gw-a's and gw-c's (through the proxy,
        # on node 0 now) say their modems are up; nobody wrote modem_b after gw-b died.
        for node in ("gw-a", "gw-c"):
            status, body = api(hosts[node][1], "/api/v1/health")
            assert status == 200 and [(m["name"], m["host"], m["status"])
                                      for m in body["modems"]] == [
                                          (f"modem_{node[-1]}", node, "up")], body
    finally:
        halt(proxy)
        for process in processes.values():
            halt(process)
        for log in logs:
            log.close()

    with sessions() as s:
        rows = s.execute(select(Message.number, Message.status, Message.claimed_by,
                                Message.claimed_at, Message.last_error)
                         .where(Message.direction == "out", Message.id > first_id)).all()
        modems = {m.name: m for m in s.scalars(select(Modem))}
    counts = sent_numbers(tmp_path)
    statuses = collections.Counter(r.status for r in rows)
    # (claimed_at holds whole seconds on MariaDB)
    c_after = sorted(r.claimed_at for r in rows if r.claimed_by == "gw-c" and r.claimed_at
                     and r.claimed_at > node_killed + dt.timedelta(seconds=1))
    c_back = (c_after[0] - node_killed).total_seconds() if c_after else float("nan")
    retried = conflicts(tmp_path, HOSTS)
    print(f"\ngalera outbox: {TEXTS} texts queued through 3 UIs in {queued_at:.1f} s; "
          f"3 hosts sent {rate:.0f} texts/s; gw-b killed with {left} queued and {b_sending} "
          f"sending, taken over after {takeover:.1f} s (lease {LEASE} s); node 2 killed with "
          f"{left_at_node_kill} queued, gw-c claiming again through HAProxy {c_back:.0f} s "
          f"later ({len(c_after)} texts); drained {drained:.1f} s after the first text was "
          f"queued; statuses {dict(statuses)}; conflicts retried {retried}")
    assert c_after, "gw-c must go on through the proxy after its node died"

    assert len(rows) == TEXTS
    assert set(statuses) <= {"sent", "unknown"}, statuses
    assert max(counts.values()) == 1, [n for n, c in counts.items() if c > 1][:10]  # never twice
    assert set(counts) <= {r.number for r in rows}
    for row in rows:
        if row.status == "sent":
            assert counts[row.number] == 1, row  # a text recorded sent went out
    # gw-b's texts in flight became unknown, not sent again; the queue it would have
    # served was sent by the survivors after it died.
    assert not [r for r in rows if r.claimed_by == "gw-b" and r.status == "sending"]
    assert all("gw-b stopped answering" in r.last_error for r in rows
               if r.claimed_by == "gw-b" and r.status == "unknown")
    after = [r for r in rows if r.claimed_at and r.claimed_at > b_killed + dt.timedelta(seconds=1)]
    assert after and {r.claimed_by for r in after} <= {"gw-a", "gw-c"}
    # Nobody but gw-b wrote modem_b's health, and none after it died.
    assert modems["modem_b"].host == "gw-b"
    assert modems["modem_b"].last_seen is None or modems["modem_b"].last_seen <= b_killed
    assert (modems["modem_a"].host, modems["modem_c"].host) == ("gw-a", "gw-c")
