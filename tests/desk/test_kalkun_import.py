"""`helpdesk import kalkun`: a real Gammu SMSD database on MariaDB, made from the schema
Debian's gammu-smsd ships (versions 17 and, with 17's columns taken off, 16) plus
Kalkun's phonebook tables; once with generated rows and once filled by gammu-smsd itself
from Gammu's dummy driver. The helpdesk side runs on every test database."""
from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import column, create_engine, func, insert, select, table, text
from sqlalchemy.engine import make_url

from gateway import cli
from gateway.config import ModemConfig
from gateway.db.models import (
    Contact,
    ContactGroup,
    ContactGroupMember,
    KalkunImported,
    Message,
    Ticket,
)
from gateway.desk import crm
from gateway.imports import kalkun
from gateway.modem import simulator

GAMMU_SQL = Path("/usr/share/doc/gammu-smsd/examples/mysql.sql")
# The server the source databases are made on: the test MariaDB's, else the local one.
SERVER = make_url(os.environ.get("HELPDESK_TEST_MYSQL_URL")
                  or "mysql+pymysql://root@127.0.0.1:3306/x")._replace(database=None)

# Kalkun's own tables over Gammu's (after its media/db/mysql_kalkun.sql): the phonebook
# that Gammu dropped in schema 16, groups with members in user_group, folders on the texts.
KALKUN_DDL = """
CREATE TABLE pbk (ID integer NOT NULL auto_increment, GroupID integer NOT NULL default -1,
  Name text NOT NULL, Number text NOT NULL, id_user int NOT NULL,
  is_public enum('true','false') NOT NULL DEFAULT 'false', PRIMARY KEY (ID))
  DEFAULT CHARSET=utf8mb4;
CREATE TABLE pbk_groups (Name text NOT NULL, ID integer NOT NULL auto_increment,
  id_user int NOT NULL, is_public enum('true','false') NOT NULL DEFAULT 'false',
  PRIMARY KEY (ID)) DEFAULT CHARSET=utf8mb4;
CREATE TABLE user_group (id_group int NOT NULL AUTO_INCREMENT, id_pbk int NOT NULL,
  id_pbk_groups int NOT NULL, id_user int NOT NULL, PRIMARY KEY (id_group));
CREATE TABLE user (id_user int NOT NULL AUTO_INCREMENT, username varchar(12) NOT NULL,
  realname varchar(100) NOT NULL, password varchar(255) NOT NULL,
  phone_number varchar(15) NOT NULL, level enum('admin','user') NOT NULL DEFAULT 'user',
  PRIMARY KEY (id_user));
CREATE TABLE user_inbox (id_inbox int NOT NULL, id_user int NOT NULL,
  trash tinyint(1) NOT NULL DEFAULT 0, PRIMARY KEY (id_inbox));
ALTER TABLE inbox ADD id_folder INT NOT NULL DEFAULT 1,
  ADD readed ENUM('false','true') NOT NULL DEFAULT 'false';
ALTER TABLE sentitems ADD id_folder INT NOT NULL DEFAULT 3
"""
# What schema 17 added (gammu-smsd-tables(7)): taken off again, it is schema 16.
TO_VERSION_16 = """
ALTER TABLE inbox DROP COLUMN Status;
ALTER TABLE outbox DROP COLUMN Status, DROP COLUMN StatusCode;
ALTER TABLE outbox_multipart DROP COLUMN Status, DROP COLUMN StatusCode;
ALTER TABLE sentitems DROP COLUMN StatusCode;
UPDATE gammu SET Version = 16
"""


def _statements(sql: str) -> list[str]:
    sql = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", sql + "\n") if s.strip()]


class SourceDb:
    """A helpdesk_kalkun_src* database on the MariaDB server, dropped afterwards."""

    def __init__(self, version: int = 17, kalkun_tables: bool = True):
        self.name = f"helpdesk_kalkun_src_{uuid.uuid4().hex[:8]}"
        self.server = create_engine(SERVER)
        with self.server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE {self.name} CHARACTER SET utf8mb4"))
        self.url = SERVER._replace(database=self.name).render_as_string(hide_password=False)
        self.engine = create_engine(self.url + "?charset=utf8mb4")
        script = _statements(GAMMU_SQL.read_text())
        if kalkun_tables:
            script += _statements(KALKUN_DDL)
        if version == 16:
            script += _statements(TO_VERSION_16)
        with self.engine.begin() as conn:
            for statement in script:
                conn.exec_driver_sql(statement)

    def run(self, sql: str, rows=None):
        with self.engine.begin() as conn:
            conn.execute(text(sql), rows or {})

    def drop(self):
        self.engine.dispose()
        with self.server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {self.name}"))
        self.server.dispose()


