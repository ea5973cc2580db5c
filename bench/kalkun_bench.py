"""How long `helpdesk import kalkun` takes for 100,000 Kalkun rows, and its peak memory.

    .venv/bin/python bench/kalkun_bench.py [--rows N] [--target URL] [--server URL|none]

Makes a Gammu SMSD database (schema 17 from Debian's gammu-smsd,
/usr/share/doc/gammu-smsd/examples/mysql.sql) with Kalkun's phonebook tables on the
MariaDB server (--server, default root@127.0.0.1:3306, database
helpdesk_kalkun_src_bench, dropped at the end), fills it with N rows (default 100,000):
5% phonebook entries, 5% group memberships, 59% inbox (a tenth of the texts in two
parts), 30% sentitems, 1% outbox. Then runs the real command, `helpdesk import
kalkun --from ...`, as a child process into a new SQLite database (or --target, an
empty helpdesk database), twice: the first run imports everything, the second finds it
all there. Prints wall time, rows per second and each run's peak RSS (its ru_maxrss).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

REPO = Path(__file__).resolve().parents[1]
HELPDESK = REPO / ".venv" / "bin" / "helpdesk"
GAMMU_SQL = Path("/usr/share/doc/gammu-smsd/examples/mysql.sql")
SOURCE_DB = "helpdesk_kalkun_src_bench"
PHONEBOOK = """
CREATE TABLE pbk (ID integer NOT NULL auto_increment, GroupID integer NOT NULL default -1,
  Name text NOT NULL, Number text NOT NULL, id_user int NOT NULL,
  is_public enum('true','false') NOT NULL DEFAULT 'false', PRIMARY KEY (ID));
CREATE TABLE pbk_groups (Name text NOT NULL, ID integer NOT NULL auto_increment,
  id_user int NOT NULL, is_public enum('true','false') NOT NULL DEFAULT 'false',
  PRIMARY KEY (ID));
CREATE TABLE user_group (id_group int NOT NULL AUTO_INCREMENT, id_pbk int NOT NULL,
  id_pbk_groups int NOT NULL, id_user int NOT NULL, PRIMARY KEY (id_group))
