"""gateway.desk.search: the full-text indexes find what LIKE '%...%' found for words,
never raise on what an operator may type, follow every change to the texts, and are
what the database actually uses (on SQLite and MariaDB)."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import or_, select, text

from gateway.db.models import Contact, Message, Ticket, utcnow
from gateway.desk import search

# (phone, name, subject, texts): Indonesian as customers write it, with punctuation.
SHOP = [
    ("+6281200000001", "Siti Rahmawati", "Pulsa belum masuk",
     ["KOMPLAIN pulsa belum masuk dari tadi pagi!!", "sudah 2 jam, tolong dicek ya kak"]),
    ("+6281200000002", "Budi Santoso", "Beli HP",
     ["BELI HP-A05 2 kirim ke Bandung", "Baterai kembung, minta garansi."]),
    ("+6281200000003", "Dewi Lestari", "Token listrik",
     ["token listrik belum masuk min", "(sudah transfer) Rp 51.500 via BCA"]),
    ("+6281200000004", "Agus Siregar", "Garansi",
     ["GARANSI SN12345678 layar mati total", "diskon 100% katanya? _promo_ \"gratis\""]),
    ("+6281200000005", None, "Tanya ongkir",
     ["ongkir ke Medan berapa? COD bisa?", "ok kak makasih 👍", "pembayaran-nya lewat OVO"]),
    ("+6281200000006", "Rina Pulsana", "Paket data",
     ["paket data 15GB tidak aktif", "Kenapa saldo terpotong 2x? TOLONG"]),
]

# Whole words and word starts, in their order: what the LIKE search found for these, the
# index must find too (case aside).
WORDS = ["pulsa", "PULSA", "Pulsa belum masuk", "belum masuk", "kembung", "garansi",
         "baterai kembung", "listrik", "transfer", "Bandung", "tolong", "Siti", "Rahmawati",
         "siti rahmawati", "Santoso", "puls", "Pulsana", "rina", "paket data", "15GB",
         "SN12345678", "BCA", "COD", "ongkir ke medan", "makasih", "gratis", "Lestari",
         "data 15GB tidak", "mati total", "belum"]

HOSTILE = ['"', "*", "-", "OR", "NEAR(", "NEAR(pulsa belum)", "%", "_", "'", "\\", "pulsa\"",
           '"pulsa*', "-pulsa", "pulsa OR token", "pulsa AND NOT token", "+kembung -baterai",
           "100%", "_promo_", "a_b", "(", ")", "^", "~", "@@", "<->", ":*", "'; DROP TABLE x",
           "pulsa*", "💥", "   ", "é", "kembung\x00", "{near}", "a" * 300]


@pytest.fixture
def shop(db):
    """The SHOP above, committed: {phone: ticket id}."""
    tickets = {}
    for phone, name, subject, texts in SHOP:
        contact = Contact(phone=phone, name=name)
        db.add(contact)
        db.flush()
        ticket = Ticket(kind="question", status="open", subject=subject, contact_id=contact.id)
        db.add(ticket)
        db.flush()
        for body in texts:
            db.add(Message(direction="in", number=phone, text=body, status="received",
                           contact_id=contact.id, ticket_id=ticket.id, created_at=utcnow()))
        tickets[phone] = ticket.id
    db.commit()
    return tickets


def found(db, condition) -> set[int]:
    return set(db.scalars(select(Ticket.id).where(condition)))


def like(q: str):
    """The search as it was before the indexes: LIKE '%q%' on every text, name, subject
    (ILIKE on PostgreSQL, whose LIKE minds case where SQLite's and MariaDB's do not)."""
    return or_(Ticket.subject.icontains(q, autoescape=True),
               Ticket.contact_id.in_(select(Contact.id).where(
                   Contact.name.icontains(q, autoescape=True))),
               Ticket.id.in_(select(Message.ticket_id).where(
                   Message.text.icontains(q, autoescape=True))))


@pytest.mark.parametrize("q", WORDS)
def test_words_are_found_as_like_found_them(db, shop, q):
    expected = found(db, like(q))
    assert expected, f"the sample shop has no {q!r}: a test that cannot fail"
    assert found(db, search.tickets_matching(q, "ID")) == expected


def test_a_word_inside_another_word_is_not_a_match(db, shop):
    # LIKE found 'ulsa' inside 'pulsa'; the index finds words by their start.
    assert found(db, like("ulsa"))
    assert found(db, search.tickets_matching("ulsa", "ID")) == set()


def test_words_out_of_order_or_apart_are_not_a_phrase(db, shop):
    assert found(db, search.tickets_matching("masuk belum", "ID")) == set()
    assert found(db, search.tickets_matching("pulsa pagi", "ID")) == set()


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_input_never_raises(db, shop, q):
    tickets = found(db, search.tickets_matching(q, "ID"))
    contacts = set(db.scalars(select(Contact.id).where(search.contacts_matching(q, "ID"))))
    assert tickets <= set(shop.values())
    assert len(contacts) <= len(SHOP)


def test_like_wildcards_are_plain_characters(db, shop):
    # Only the text that has a % or _ in it, not every ticket.
    assert found(db, search.tickets_matching("%", "ID")) == {shop["+6281200000004"]}
    assert found(db, search.tickets_matching("_", "ID")) == {shop["+6281200000004"]}
    assert found(db, search.tickets_matching("100%", "ID")) == {shop["+6281200000004"]}


def test_short_words_are_found_too(db, shop):
    # Shorter than InnoDB's innodb_ft_min_token_size: LIKE alone on MariaDB, the whole
    # word on SQLite.
    assert found(db, search.tickets_matching("ok kak", "ID")) == {shop["+6281200000005"]}
    assert found(db, search.tickets_matching("2x", "ID")) == {shop["+6281200000006"]}


def test_phone_in_any_spelling_and_ticket_number(db, shop):
    ticket = shop["+6281200000003"]
    for q in ("0812-0000-0003", "+62 812 0000 0003", "6281200000003", "0062812 0000 0003"):
        assert found(db, search.tickets_matching(q, "ID")) == {ticket}, q
    assert ticket in found(db, search.tickets_matching(f"#{ticket}", "ID"))


def test_a_five_digit_ticket_number_is_not_taken_for_a_phone_number_only(db, shop):
    contact = db.scalar(select(Contact.id).where(Contact.phone == "+6281200000001"))
    db.add(Ticket(id=12345, kind="question", status="open", contact_id=contact))
    db.commit()
    assert found(db, search.tickets_matching("12345", "ID")) == {12345}
    assert found(db, search.tickets_matching("#12345", "ID")) == {12345}


def test_contacts_by_name_and_number(db, shop):
    def contacts(q):
        return set(db.scalars(select(Contact.phone).where(search.contacts_matching(q, "ID"))))
    assert contacts("rahmawati") == {"+6281200000001"}
    assert contacts("siti rahma") == {"+6281200000001"}
    assert contacts("pulsa") == {"+6281200000006"}  # Pulsana starts with it
    assert contacts("0812 0000 0002") == {"+6281200000002"}
    assert contacts("santoso budi") == set()


def test_the_index_follows_new_changed_and_deleted_texts(db, shop):
    ticket = shop["+6281200000002"]
    message = Message(direction="out", number="+6281200000002", text="Resi JNE sudah dikirim",
                      status="queued", ticket_id=ticket, created_at=utcnow())
    db.add(message)
    db.commit()
    assert found(db, search.tickets_matching("resi jne", "ID")) == {ticket}
    message.text = "Paket sudah diantar kurir"
    db.commit()
    assert found(db, search.tickets_matching("resi", "ID")) == set()
    assert found(db, search.tickets_matching("diantar kurir", "ID")) == {ticket}
    db.delete(message)
    db.commit()
    assert found(db, search.tickets_matching("diantar", "ID")) == set()
    contact = db.scalar(select(Contact).where(Contact.phone == "+6281200000005"))
    contact.name = "Wayan Sembiring"
    db.commit()
    assert found(db, search.tickets_matching("sembiring", "ID")) == {shop["+6281200000005"]}
    ticket_row = db.get(Ticket, shop["+6281200000001"])
    ticket_row.subject = "Voucher game"
    db.commit()
    assert found(db, search.tickets_matching("voucher", "ID")) == {ticket_row.id}


def test_the_search_reads_the_index_not_every_text(db, shop):
    """The plan: no full read of messages, contacts or tickets for a word."""
    query = select(Ticket.id).where(Ticket.status == "open",
                                    search.tickets_matching("kembung", "ID"))
    compiled = query.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
    if db.get_bind().dialect.name == "sqlite":
        plan = [row[-1] for row in db.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
        assert any("messages_fts VIRTUAL TABLE" in step for step in plan), plan
        scans = [step.split()[1] for step in plan if step.startswith("SCAN ")]
        assert not {"messages", "contacts", "tickets"} & set(scans), plan
    elif db.get_bind().dialect.name == "postgresql":
        db.execute(text("SET LOCAL enable_seqscan = off"))  # a few rows are cheaper read whole
        plan = " ".join(row[0] for row in db.execute(
            text(f"EXPLAIN {str(compiled).replace('%', '%%')}")))
        assert "Bitmap Index Scan on ft_messages_text" in plan, plan
        assert "Bitmap Index Scan on ft_contacts_name" in plan, plan
    else:
        plan = db.execute(text(f"EXPLAIN {str(compiled).replace('%', '%%')}")).mappings().all()
        by_table = {row["table"]: row["type"] for row in plan}
        assert by_table.get("messages") == "fulltext", plan
        assert by_table.get("contacts") == "fulltext", plan


def test_statistics_are_gathered_where_a_table_grew(db, engine):
    db.execute(Contact.__table__.insert(), [{"phone": f"+628130000{i:04d}", "name": f"Ani {i}",
                                            "created_at": utcnow(), "updated_at": utcnow()}
                                           for i in range(1200)])
    db.commit()
    analysed = search.refresh_statistics(db)
    db.commit()
    if engine.dialect.name != "sqlite":
        assert analysed == []  # MariaDB keeps its own
        return
    assert "contacts" in analysed
    assert "contacts" not in search.refresh_statistics(db)  # unchanged since: left alone
    stat = db.execute(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'contacts'")).first()
    assert stat is not None and stat[0].startswith("1200 ")


def test_the_daemon_gathers_statistics_every_hour(sessionmaker, monkeypatch):
    from twisted.internet.task import Clock

    from gateway.daemon import statistics
    from gateway.daemon.database import Database

    runs = []
    monkeypatch.setattr(statistics.search, "refresh_statistics",
                        lambda session: runs.append(session) or [])
    clock = Clock()
    job = statistics.PlannerStatistics(Database(sessionmaker), clock)
    job.startService()
    clock.advance(599)
    assert runs == []  # not in the busy minutes of a start
    clock.advance(1)
    clock.advance(3600)
    assert len(runs) == 2
    job.stopService()


# --- a page of a word search ------------------------------------------------------------

LISTED = re.compile(r'<td><a href="/tickets/(\d+)">')
LINK = re.compile(r'<a href="([^"]+)" rel="(next|prev)">')


@pytest.fixture
def talkative_shop(db):
    """40 tickets, most with 'kembung' in their texts, newest ticket last; then the old
    tickets get new texts with the word, so text order and ticket order disagree: the
    newest texts belong to old tickets. Some have it only in their subject, or in their
    contact's name. [ticket ids]."""
    contact = Contact(phone="+6281300000001", name="Wayan")
    named = Contact(phone="+6281300000002", name="Ibu Kembungsari")
    db.add_all([contact, named])
    db.flush()
    tickets = []
    for i in range(40):
        ticket = Ticket(kind="complaint", status="open" if i % 5 else "closed",
                        subject="Baterai kembung" if i % 7 == 3 else f"Keluhan {i}",
                        contact_id=named.id if i % 11 == 5 else contact.id)
        db.add(ticket)
        db.flush()
        tickets.append(ticket.id)
        texts = [f"baterai kembung nomor {i}"] if i % 3 else ["layar mati"]
        if i % 7 == 3 or i % 11 == 5:
            texts = ["halo kak"]  # found by its subject or its contact's name alone
        texts += ["kembung lagi kak"] * (i % 4 == 0)
        for body in texts:
            db.add(Message(direction="in", number=contact.phone, text=body, status="received",
                           contact_id=contact.id, ticket_id=ticket.id, created_at=utcnow()))
    db.flush()
    for i in (2, 3, 6, 13, 14, 21, 0, 1):  # late texts on old tickets, some found only so
        db.add(Message(direction="in", number=contact.phone, text="masih kembung min",
                       status="received", contact_id=contact.id, ticket_id=tickets[i],
                       created_at=utcnow()))
    db.commit()
    return tickets