@pytest.fixture
def source_db():
    made = []

    def make(**kwargs) -> SourceDb:
        made.append(SourceDb(**kwargs))
        return made[-1]
    yield make
    for db in made:
        db.drop()


T0 = dt.datetime(2024, 3, 1, 9, 0)  # UTC (TIMESTAMP columns, read in UTC)


def _fill(src: SourceDb) -> None:
    src.run("INSERT INTO pbk_groups (ID, Name, id_user) VALUES (:id, :name, 1)",
            [{"id": 1, "name": "Pelanggan"}, {"id": 2, "name": " Reseller "},
             {"id": 3, "name": "pelanggan"}])
    src.run("INSERT INTO pbk (ID, GroupID, Name, Number, id_user) VALUES "
            "(:id, :g, :name, :number, 1)",
            [{"id": 1, "g": 1, "name": "Budi Santoso", "number": "0812-1111-2222"},
             {"id": 2, "g": -1, "name": "Sari", "number": "+62 813 3333 4444"},
             {"id": 3, "g": -1, "name": "Kantor", "number": "kantor pusat"},
             {"id": 4, "g": -1, "name": "Budi (lagi)", "number": "6281211112222"},
             {"id": 5, "g": -1, "name": "Dewi", "number": "081555566667"}])
    src.run("INSERT INTO user_group (id_pbk, id_pbk_groups, id_user) VALUES (:p, :g, 1)",
            [{"p": 2, "g": 2}, {"p": 5, "g": 2}, {"p": 5, "g": 3}, {"p": 3, "g": 1}])
    inbox = ("INSERT INTO inbox (ID, ReceivingDateTime, SenderNumber, TextDecoded, UDH, Text, "
             "RecipientID, id_folder) VALUES (:id, :at, :sender, :text, :udh, '', 'k', :folder)")
    src.run(inbox, [
        {"id": 1, "at": T0, "sender": "081211112222", "text": "KOMPLAIN pulsa belum masuk",
         "udh": "", "folder": 1},
        # a long text whose parts came in another order, each with its own text
        {"id": 2, "at": T0 + dt.timedelta(minutes=5), "sender": "+6281333334444",
         "text": "kedua, ", "udh": "050003A70302", "folder": 1},
        {"id": 3, "at": T0 + dt.timedelta(minutes=5), "sender": "+6281333334444",
         "text": "pertama, ", "udh": "050003A70301", "folder": 1},
        {"id": 4, "at": T0 + dt.timedelta(minutes=5), "sender": "+6281333334444",
         "text": "ketiga.", "udh": "050003A70303", "folder": 1},
        # two parts of three, with a 16-bit reference: kept, marked incomplete
        {"id": 5, "at": T0 + dt.timedelta(minutes=6), "sender": "081555566667",
         "text": "awal ", "udh": "06080412340301", "folder": 1},
        {"id": 6, "at": T0 + dt.timedelta(minutes=6), "sender": "081555566667",
         "text": "akhir", "udh": "06080412340303", "folder": 1},
        {"id": 7, "at": T0 + dt.timedelta(minutes=7), "sender": "TELKOMSEL",
         "text": "Sisa pulsa Anda Rp5.000", "udh": "", "folder": 1},
        {"id": 8, "at": T0 + dt.timedelta(minutes=8), "sender": "081211112222",
         "text": "dihapus di Kalkun", "udh": "", "folder": 5},
    ])
    sent = ("INSERT INTO sentitems (ID, SequencePosition, InsertIntoDB, SendingDateTime, "
            "DeliveryDateTime, DestinationNumber, TextDecoded, UDH, Text, Status, SenderID, "
            "CreatorID) VALUES (:id, :seq, :at, :at, :dlv, :to, :text, :udh, '', :status, "
            "'k', 'Kalkun')")
    src.run(sent, [
        {"id": 1, "seq": 1, "at": T0 + dt.timedelta(minutes=1), "dlv": T0 + dt.timedelta(
            minutes=2), "to": "081211112222", "text": "Baik kak, ", "udh": "050003110201",
         "status": "DeliveryOK"},
        {"id": 1, "seq": 2, "at": T0 + dt.timedelta(minutes=1), "dlv": T0 + dt.timedelta(
            minutes=3), "to": "081211112222", "text": "kami cek dulu.", "udh": "050003110202",
         "status": "DeliveryOK"},
        {"id": 2, "seq": 1, "at": T0 + dt.timedelta(minutes=9), "dlv": None,
         "to": "081333334444", "text": "Pesanan dikirim", "udh": "", "status": "SendingError"},
        {"id": 3, "seq": 1, "at": T0 + dt.timedelta(minutes=10), "dlv": None,
         "to": "081333334444", "text": "Promo", "udh": "", "status": "Error"},
        {"id": 4, "seq": 1, "at": T0 + dt.timedelta(minutes=11), "dlv": None,
         "to": "081333334444", "text": "Terima kasih", "udh": "", "status": "SendingOKNoReport"},
    ])
    src.run("INSERT INTO outbox (ID, InsertIntoDB, SendingDateTime, DestinationNumber, "
            "TextDecoded, MultiPart, CreatorID) VALUES (:id, :at, :at, :to, :text, :multi, 'K')",
            [{"id": 10, "at": T0 + dt.timedelta(minutes=12), "to": "081555566667",
              "text": "Halo Dewi, ", "multi": "true"},
             {"id": 11, "at": T0 + dt.timedelta(minutes=13), "to": "081555566667",
              "text": "Stok ada", "multi": "false"}])
    src.run("INSERT INTO outbox_multipart (ID, SequencePosition, TextDecoded) VALUES "
            "(10, 2, 'pesanan siap diambil.')")


