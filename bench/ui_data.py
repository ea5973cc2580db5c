"""Fill a helpdesk database with a shop's year: the data the operator UI bench reads.

    .venv/bin/python bench/ui_data.py URL [--tickets 100000] [--messages 1000000]
                                          [--contacts 50000] [--seed 1]

URL is an SQLAlchemy URL (`sqlite:///var/ui-bench.db`, `mysql+pymysql://root@127.0.0.1/db`).
The database is emptied and made by the project's own migrations (gateway.db.schema),
then filled with bulk inserts (SQLAlchemy Core executemany): contacts with Indonesian
names, tickets of every kind and status over a year, their texts in and out in the words
shops get by SMS (~10 per ticket, some tickets long), the timeline events, products,
orders and payments. The full-text indexes are set aside during the fill and built once
at its end (a rebuild is one pass where a trigger per row is a million small ones); then
the statistics are gathered, as the migration does. Deterministic for a seed.

Prints what it made and how long it took; `facts(url)` gives what bench_ui.py needs to
search for (a name, a word, a phone number, a ticket with many texts).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import random
import sys
import time
from pathlib import Path

from sqlalchemy import func, insert, select, text

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gateway.db.engine import make_engine  # noqa: E402
from gateway.db.models import (  # noqa: E402
    OPEN_TICKET_STATUSES,
    Contact,
    Message,
    Order,
    Payment,
    Product,
    Ticket,
    TicketEvent,
    User,
)
from gateway.db.schema import upgrade  # noqa: E402
from gateway.desk.users import create_user  # noqa: E402

PASSWORD = "bench password 1234"  # the bench's own throwaway database only
BATCH = 20_000

FIRST = ("Agus Budi Dewi Eko Fajar Gita Hadi Indah Joko Kartika Lestari Made Nur Putri "
         "Rina Siti Tono Umar Wati Yanti Bambang Citra Dian Endang Fitri Gunawan Hendra "
         "Intan Jessica Komang Lukman Mega Novi Oki Pratiwi Rizky Sri Teguh Udin Vina "
         "Wahyu Yusuf Zainal Ayu Bayu Cahya Dodi Erna Ferry Galih Hana Ika Juli Kurnia "
         "Lina Maya Nanda Oka Puspita Ratna Sari Tari Utami Wulan Yogi Andi Rahmat "
         "Nyoman Ketut Wayan Asep Ujang Cecep Euis Neng Tatang Ucok Butet Tigor Ria").split()
LAST = ("Santoso Wijaya Saputra Hidayat Kusuma Pratama Setiawan Nugroho Wibowo Siregar "
        "Nasution Lubis Harahap Simanjuntak Sihombing Tanjung Putra Putri Lestari Rahayu "
        "Susanto Halim Gunadi Sutanto Kurniawan Hakim Ramadhan Firmansyah Syahputra "
        "Purnomo Hartono Sulistyo Prasetyo Permana Maulana Anggraini Handayani Utomo "
        "Suryadi Wirawan Rusdi Sembiring Ginting Tarigan Manurung Pane Daulay Batubara "
        "Pardede Hutapea Panjaitan Situmorang Simbolon Marpaung Pohan Rangkuti Effendi").split()
CITIES = ("Jakarta Bandung Surabaya Medan Semarang Makassar Palembang Depok Tangerang "
          "Bekasi Bogor Malang Denpasar Pekanbaru Padang Pontianak Manado Kupang").split()
PRODUCTS = [("PLS10", "Pulsa 10rb", 11_000), ("PLS25", "Pulsa 25rb", 26_000),
            ("PLS50", "Pulsa 50rb", 50_500), ("PLS100", "Pulsa 100rb", 99_000),
            ("DATA5", "Paket data 5GB", 35_000), ("DATA15", "Paket data 15GB", 75_000),
            ("TOKEN50", "Token listrik 50rb", 51_500), ("TOKEN100", "Token listrik 100rb", 101_500),
            ("HP-A05", "HP Samsung A05", 1_450_000), ("HP-C51", "HP Realme C51", 1_350_000),
            ("HP-HOT40", "HP Infinix Hot 40", 1_650_000), ("CHG20", "Charger 20W", 85_000),
            ("KBL-C", "Kabel USB-C", 35_000), ("SIM-5G", "Kartu perdana 5G", 25_000),
            ("VCR-GAME", "Voucher game 100rb", 102_000), ("EMONEY", "Top up e-money", 51_000)]
BANKS = ("BCA", "BRI", "BNI", "Mandiri", "BSI", "CIMB", "DANA", "OVO", "GoPay")
KINDS = ("order", "complaint", "payment", "question", "call", "warranty")
KIND_WEIGHTS = (30, 25, 20, 15, 5, 5)
# A year of tickets: most are long done, the queue holds the last weeks' open ones.
CLOSED_STATUSES = ("resolved", "closed")

IN_TEXTS = {
    "order": ["BELI {code} {n}", "beli {code} {n} kirim ke {city}", "pesan {product} {n} buah",
              "Mau order {product} kak, stok masih ada?", "ORDER {code} {n} atas nama {name}",
              "kak saya mau beli {product} yg kemarin, masih ada?"],
    "complaint": ["KOMPLAIN pulsa belum masuk dari tadi pagi", "komplain {product} rusak, layar mati",
                  "pesanan saya belum sampai, sudah {n} hari", "token listrik belum masuk min!!",
                  "kok paket data saya tidak aktif ya? tolong dicek", "barang datang tapi dus penyok",
                  "{product} saya error terus, minta ganti", "kenapa saldo terpotong 2x?"],
    "payment": ["BAYAR {amount} {bank} a.n. {name}", "sudah transfer {amount} via {bank}",
                "TRF {amount} {bank} untuk order #{ticket}", "bukti transfer sudah saya kirim ya kak",
                "saya sudah bayar {amount}, mohon dicek"],
    "question": ["harga {product} berapa?", "buka jam berapa hari minggu?", "bisa COD di {city}?",
                 "ada garansi untuk {product}?", "alamat toko dimana ya", "ongkir ke {city} berapa?",
                 "STATUS {ticket}", "apakah bisa cicilan untuk {product}?"],
    "call": ["tolong telepon saya balik", "tadi saya telepon tidak diangkat",
             "minta ditelepon jam {n} sore"],
    "warranty": ["GARANSI {serial} {product} mati total", "klaim garansi {product}, baterai kembung",
                 "servis {serial} sudah selesai belum?", "{product} garansi masih berlaku?"],
}
OUT_TEXTS = ["Terima kasih, pesanan #{ticket} kami terima. Total Rp {amount}.",
             "Baik kak {name}, kami cek dulu ya.", "Mohon maaf atas ketidaknyamanannya, sedang kami proses.",
             "Pembayaran Rp {amount} sudah kami terima. Terima kasih!",
             "Stok {product} tersedia, silakan transfer ke BCA 1234567890.",
             "Tiket #{ticket}: status sedang diproses.", "Pulsa sudah masuk ya kak, silakan dicek.",
             "Ongkir ke {city} Rp {n}.000, estimasi 2-3 hari.",
             "Untuk klaim garansi, bawa {product} dan nota ke toko.",
             "Sudah kami kirim via JNE, resi JN{serial}."]
FOLLOW_UPS = ["ok kak makasih", "sip", "terima kasih banyak", "kapan dikirim?", "masih belum kak",
              "oke ditunggu", "sudah masuk, makasih min", "berapa lama lagi?", "baik",
              "tolong dipercepat ya", "mantap 👍", "siap kak"]


def money(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def phone(i: int) -> str:
    """A distinct Indonesian mobile number in E.164 for contact number i."""
    prefix = ("812", "813", "821", "852", "857", "878", "896", "838")[i % 8]
    return f"+62{prefix}{10_000_000 + i * 7919 % 90_000_000:08d}"


def say(template: str, rng: random.Random, name: str, ticket: int) -> str:
    code, product, price = rng.choice(PRODUCTS)
    return template.format(code=code, product=product, n=rng.randint(1, 9), city=rng.choice(CITIES),
                           name=name, amount=money(price + rng.randint(0, 999)),
                           bank=rng.choice(BANKS), ticket=ticket,
                           serial=f"SN{rng.randint(10**7, 10**8 - 1)}")


def _migration(number: str):
    path = next((REPO / "gateway/db/migrations/versions").glob(f"{number}_*.py"))
    spec = importlib.util.spec_from_file_location(f"migration_{number}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def empty(engine) -> None:
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
    else:
        server = make_engine(engine.url.set(database="").render_as_string(hide_password=False))
        with server.begin() as conn:  # the database itself, the first time
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{engine.url.database}` "
                              "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
        server.dispose()
        with engine.begin() as conn:
            conn.execute(text("SET FOREIGN_KEY_CHECKS=0"))
            for name in conn.execute(text("SHOW TABLES")).scalars().all():
                conn.execute(text(f"DROP TABLE `{name}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS=1"))


def indexes_aside(conn, dialect: str, search) -> None:
    """Drop SQLite's full-text triggers for the fill. MariaDB's FULLTEXT indexes stay:
    MariaDB 10.11 re-adds a dropped one without the rows inserted meanwhile (it then
    finds nothing until the table is rebuilt), and InnoDB indexes a batch at its commit."""
    for table, _column in search.SEARCHED:
        if dialect == "sqlite":
            for suffix in ("ai", "ad", "au"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}"))


def indexes_back(conn, dialect: str, search) -> None:
    for table, column in search.SEARCHED:
        if dialect == "sqlite":
            for statement in search.sqlite_fts(table, column):  # the triggers, a rebuild
                conn.execute(text(statement))


def check_index(conn, dialect: str) -> None:
    """The full-text index finds what LIKE finds: a fill that left it empty is refused."""
    if dialect == "sqlite":
        found = conn.execute(text("SELECT count(*) FROM messages_fts "
                                  "WHERE messages_fts MATCH 'kembung'")).scalar()
    else:
        found = conn.execute(text("SELECT count(*) FROM messages WHERE MATCH (text) "
                                  "AGAINST ('+kembung' IN BOOLEAN MODE)")).scalar()
    like = conn.execute(text("SELECT count(*) FROM messages WHERE text LIKE '%kembung%'")).scalar()
    if found != like:
        raise RuntimeError(f"the full-text index finds {found} texts with 'kembung', "
                           f"LIKE finds {like}")


def fill(url: str, tickets: int, messages: int, contacts: int, seed: int = 1,
         quiet: bool = False) -> dict:
    log = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    started = time.monotonic()
    rng = random.Random(seed)
    engine = make_engine(url)
    empty(engine)
    engine = make_engine(url)
    upgrade(engine)
    dialect = engine.dialect.name
    search_migration = _migration("0009")
    now = dt.datetime(2026, 12, 1, 9, 0)
    year_ago = now - dt.timedelta(days=365)
    with engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        indexes_aside(conn, dialect, search_migration)
    log(f"schema made by the migrations ({time.monotonic() - started:.1f} s)")

    from gateway.db.engine import make_sessionmaker
    with make_sessionmaker(engine)() as session:
        admin = create_user(session, "bench", "admin", PASSWORD)
        operators = [create_user(session, f"operator{i}", "operator", PASSWORD).id
                     for i in range(1, 9)]
        session.commit()
        admin_id = admin.id

    def batches(rows):
        chunk = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= BATCH:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def put(conn, model, rows) -> int:
        n = 0
        for chunk in batches(rows):
            conn.execute(insert(model.__table__), chunk)
            n += len(chunk)
        return n

    names = []
    with engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        put(conn, Product, ({"id": i + 1, "code": c, "name": n, "price": p, "stock": 1000,
                             "active": True} for i, (c, n, p) in enumerate(PRODUCTS)))

        def contact_rows():
            for i in range(1, contacts + 1):
                name = (f"{rng.choice(FIRST)} {rng.choice(LAST)}" if rng.random() < 0.85
                        else None)  # some customers never say their name
                names.append(name)
                created = year_ago + dt.timedelta(seconds=rng.randint(0, 365 * 86400))
                yield {"id": i, "phone": phone(i), "name": name, "opted_out": False,
                       "created_at": created, "updated_at": created}
        put(conn, Contact, contact_rows())
        log(f"{contacts} contacts ({time.monotonic() - started:.1f} s)")

        # Ticket i is created at a time growing with i; the active ones are the newest few
        # thousand, as a working queue is, plus a trickle of old ones left pending.
        span = 365 * 86400
        sizes = [1 + min(int(rng.expovariate(1 / 9)), 200) for _ in range(tickets)]
        scale = messages / sum(sizes)
        sizes = [max(1, round(s * scale)) for s in sizes]
        diff = messages - sum(sizes)
        while diff:  # rounding: spread the difference over random tickets
            i = rng.randrange(tickets)
            step = 1 if diff > 0 else -1 if sizes[i] > 1 else 0
            sizes[i] += step
            diff -= step
        tickets_meta = []

        def ticket_rows():
            for i in range(1, tickets + 1):
                created = year_ago + dt.timedelta(seconds=span * (i - 1) // tickets
                                                  + rng.randint(0, 600))
                age = tickets - i
                if age < 3000:
                    status = rng.choice(OPEN_TICKET_STATUSES + CLOSED_STATUSES[:1])
                elif rng.random() < 0.01:
                    status = "pending"
                else:
                    status = rng.choice(CLOSED_STATUSES)
                kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
                contact = rng.randint(1, contacts)
                tickets_meta.append((i, kind, contact, created))
                updated = created + dt.timedelta(minutes=rng.randint(1, 3 * 24 * 60))
                # Who waits for an answer: the new ones, and a third of the others open.
                waiting = created if status == "new" else min(updated, now) if (
                    status in OPEN_TICKET_STATUSES and i % 3 == 0) else None
                yield {"id": i, "kind": kind, "status": status, "contact_id": contact,
                       "waiting_since": waiting, "queue_since": waiting or created,
                       # normal priority; closed ones after the open (models.CLOSED_RANK)
                       "queue_rank": (2 if waiting else 6) + (
                           8 if status in CLOSED_STATUSES else 0),
                       "subject": say(rng.choice(IN_TEXTS[kind]), rng, names[contact - 1] or "",
                                      i)[:200],
                       "assignee_id": rng.choice(operators) if status != "new" else None,
                       "created_at": created, "updated_at": min(updated, now),
                       "first_response_at": created + dt.timedelta(minutes=rng.randint(1, 240))
                       if status != "new" else None,
                       "closed_at": updated if status in CLOSED_STATUSES else None}
        put(conn, Ticket, ticket_rows())
        log(f"{tickets} tickets ({time.monotonic() - started:.1f} s)")

    # The texts, a transaction per batch (no huge undo log; SQLite's one writer is this).
    if messages:
        events = []
        message_id = 0

        def message_rows():
            nonlocal message_id
            for (tid, kind, contact, created), size in zip(tickets_meta, sizes, strict=True):
                name = names[contact - 1] or "kak"
                at = created
                for k in range(size):
                    message_id += 1
                    inbound = k % 2 == 0
                    if k == 0:
                        body = say(rng.choice(IN_TEXTS[kind]), rng, name, tid)
                    elif inbound:
                        body = rng.choice(FOLLOW_UPS) if rng.random() < 0.6 else \
                            say(rng.choice(IN_TEXTS[kind]), rng, name, tid)
                    else:
                        body = say(rng.choice(OUT_TEXTS), rng, name, tid)
                    events.append({"ticket_id": tid, "message_id": message_id,
                                   "kind": "created" if k == 0 else
                                   ("message_in" if inbound else "message_out"),
                                   "user_id": None if inbound else rng.choice(operators),
                                   "created_at": at})
                    yield {"id": message_id, "direction": "in" if inbound else "out",
                           "number": phone(contact), "text": body,
                           "status": "received" if inbound else "delivered",
                           "intent": kind if k == 0 else None, "incomplete": False,
                           "contact_id": contact, "ticket_id": tid,
                           "user_id": None if inbound else events[-1]["user_id"],
                           "modem": "modem1", "created_at": at, "attempts": 0 if inbound else 1,
                           "sent_at": None if inbound else at}
                    at += dt.timedelta(minutes=rng.randint(1, 180))
        n = 0
        for chunk in batches(message_rows()):
            with engine.begin() as each:  # a transaction per batch: no huge undo log
                if dialect == "sqlite":
                    each.exec_driver_sql("PRAGMA synchronous=OFF")
                each.execute(insert(Message.__table__), chunk)
                each.execute(insert(TicketEvent.__table__), events)
            events.clear()
            n += len(chunk)
            if n % 200_000 == 0:
                log(f"  {n} messages ({time.monotonic() - started:.1f} s)")
        log(f"{n} messages and their events ({time.monotonic() - started:.1f} s)")

    with engine.begin() as conn:

        order_rows, payment_rows = [], []
        order_id = 0
        for tid, kind, contact, created in tickets_meta:
            if kind in ("order", "payment"):
                order_id += 1
                total = rng.choice(PRODUCTS)[2] * rng.randint(1, 3) + rng.randint(1, 999)
                paid = tid < tickets - 500 or rng.random() < 0.5
                order_rows.append({"id": order_id, "contact_id": contact, "ticket_id": tid,
                                   "status": "paid" if paid else "awaiting_payment",
                                   "unique_code": total % 1000, "total": total,
                                   "open_total": None if paid else total + order_id * 1000,
                                   "created_at": created,
                                   "paid_at": created + dt.timedelta(hours=2) if paid else None})
                if paid or kind == "payment":
                    payment_rows.append({"contact_id": contact, "order_id": order_id if paid else None,
                                         "amount": total, "bank": rng.choice(BANKS),
                                         "payer_name": names[contact - 1],
                                         "status": "confirmed" if paid else "unverified",
                                         "decided_by": admin_id if paid else None,
                                         "created_at": created + dt.timedelta(hours=1)})
        put(conn, Order, order_rows)
        put(conn, Payment, payment_rows)
        log(f"{len(order_rows)} orders, {len(payment_rows)} payments "
            f"({time.monotonic() - started:.1f} s)")
    with engine.begin() as conn:
        indexes_back(conn, dialect, search_migration)
    with engine.connect() as conn:
        check_index(conn, dialect)
    log(f"full-text indexes built and checked ({time.monotonic() - started:.1f} s)")
    with engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql("ANALYZE")
        else:
            for table in ("contacts", "tickets", "messages", "ticket_events", "orders", "payments"):
                conn.exec_driver_sql(f"ANALYZE TABLE {table}")
    log(f"statistics gathered ({time.monotonic() - started:.1f} s)")
    engine.dispose()
    return {"seconds": round(time.monotonic() - started, 1), "tickets": tickets,
            "messages": messages, "contacts": contacts}


def sizes(url: str) -> tuple[int, int, int] | None:
    """(tickets, messages, contacts) in the database at `url`; None where there is none."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(select(func.count()).select_from(model)).scalar()
                         for model in (Ticket, Message, Contact))
    except Exception:  # no such file, database or table: nothing to reuse
        return None
    finally:
        engine.dispose()