def walk(client, address) -> tuple[list[int], list[list[int]]]:
    """Follow a list's "Older" links from `address`: (every id in order, the pages)."""
    pages, seen = [], set()
    while address:
        assert address not in seen, f"the pager went round in a circle at {address}"
        seen.add(address)
        html = client.get(address).get_data(as_text=True)
        pages.append([int(i) for i in LISTED.findall(html)])
        links = {rel: href.replace("&amp;", "&") for href, rel in LINK.findall(html)}
        address = links.get("next")
    return [i for p in pages for i in p], pages


@pytest.mark.parametrize("bounded", [True, False], ids=["newest-texts-first", "all-texts"])
@pytest.mark.parametrize("status", ["active", "all"])
def test_a_word_search_pages_newest_first_and_each_page_continues_exactly(
        db, client, auth, talkative_shop, monkeypatch, bounded, status):
    # Both ways on every database: reading the newest texts first (as SQLite and
    # PostgreSQL do) must give what reading every text gives (as MariaDB does).
    monkeypatch.setattr(search, "STOPS_EARLY",
                        frozenset({"sqlite", "mysql", "mariadb", "postgresql"}) if bounded
                        else frozenset())
    # The newest ticket holding the word among the first few texts, the rest far back.
    auth.login()
    open_only = [] if status == "all" else [Ticket.status.in_(("new", "open", "pending"))]
    expected = list(db.scalars(select(Ticket.id).where(
        search.tickets_matching("kembung", "ID"), *open_only).order_by(Ticket.id.desc())))
    assert len(expected) > 20  # several pages, and more texts than a page reads ahead
    for limit in (3, 7):
        ids, pages = walk(client, f"/tickets?q=kembung&status={status}&limit={limit}")
        assert ids == expected, (limit, pages)
        assert all(len(p) == limit for p in pages[:-1])
    # And back up from the last page with the "Newer" links: the same pages, mirrored.
    html = client.get(f"/tickets?q=kembung&status={status}&limit=5&before={expected[-3]}")
    back = []
    while True:
        text_ = html.get_data(as_text=True)
        back = [int(i) for i in LISTED.findall(text_)] + back
        links = {rel: href.replace("&amp;", "&") for href, rel in LINK.findall(text_)}
        if "prev" not in links:
            break
        html = client.get(links["prev"])
    assert back == expected