def _import(src, sessionmaker, **kwargs):
    return kalkun.run(src.url, sessionmaker, **kwargs)


@pytest.mark.parametrize("version", [16, 17])
def test_kalkun_database_moves_in_once(source_db, sessionmaker, db, version):
    src = source_db(version=version)
    _fill(src)
    with sessionmaker.begin() as session:  # the new system knew some already
        session.add(Contact(phone="+6281555566667"))
        session.add(ContactGroup(name="Reseller"))

    summary = _import(src, sessionmaker)

    assert summary.version == version
    assert summary.imported["contacts"] == 2 and summary.already["contacts"] == 1
    assert summary.skipped["phonebook entries without a phone number"] == 1
    assert summary.skipped["phonebook entries for a number listed before"] == 1
    assert summary.imported["groups"] == 1  # Pelanggan; pelanggan is the same group
    assert summary.already["groups"] == 2
    assert summary.imported["received texts"] == 4
    assert summary.skipped["texts in Kalkun's trash"] == 1
    assert summary.imported["sent texts"] == 4
    assert summary.imported["outbox texts (as failed)"] == 2
    db.expire_all()
    names = dict(db.execute(select(Contact.phone, Contact.name)).all())
    assert names == {"+6281211112222": "Budi Santoso", "+6281333334444": "Sari",
                     "+6281555566667": "Dewi"}  # the number known before got its name
    members = {(g, p) for g, p in db.execute(
        select(ContactGroup.name, Contact.phone).join(
            ContactGroupMember, ContactGroupMember.group_id == ContactGroup.id)
        .join(Contact, Contact.id == ContactGroupMember.contact_id))}
    assert members == {("Pelanggan", "+6281211112222"), ("Reseller", "+6281333334444"),
                       ("Reseller", "+6281555566667"), ("Pelanggan", "+6281555566667")}

    texts = db.scalars(select(Message).order_by(Message.id)).all()
    got = [(m.direction, m.number, m.text, m.status, m.incomplete) for m in texts]
    assert got == [  # in the order they happened, across the three tables
        ("in", "+6281211112222", "KOMPLAIN pulsa belum masuk", "received", False),
        ("out", "+6281211112222", "Baik kak, kami cek dulu.", "delivered", False),
        ("in", "+6281333334444", "pertama, kedua, ketiga.", "received", False),
        ("in", "TELKOMSEL", "Sisa pulsa Anda Rp5.000", "received", False),
        # its missing part was waited for until the end of the inbox: filed after
        ("in", "+6281555566667", "awal  [...] akhir", "received", True),
        ("out", "+6281333334444", "Pesanan dikirim", "failed", False),
        ("out", "+6281333334444", "Promo", "unknown", False),
        ("out", "+6281333334444", "Terima kasih", "sent", False),
        ("out", "+6281555566667", "Halo Dewi, pesanan siap diambil.", "failed", False),
        ("out", "+6281555566667", "Stok ada", "failed", False),
    ]
    assert texts[0].created_at == T0 and texts[1].delivered_at == T0 + dt.timedelta(minutes=3)
    assert texts[3].contact_id is None  # a carrier is nobody's contact
    assert all(m.contact_id for m in texts if m.number.startswith("+"))
    assert texts[-1].last_error == kalkun.OUTBOX_NOTE
    # history, not work: no ticket, nothing queued to go out, nothing marked for a person
    assert db.scalar(select(func.count()).select_from(Ticket)) == 0
    assert not [m for m in texts if m.status in ("queued", "sending") or m.attention]
    budi = db.scalar(select(Contact).where(Contact.phone == "+6281211112222"))
    shown = [e.row.text for e in crm.timeline(db, budi).entries]
    assert shown == ["Baik kak, kami cek dulu.", "KOMPLAIN pulsa belum masuk"]

    again = _import(src, sessionmaker)
    assert sum(again.imported.values()) == 0
    assert again.already["received texts"] == 4 and again.already["sent texts"] == 4
    assert again.already["group members"] == 4 and again.already["contacts"] == 3
    assert db.scalar(select(func.count()).select_from(Message)) == 10

    # Kalkun was still running: the outbox text went out since, under the same ID, and a
    # new text came. The third run brings the text up to date and adds only the new one.
    src.run("DELETE FROM outbox WHERE ID = 11")
    src.run("INSERT INTO sentitems (ID, SequencePosition, InsertIntoDB, SendingDateTime, "
            "DestinationNumber, TextDecoded, UDH, Text, Status, SenderID, CreatorID) VALUES "
            "(11, 1, :at, :at, '081555566667', 'Stok ada', '', '', 'SendingOK', 'k', 'K')",
            {"at": T0 + dt.timedelta(minutes=20)})
    src.run("INSERT INTO inbox (ID, ReceivingDateTime, SenderNumber, TextDecoded, UDH, Text, "
            "RecipientID) VALUES (9, :at, '081555566667', 'Oke saya ambil', '', '', 'k')",
            {"at": T0 + dt.timedelta(minutes=21)})
    third = _import(src, sessionmaker)
    assert third.imported["received texts"] == 1 and third.imported["sent texts"] == 0
    db.expire_all()
    moved = db.scalar(select(Message).where(Message.text == "Stok ada"))
    assert (moved.status, moved.sent_at) == ("sent", T0 + dt.timedelta(minutes=20))
    assert db.scalar(select(func.count()).select_from(Message)) == 11
    assert db.scalar(select(func.count()).select_from(KalkunImported)) == 13 + 2


