"""A real three-node MariaDB Galera cluster on loopback, for tests: Debian's mariadb-server
and galera-4 (tests/system-deps.sh installs them), each node with its own datadir,
socket and ports under one temporary directory, rsync SST, mysqld as the mysql user when
the tests run as root. The machine's own MariaDB (3306) is left alone.

    with GaleraCluster(3) as cluster:
        cluster.url(0)   # mysql+pymysql://helpdesk@127.0.0.1:PORT/helpdesk on node 0
        cluster.kill(2)  # SIGKILL one node; the other two keep the quorum
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql
from helpers import free_port

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
MARIADBD = shutil.which("mariadbd", path="/usr/sbin:/usr/bin") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db", path="/usr/bin:/usr/sbin") or \
    "/usr/bin/mariadb-install-db"
DATABASE, USER = "helpdesk", "helpdesk"


class GaleraError(RuntimeError):
    pass


def missing() -> str | None:
    """What the cluster lacks on this machine, as a sentence, or None."""
    for path, package in ((PROVIDER, "galera-4"), (MARIADBD, "mariadb-server"),
                          (INSTALL_DB, "mariadb-server"), (shutil.which("rsync"), "rsync"),
                          (shutil.which("wsrep_sst_rsync"), "mariadb-server")):
        if not path or not os.path.exists(path):
            return (f"{path or package} is missing: apt-get install galera-4 mariadb-server "
                    "rsync (tests/system-deps.sh does it for make test)")
    return None


class Node:
    def __init__(self, base: Path, index: int):
        self.index = index
        self.dir = base / f"node{index}"
        self.datadir = self.dir / "data"
        self.socket = self.dir / "mysqld.sock"
        self.port, self.gcomm, self.ist, self.sst = (free_port() for _ in range(4))
        self.process: subprocess.Popen | None = None

    @property
    def error_log(self) -> Path:
        return self.dir / "error.log"


class GaleraCluster:
    def __init__(self, size: int = 3, boot_timeout: float = 120.0):
        problem = missing()
        if problem:
            raise GaleraError(problem)  # fails, never skips: CI must run this
        self.size, self.boot_timeout = size, boot_timeout
        # Not under pytest's tmp_path: its parents are 0700 and mysqld runs as mysql.
        self.base = Path(tempfile.mkdtemp(prefix="helpdesk-galera-"))
        os.chmod(self.base, 0o755)
        self.nodes = [Node(self.base, i) for i in range(size)]
        self.as_root = os.geteuid() == 0
        self.user = "mysql" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name

    # -- life cycle ------------------------------------------------------------------------
    def __enter__(self) -> GaleraCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self) -> None:
        for node in self.nodes:
            node.datadir.mkdir(parents=True)
            self._write_cnf(node)
        if self.as_root:
            shutil.chown(self.base, "mysql", "mysql")
            for path in self.base.rglob("*"):
                shutil.chown(path, "mysql", "mysql")
        first = self.nodes[0]
        self._run([INSTALL_DB, f"--defaults-file={self._cnf(first)}", f"--user={self.user}",
                   "--auth-root-authentication-method=normal", "--skip-test-db"],
                  "mariadb-install-db")
        self._spawn(first, "--wsrep-new-cluster")
        self._wait_ready(first, 1)
        with self.root(0) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_unicode_ci")
            cur.execute(f"CREATE USER '{USER}'@'127.0.0.1'")
            cur.execute(f"GRANT ALL ON {DATABASE}.* TO '{USER}'@'127.0.0.1'")
        for node in self.nodes[1:]:  # one joiner at a time: each takes a full rsync SST
            self._spawn(node)
            self._wait_ready(node, node.index + 1)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()
        shutil.rmtree(self.base, ignore_errors=True)

    def kill(self, index: int) -> None:
        """SIGKILL one node, as a power cut would."""
        process = self.nodes[index].process
        process.send_signal(signal.SIGKILL)
        process.wait()

    # -- access ----------------------------------------------------------------------------
    def url(self, index: int) -> str:
        return f"mysql+pymysql://{USER}@127.0.0.1:{self.nodes[index].port}/{DATABASE}"

    def root(self, index: int):
        """root over the node's own socket (no password: reachable by no port)."""
        return pymysql.connect(unix_socket=str(self.nodes[index].socket), user="root",
                               autocommit=True)

    def status(self, index: int, name: str) -> str | None:
        with pymysql.connect(host="127.0.0.1", port=self.nodes[index].port, user=USER,
                             autocommit=True, connect_timeout=2) as conn, \
                conn.cursor() as cur:
            cur.execute("SHOW STATUS LIKE %s", (name,))
            row = cur.fetchone()
        return row[1] if row else None

    # -- helpers ---------------------------------------------------------------------------
    def _cnf(self, node: Node) -> Path:
        return node.dir / "my.cnf"

    def _write_cnf(self, node: Node) -> None:
        peers = ",".join(f"127.0.0.1:{n.gcomm}" for n in self.nodes)
        options = (f"gmcast.listen_addr=tcp://127.0.0.1:{node.gcomm};"
                   f"ist.recv_addr=127.0.0.1:{node.ist};gcache.size=64M;"
                   "evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S")
        self._cnf(node).write_text(f"""[mysqld]
user = {self.user}
datadir = {node.datadir}
socket = {node.socket}
pid-file = {node.dir}/mysqld.pid
log-error = {node.error_log}
port = {node.port}
bind-address = 127.0.0.1
skip-name-resolve
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
innodb_buffer_pool_size = 64M
innodb_flush_log_at_trx_commit = 2
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
wsrep_on = ON
wsrep_provider = {PROVIDER}
wsrep_cluster_name = helpdesk_test_{os.getpid()}
wsrep_cluster_address = gcomm://{peers}
wsrep_node_name = node{node.index}
wsrep_node_address = 127.0.0.1:{node.gcomm}
wsrep_provider_options = "{options}"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:{node.sst}
wsrep_slave_threads = 2
""")

    def _run(self, argv, what) -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise GaleraError(f"{what} failed ({result.returncode}): "
                              f"{(result.stderr or result.stdout)[-2000:]}")

    def _spawn(self, node: Node, *extra) -> None:
        env = {**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", "")}
        node.process = subprocess.Popen(
            [MARIADBD, f"--defaults-file={self._cnf(node)}", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    def _wait_ready(self, node: Node, cluster_size: int) -> None:
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise GaleraError(f"node {node.index} exited ({node.process.returncode}):\n"
                                  + self._log_tail(node))
            try:
                with self.root(node.index) as conn, conn.cursor() as cur:
                    cur.execute("SHOW STATUS WHERE Variable_name IN "
                                "('wsrep_ready', 'wsrep_cluster_size')")
                    status = dict(cur.fetchall())
                if status.get("wsrep_ready") == "ON" \
                        and int(status.get("wsrep_cluster_size", 0)) >= cluster_size:
                    return
            except pymysql.err.Error:
                pass  # still starting, or receiving its state transfer
            time.sleep(0.3)
        raise GaleraError(f"node {node.index} not ready after {self.boot_timeout} s:\n"
                          + self._log_tail(node))

    def _log_tail(self, node: Node) -> str:
        try:
            return node.error_log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no error log)"