def facts(url: str) -> dict:
    """What the bench looks for: the user, a common full name, a word of the texts, a
    phone number as a customer writes it, a ticket with many texts, a busy contact."""
    engine = make_engine(url)
    with engine.connect() as conn:
        # A full name a handful of customers share, the way an operator types it.
        name = conn.execute(select(Contact.name).where(Contact.name.is_not(None))
                            .group_by(Contact.name).order_by(func.count().desc(), Contact.name)
                            .limit(1)).scalar()
        ticket = conn.execute(select(Message.ticket_id).group_by(Message.ticket_id)
                              .order_by(func.count().desc(), Message.ticket_id).limit(1)).scalar()
        contact = conn.execute(select(Ticket.contact_id).group_by(Ticket.contact_id)
                               .order_by(func.count().desc(), Ticket.contact_id)
                               .limit(1)).scalar()
        number = conn.execute(select(Contact.phone).where(Contact.id == contact)).scalar()
        user = conn.execute(select(User.name).where(User.role == "admin")).scalar()
    engine.dispose()
    local = "0" + number[3:]
    return {"user": user, "password": PASSWORD, "name": name, "ticket": ticket,
            "contact": contact, "phone": f"{local[:4]}-{local[4:8]}-{local[8:]}",
            # a word of the warranty and complaint texts: a few percent of them, as a real
            # search for a problem finds
            "word": "kembung"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.messages < args.tickets:
        parser.error("--messages must be at least --tickets (every ticket has a text)")
    made = fill(args.url, args.tickets, args.messages, args.contacts, args.seed)
    print(f"filled in {made['seconds']:.1f} s; {facts(args.url)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