def test_trash_and_spam_on_request(source_db, sessionmaker):
    src = source_db()
    src.run("INSERT INTO inbox (ID, ReceivingDateTime, SenderNumber, TextDecoded, UDH, Text, "
            "RecipientID, id_folder) VALUES (1, :at, '081211112222', 'spam?', '', '', 'k', 6)",
            {"at": T0})
    assert _import(src, sessionmaker).skipped == {"texts in Kalkun's spam folder": 1}
    assert _import(src, sessionmaker, include_trash=True).imported["received texts"] == 1


def test_refuses_what_is_not_an_smsd_database(source_db, sessionmaker, capsys, tmp_path):
    src = source_db()
    src.run("UPDATE gammu SET Version = 12")
    with pytest.raises(kalkun.KalkunImportError, match="schema version 12"):
        _import(src, sessionmaker)
    other = source_db()
    other.run("DROP TABLE sentitems")
    with pytest.raises(kalkun.KalkunImportError, match="no table sentitems"):
        _import(other, sessionmaker)
    with pytest.raises(kalkun.KalkunImportError, match="not a database URL"):
        kalkun.run("kalkun on the old server", sessionmaker)
    with pytest.raises(kalkun.KalkunImportError, match="no SQLite database"):
        kalkun.run(f"sqlite:///{tmp_path}/none.db", sessionmaker)