"""
WORDS = ("pesanan", "sudah", "transfer", "kak", "mohon", "dicek", "barang", "belum",
         "sampai", "terima", "kasih", "pulsa", "BCA", "ongkir", "stok", "ready")


def statements(sql: str) -> list[str]:
    sql = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", sql + "\n") if s.strip()]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def fill(engine, rows: int) -> dict:
    rng = random.Random(13)
    pbk, members = rows * 5 // 100, rows * 5 // 100
    inbox_rows, sent_rows = rows * 59 // 100, rows * 30 // 100
    outbox_rows = rows - pbk - members - inbox_rows - sent_rows
    people = [f"0812{n:08d}" for n in range(pbk * 8 // 5)]  # some text without a pbk entry
    start = dt.datetime(2023, 1, 1)

    def many(conn, sql, batch):
        if batch:
            conn.execute(text(sql), batch)

    with engine.begin() as conn:
        many(conn, "INSERT INTO pbk_groups (ID, Name, id_user) VALUES (:i, :n, 1)",
             [{"i": i, "n": f"Grup {i}"} for i in range(1, 21)])
        many(conn, "INSERT INTO pbk (ID, GroupID, Name, Number, id_user) VALUES "
             "(:i, :g, :n, :num, 1)",
             [{"i": i + 1, "g": rng.choice((-1, 1, 2)), "n": f"Pelanggan {i}",
               "num": people[i]} for i in range(pbk)])
        many(conn, "INSERT INTO user_group (id_pbk, id_pbk_groups, id_user) VALUES (:p, :g, 1)",
             [{"p": rng.randint(1, pbk), "g": rng.randint(1, 20)} for _ in range(members)])
        inbox, ident, at = [], 0, start
        while ident < inbox_rows:
            at += dt.timedelta(seconds=rng.randint(30, 600))
            sender = rng.choice(people)
            parts = 2 if rng.random() < 0.1 and ident + 2 <= inbox_rows else 1
            ref = rng.randint(0, 255)
            for part in range(1, parts + 1):
                ident += 1
                inbox.append({"i": ident, "at": at, "s": sender, "t": sentence(rng, 12),
                              "u": f"050003{ref:02X}{parts:02X}{part:02X}" if parts > 1 else ""})
            if len(inbox) >= 5000:
                many(conn, "INSERT INTO inbox (ID, ReceivingDateTime, SenderNumber, TextDecoded, "
                     "UDH, Text, RecipientID) VALUES (:i, :at, :s, :t, :u, '', 'k')", inbox)
                inbox = []
        many(conn, "INSERT INTO inbox (ID, ReceivingDateTime, SenderNumber, TextDecoded, UDH, "
             "Text, RecipientID) VALUES (:i, :at, :s, :t, :u, '', 'k')", inbox)
        statuses = ("SendingOKNoReport",) * 6 + ("DeliveryOK", "SendingError", "SendingOK")
        sent, at = [], start
        for ident in range(1, sent_rows + 1):
            at += dt.timedelta(seconds=rng.randint(60, 1200))
            sent.append({"i": ident, "at": at, "to": rng.choice(people),
                         "t": sentence(rng, 10), "st": rng.choice(statuses)})
            if len(sent) >= 5000 or ident == sent_rows:
                many(conn, "INSERT INTO sentitems (ID, SequencePosition, InsertIntoDB, "
                     "SendingDateTime, DestinationNumber, TextDecoded, UDH, Text, Status, "
                     "SenderID, CreatorID) VALUES (:i, 1, :at, :at, :to, :t, '', '', :st, 'k', "
                     "'Kalkun')", sent)
                sent = []
        many(conn, "INSERT INTO outbox (ID, InsertIntoDB, DestinationNumber, TextDecoded, "
             "CreatorID) VALUES (:i, :at, :to, :t, 'Kalkun')",
             [{"i": sent_rows + 1 + i, "at": at, "to": rng.choice(people),
               "t": sentence(rng, 8)} for i in range(outbox_rows)])
    return {"pbk": pbk, "user_group": members, "inbox": inbox_rows, "sentitems": sent_rows,
            "outbox": outbox_rows}


def run_import(config: Path, source_url: str) -> tuple[float, float, int, str]:
    """Wall seconds, the child's CPU seconds and own peak RSS (KiB), and its summary."""
    started = time.perf_counter()
    child = subprocess.Popen([str(HELPDESK), "--config", str(config), "import", "kalkun",
                              "--from", source_url], stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _pid, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"helpdesk import kalkun exited {child.returncode}")
    return took, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--server", default="mysql+pymysql://root@127.0.0.1:3306/")
    parser.add_argument("--target", help="an empty helpdesk database (default: new SQLite)")
    args = parser.parse_args()
    if args.server == "none":
        print("not measured: the import (--server none: no MariaDB server for Kalkun's database)")
        return 0
    if not GAMMU_SQL.is_file():
        print(f"not measured: the import ({GAMMU_SQL} is missing: apt-get install gammu-smsd)")
        return 0
    server_url = make_url(args.server)._replace(database=None)
    server = create_engine(server_url)
    try:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {SOURCE_DB}"))
            conn.execute(text(f"CREATE DATABASE {SOURCE_DB} CHARACTER SET utf8mb4"))
    except OperationalError as e:
        print(f"not measured: the import (no MariaDB server at {server_url}: {e.orig})")
        return 0
    source_url = server_url._replace(database=SOURCE_DB).render_as_string(hide_password=False)
    source = create_engine(source_url + "?charset=utf8mb4")
    try:
        with source.begin() as conn:
            for statement in statements(GAMMU_SQL.read_text()) + statements(PHONEBOOK):
                conn.exec_driver_sql(statement)
        started = time.perf_counter()
        counts = fill(source, args.rows)
        print(f"source: {sum(counts.values()):,} rows ({', '.join(f'{k} {v:,}' for k, v in counts.items())}) "
              f"written in {time.perf_counter() - started:.1f} s")
        with tempfile.TemporaryDirectory(prefix="kalkun-bench-") as tmp:
            target = args.target or f"sqlite:///{tmp}/helpdesk.db"
            config = Path(tmp) / "helpdesk.toml"
            config.write_text(f'[database]\nurl = "{target}"\n[web]\nsecret_file = "{tmp}/s.key"\n'
                              f'[agi]\nsecret_file = "{tmp}/a.key"\n')
            subprocess.run([str(HELPDESK), "--config", str(config), "init"], check=True,
                           capture_output=True)
            target_name = make_url(target).get_backend_name()
            for label in ("first run (everything new)", "second run (everything there)"):
                took, cpu, peak_kib, summary = run_import(config, source_url)
                print(f"{label} into {target_name}: {took:.1f} s wall ({args.rows / took:,.0f} "
                      f"rows/s), {cpu:.1f} s CPU of the import process, peak RSS "
                      f"{peak_kib / 1024:.0f} MiB; load average {os.getloadavg()[0]:.1f}")
                for line in summary.splitlines():
                    print("    " + line)
    finally:
        source.dispose()
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {SOURCE_DB}"))
        server.dispose()
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