def test_a_page_of_a_common_word_reads_only_the_newest_texts(db, talkative_shop):
    """Where the index stops early: the page is found among the newest texts and tickets,
    and the condition asks the index only for those (SQLite: rowid bounds inside FTS5)."""
    since = search.newest_texts(db, "kembung", 5)
    newest = list(db.scalars(select(Message.id).where(Message.text.contains("kembung"))
                             .order_by(Message.id.desc())))
    assert since == newest[4]
    assert search.newest_texts(db, "kembung", len(newest) + 1) is None
    beyond = max(talkative_shop) + 1  # no subject or name counts
    condition = search.tickets_matching("kembung", "ID", texts_since=since,
                                        tickets_from=beyond)
    assert found(db, condition) == set(db.scalars(
        select(Message.ticket_id).where(Message.id >= since,
                                        Message.text.contains("kembung"))))
    start = talkative_shop[20]
    by_ticket = found(db, search.tickets_matching("kembung", "ID", texts_since=newest[0] + 1,
                                                  tickets_from=start))
    assert by_ticket == {t for t in talkative_shop[20:]
                         if t in found(db, or_(Ticket.subject.contains("kembung"),
                                               Ticket.contact.has(Contact.name.contains(
                                                   "Kembung"))))}
    assert by_ticket  # a subject and a name among them
    if db.get_bind().dialect.name == "sqlite":
        sql = str(select(Ticket.id).where(condition).compile(db.get_bind()))
        assert "messages_fts MATCH" in sql and sql.count("rowid >=") == 2, sql
    if db.get_bind().dialect.name in ("mysql", "mariadb"):
        # The newest texts are read by id and asked one by one: FULLTEXT would list
        # every match of the table before the bound (gateway/desk/search.py).
        sql = str(select(Ticket.id).where(condition).compile(db.get_bind()))
        assert "MATCH (messages.text)" not in sql and "messages.text REGEXP" in sql, sql