def _wait(check, what: str, seconds: float = 60):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"gammu-smsd did not {what}"
        time.sleep(0.3)


def test_a_database_gammu_smsd_filled(source_db, db_url, tmp_path, db):
    """gammu-smsd on the dummy driver files two texts (one of five parts) and sends two;
    a third waits in its outbox. The import, through the command line, brings them all."""
    src = source_db(kalkun_tables=False)
    phone = tmp_path / "phone"
    (phone / "sms" / "1").mkdir(parents=True)
    modem = ModemConfig("old", {"Device": str(phone), "Connection": "none", "Model": "dummy"})
    long_text = "Mohon dicek pesanan saya nomor 12 " * 8
    simulator.inject(modem, "081234567890", "Halo kak, pesanan saya belum sampai")
    simulator.inject(modem, "+6281298765432", long_text.strip())
    url = make_url(src.url)
    smsdrc = tmp_path / "smsdrc"
    smsdrc.write_text(f"""[gammu]
model = dummy
connection = none
device = {phone}/

[smsd]
service = sql
driver = native_mysql
host = {url.host}:{url.port or 3306}
user = {url.username}
password = {url.password or ''}
database = {src.name}
logfile = {tmp_path}/smsd.log
phoneid = old
commtimeout = 1
receivefrequency = 1
statusfrequency = 0
loopsleep = 1
""")
    inject = ["gammu-smsd-inject", "-c", str(smsdrc), "TEXT", "081234567890"]
    subprocess.run(inject + ["-text", "Sudah kami kirim ya"], check=True, capture_output=True)
    details = "Rincian: " + ", ".join(["barang 1 pcs"] * 20)
    subprocess.run(inject + ["-len", "300", "-text", details],
                   check=True, capture_output=True)

    def count(table):
        with src.engine.connect() as conn:
            return conn.scalar(text(f"SELECT COUNT(DISTINCT ID) FROM {table}"))
    daemon = subprocess.Popen(["gammu-smsd", "-c", str(smsdrc)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        # filed: the phone's inbox emptied (the daemon deletes what it stored); sent: the
        # outbox emptied into sentitems
        _wait(lambda: not os.listdir(phone / "sms" / "1") and count("inbox") >= 2
              and count("outbox") == 0 and count("sentitems") == 2, "file and send the texts")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    subprocess.run(inject + ["-text", "Belum sempat terkirim"], check=True, capture_output=True)

    cfg_file = tmp_path / "helpdesk.toml"
    cfg_file.write_text(f'[database]\nurl = "{db_url}"\n')
    argv = ["--config", str(cfg_file), "import", "kalkun", "--from", src.url]
    assert cli.main(argv) == 0
    texts = {(m.direction, m.number, m.text, m.status)
             for m in db.scalars(select(Message))}
    assert texts == {
        ("in", "+6281234567890", "Halo kak, pesanan saya belum sampai", "received"),
        ("in", "+6281298765432", long_text.strip(), "received"),
        ("out", "+6281234567890", "Sudah kami kirim ya", "sent"),
        ("out", "+6281234567890", details, "sent"),
        ("out", "+6281234567890", "Belum sempat terkirim", "failed"),
    }
    assert cli.main(argv) == 0  # again: nothing new
    assert db.scalar(select(func.count()).select_from(Message)) == 5


def test_command_line_says_what_is_wrong(engine, db_url, tmp_path, capsys):
    cfg_file = tmp_path / "helpdesk.toml"
    cfg_file.write_text(f'[database]\nurl = "{db_url}"\n')
    base = ["--config", str(cfg_file), "import", "kalkun", "--from"]
    assert cli.main(base + ["mysql+pymysql://root@127.0.0.1:3306/x", "--timezone",
                            "Jakarta"]) == 2
    assert "'Jakarta' is not a time zone" in capsys.readouterr().err
    assert cli.main(base + [f"sqlite:///{tmp_path}/kalkun.db"]) == 2
    assert "no SQLite database" in capsys.readouterr().err


# --- SMSD on SQLite and PostgreSQL: local times, quoted mixed-case names ------------------
PG_SERVER = os.environ.get("HELPDESK_TEST_PG_URL")
LOCAL_T0 = T0 + dt.timedelta(hours=7)  # what the SMSD wrote in Asia/Jakarta


def _sqlite_source(tmp_path) -> str:
    path = tmp_path / "smsd.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(GAMMU_SQL.with_name("sqlite.sql").read_text())
        conn.executescript(
            "CREATE TABLE pbk (ID INTEGER PRIMARY KEY AUTOINCREMENT, GroupID INTEGER NOT NULL "
            "DEFAULT -1, Name TEXT NOT NULL, Number TEXT NOT NULL, id_user INTEGER NOT NULL, "
            "is_public TEXT NOT NULL DEFAULT 'false');")
    return f"sqlite:///{path}"


def _pg_source(made: list) -> str:
    server = make_url(PG_SERVER)
    name = f"helpdesk_kalkun_src_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    made.append((admin, name))
    url = server._replace(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as conn:
        # PostgreSQL has had plpgsql built in since 9.0; the script still creates it
        script = GAMMU_SQL.with_name("pgsql.sql").read_text()
        conn.exec_driver_sql(script.replace("CREATE LANGUAGE plpgsql;", ""))
        conn.exec_driver_sql(
            'CREATE TABLE pbk ("ID" serial PRIMARY KEY, "GroupID" integer NOT NULL DEFAULT -1, '
            '"Name" text NOT NULL, "Number" text NOT NULL, id_user integer NOT NULL, '
            "is_public boolean NOT NULL DEFAULT false)")
    engine.dispose()
    return url


@pytest.fixture
def other_source(tmp_path):
    made = []

    def make(kind: str) -> str:
        return _sqlite_source(tmp_path) if kind == "sqlite" else _pg_source(made)
    yield make
    for admin, name in made:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.parametrize("kind", ["sqlite"] + (["postgresql"] if PG_SERVER else []))
def test_smsd_on_sqlite_or_postgresql(other_source, sessionmaker, db, kind):
    url = other_source(kind)
    engine = create_engine(url)

    def rows(name, *values):
        cols = list(values[0])
        target = table(name, *[column(c) for c in cols])
        with engine.begin() as conn:
            conn.execute(insert(target), list(values))
    at = LOCAL_T0 if kind == "postgresql" else LOCAL_T0.isoformat(" ")
    rows("pbk", {"Name": "Budi", "Number": "0812-1111-2222", "id_user": 1})
    rows("inbox", *[{"ID": i, "ReceivingDateTime": at, "SenderNumber": "081211112222",
                     "TextDecoded": t, "UDH": u, "Text": "", "RecipientID": "k"}
                    for i, t, u in ((1, "Halo", ""), (2, "satu ", "050003010201"),
                                    (3, "dua", "050003010202"))])
    rows("sentitems", *[{"ID": 1, "SequencePosition": s, "InsertIntoDB": at,
                         "SendingDateTime": at, "DestinationNumber": "081211112222",
                         "TextDecoded": t, "UDH": "", "Text": "", "Status": "DeliveryOK",
                         "SenderID": "k", "CreatorID": "K"}
                        for s, t in ((1, "Siap "), (2, "kak"))])
    rows("outbox", {"ID": 5, "InsertIntoDB": at, "DestinationNumber": "081211112222",
                    "TextDecoded": "nanti", "CreatorID": "K"})
    engine.dispose()

    summary = kalkun.run(url, sessionmaker, local_zone="Asia/Jakarta")
    assert summary.version == 17 and summary.imported["contacts"] == 1
    texts = db.scalars(select(Message).order_by(Message.id)).all()
    assert [(m.direction, m.text, m.status, m.created_at) for m in texts] == [
        ("in", "Halo", "received", T0), ("in", "satu dua", "received", T0),
        ("out", "Siap kak", "delivered", T0), ("out", "nanti", "failed", T0)]
    assert {m.contact.name for m in texts} == {"Budi"}
    assert sum(kalkun.run(url, sessionmaker).imported.values()) == 0
