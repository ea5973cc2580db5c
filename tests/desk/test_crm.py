"""The CRM domain: contact fields and tags, the timeline, CSV out and in, blocked senders."""
from __future__ import annotations

import csv
import datetime as dt
import io
import time

import pytest
from sqlalchemy import func, insert, select

from gateway.db.models import (
    AuditLog,
    Call,
    Contact,
    Message,
    Order,
    Payment,
    Tag,
    Ticket,
)
from gateway.db.transaction import in_transaction
from gateway.desk import crm
from gateway.desk.inbox import RawPart, store_batch

T0 = dt.datetime(2026, 11, 23, 9, 0, 0)
PHONE = "+6281234567890"


def add_contact(db, phone=PHONE, **fields) -> Contact:
    contact = Contact(phone=phone, **fields)
    db.add(contact)
    db.flush()
    return contact


def audits(db, action):
    return db.scalars(select(AuditLog).where(AuditLog.action == action)).all()


# --- fields and tags -------------------------------------------------------------------------

def test_update_contact_cleans_the_fields_and_audits_what_changed(db):
    contact = add_contact(db, name="Budi")
    changes = crm.update_contact(db, contact, None, name="  Budi   Santoso ",
                                 organisation="Toko Maju", type="Reseller",
                                 tags="VIP, grosir #jakarta vip", notes="line 1\r\nline 2",
                                 opted_out=False, blocked=True)
    db.commit()
    assert (contact.name, contact.organisation, contact.type, contact.notes, contact.blocked) \
        == ("Budi Santoso", "Toko Maju", "reseller", "line 1\nline 2", True)
    assert [t.name for t in contact.tags] == ["grosir", "jakarta", "vip"]
    assert set(changes) == {"name", "organisation", "type", "tags", "notes", "blocked"}
    [row] = audits(db, "contact.update")
    assert row.target_id == contact.id and '"Budi Santoso"' in row.detail

    assert crm.update_contact(db, contact, None, name="Budi Santoso", tags="vip grosir jakarta",
                              blocked=True) == {}
    db.commit()
    assert len(audits(db, "contact.update")) == 1  # nothing changed, nothing audited


@pytest.mark.parametrize("field,value,words", [
    ("type", "vip", "not one of customer, reseller, dealer"),
    ("tags", "ok <script>", "is not a tag"),
    ("tags", "caf\u00e9", "is not a tag"),
    ("tags", "x" * 33, "at most 32"),
    ("tags", " ".join(f"t{i}" for i in range(21)), "at most 20"),
    ("name", "n" * 201, "at most 200"),
    ("organisation", "o" * 201, "at most 200"),
    ("notes", "n" * 10_001, "at most 10000"),
    ("blocked", "maybe", "not yes or no"),
])
def test_a_bad_field_changes_nothing_and_says_why(db, field, value, words):
    contact = add_contact(db, name="Budi", organisation="Toko")
    with pytest.raises(crm.ContactError) as caught:
        crm.update_contact(db, contact, None, **{"name": "Other", "organisation": "Lain",
                                                 field: value})
    assert words in caught.value.problems[field]
    assert (contact.name, contact.organisation) == ("Budi", "Toko")
    assert not audits(db, "contact.update")


def test_tags_are_shared_rows_and_filter_the_list(db):
    a, b, c = (add_contact(db, f"+62812000000{i}") for i in range(3))
    crm.update_contact(db, a, None, tags="vip grosir")
    crm.update_contact(db, b, None, tags="VIP", type="dealer")
    db.commit()
    assert db.scalar(select(func.count()).select_from(Tag)) == 2

    def ids(**filters):
        return set(db.scalars(select(Contact.id).where(*crm.contact_filter(**filters))))
    assert ids(tag="vip") == {a.id, b.id}
    assert ids(tag="#GROSIR") == {a.id}
    assert ids(tag="vip", type="dealer") == {b.id}
    assert ids(type="customer") == {a.id, c.id}
    assert ids(tag="nothing") == set()
    assert crm.tags_of(db, [a.id, c.id]) == {a.id: ["grosir", "vip"], c.id: []}
    assert crm.tag_names(db) == ["grosir", "vip"]


@pytest.mark.parametrize("typed", ["0812-3456-7890", "+62 812 3456 7890", "6281234567890"])
def test_a_number_in_any_spelling_finds_the_contact(db, typed):
    contact = add_contact(db, name="Budi")
    add_contact(db, "+6281299999999", name="Ani")
    found = db.scalars(select(Contact).where(*crm.contact_filter(typed, "ID"))).all()
    assert found == [contact]


# --- the timeline -----------------------------------------------------------------------------

def _message(db, contact, minute, direction="in", text="halo", ticket=None):
    m = Message(direction=direction, number=contact.phone, text=text,
                status="received" if direction == "in" else "sent", contact_id=contact.id,
                ticket_id=ticket.id if ticket else None,
                created_at=T0 + dt.timedelta(minutes=minute))
    db.add(m)
    return m


def _history(db):
    """One contact with each kind of entry, minutes apart, and someone else's texts."""
    contact = add_contact(db, name="Budi")
    other = add_contact(db, "+6281299999999")
    ticket = Ticket(kind="order", status="open", contact_id=contact.id, created_at=T0)
    db.add(ticket)
    db.flush()
    _message(db, contact, 1, ticket=ticket)
    order = Order(contact_id=contact.id, ticket_id=ticket.id, total=51_037,
                  created_at=T0 + dt.timedelta(minutes=2))
    db.add(order)
    db.flush()
    _message(db, contact, 3, "out", "Total Rp 51.037", ticket=ticket)
    db.add(Call(number=contact.phone, contact_id=contact.id,
                started_at=T0 + dt.timedelta(minutes=4)))
    db.add(Payment(contact_id=contact.id, order_id=order.id, amount=51_037,
                   created_at=T0 + dt.timedelta(minutes=5)))
    _message(db, other, 6, text="not Budi's")
    for minute in range(7, 12):
        _message(db, contact, minute, text=f"text {minute}")
    db.commit()
    return contact


def test_the_timeline_merges_every_kind_newest_first(db):
    contact = _history(db)
    page = crm.timeline(db, contact, limit=50)
    assert [e.type for e in page.entries] == ["message"] * 5 + [
        "payment", "call", "message", "order", "message", "ticket"]
    assert [e.at for e in page.entries] == sorted((e.at for e in page.entries), reverse=True)
    assert "not Budi's" not in [getattr(e.row, "text", None) for e in page.entries]
    assert page.next is None


def test_the_timeline_pages_by_cursor_without_gaps_or_repeats(db):
    contact = _history(db)
    whole = [(e.type, e.id) for e in crm.timeline(db, contact, limit=50).entries]
    seen, cursor = [], None
    for _ in range(20):
        page = crm.timeline(db, contact, limit=3, before=cursor)
        assert len(page.entries) <= 3
        seen += [(e.type, e.id) for e in page.entries]
        cursor = page.next
        if cursor is None:
            break
    assert seen == whole


@pytest.mark.parametrize("cursor", ["x12", "m12.m13", "m", "m-1", "m99999999999",
                                    "m1;drop", "m0"])
def test_a_cursor_that_is_not_ours_is_refused(db, cursor):
    contact = add_contact(db)
    with pytest.raises(ValueError, match="not a timeline cursor"):
        crm.timeline(db, contact, before=cursor)


def test_a_contact_with_50000_texts_answers_a_page_with_five_small_queries(db, statements):
    contact = add_contact(db)
    db.commit()
    rows = [dict(direction="in" if i % 2 else "out", number=PHONE, text=f"text {i}",
                 status="received", contact_id=contact.id, incomplete=False, attempts=0,
                 created_at=T0 + dt.timedelta(seconds=i)) for i in range(50_000)]
    db.execute(insert(Message), rows)
    db.commit()
    oldest = db.scalar(select(func.min(Message.id)))
    # The newest page asks each kind; a page deep in the texts only the texts (the other
    # kinds ran out on the first page, and the cursor says so).
    for before, queries in ((None, 5), (f"m{oldest + 60}", 1)):
        started = time.perf_counter()
        with statements() as seen:
            page = crm.timeline(db, contact, limit=50, before=before)
        elapsed = time.perf_counter() - started
        selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
        assert len(selects) == queries and all("LIMIT" in s.upper() for s in selects)
        assert elapsed < 1.0, f"a timeline page took {elapsed:.2f} s"
    assert len(page.entries) == 50 and page.next == f"m{oldest + 10}"
    assert crm.timeline(db, contact, limit=50, before=page.next).next is None


# --- CSV out ----------------------------------------------------------------------------------

def _read(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_export_writes_the_columns_and_neutralises_formulas(db):
    contact = add_contact(db, name="=HYPERLINK(\"http://evil\")", organisation="@SUM(A1)",
                          notes="-2+3", type="dealer", blocked=True)
    crm.update_contact(db, contact, None, tags="vip grosir")
    add_contact(db, "+6281299999999", name="Ani, <b>", notes="'=already")
    db.commit()
    rows = _read("".join(crm.export_csv(db)))
    assert rows[0] == list(crm.CSV_COLUMNS)
    assert rows[1] == ["'+6281234567890", "'=HYPERLINK(\"http://evil\")", "'@SUM(A1)",
                       "dealer", "grosir vip", "'-2+3", "no", "yes"]
    assert rows[2][:2] == ["'+6281299999999", "Ani, <b>"] and rows[2][5] == "''=already"
    for row in rows[1:]:
        assert not any(cell[:1] in "=+-@\t\r" for cell in row if cell)


def test_export_streams_in_chunks_and_keeps_a_filter(db):
    for i in range(7):
        add_contact(db, f"+62812000000{i}", type="dealer" if i % 2 else "customer")
    db.commit()
    chunks = list(crm.export_csv(db, chunk=2))
    assert len(chunks) == 1 + 4  # the header, then 2 + 2 + 2 + 1
    assert len(_read("".join(chunks))) == 8
    dealers = _read("".join(crm.export_csv(db, crm.contact_filter(type="dealer"))))
    assert [r[3] for r in dealers[1:]] == ["dealer"] * 3


def test_export_then_import_is_an_exact_round_trip(db):
    contact = add_contact(db, name="=cmd|' /C calc'!A0", notes="multi\nline, \"quoted\"",
                          organisation="'=x")
    crm.update_contact(db, contact, None, tags="vip", opted_out=True)
    db.commit()
    exported = "".join(crm.export_csv(db)).encode()
    result = crm.import_csv(db, exported, "ID", None)
    assert (result.created, result.updated, result.unchanged, result.errors) == ([], [], 1, [])
    assert contact.name == "=cmd|' /C calc'!A0" and contact.organisation == "'=x"


# --- CSV in -----------------------------------------------------------------------------------

def test_import_upserts_by_number_in_any_form(db):
    known = add_contact(db, name="Budi", notes="keep me")
    db.commit()
    data = ("\ufeffphone;name;type;tags;notes;blocked\n"
            "0812-3456-7890;Budi Santoso;reseller;vip;;\n"
            "+62 812 9999 9999;Ani;;grosir jakarta;baru;ya\n"
            "0062 813 1111 2222;Cici;dealer;;;0\n").encode("utf-8")
    result = crm.import_csv(db, data, "ID", None)
    db.commit()
    assert result.updated == [PHONE] and result.errors == []
    assert sorted(result.created) == ["+6281299999999", "+6281311112222"]
    assert (known.name, known.type, known.notes) == ("Budi Santoso", "reseller", "keep me")
    ani = db.scalar(select(Contact).where(Contact.phone == "+6281299999999"))
    assert (ani.name, ani.type, ani.notes, ani.blocked) == ("Ani", "customer", "baru", True)
    assert [t.name for t in ani.tags] == ["grosir", "jakarta"]
    [row] = audits(db, "contact.import")
    assert "+6281299999999" in row.detail


def test_importing_the_same_file_twice_changes_nothing(db):
    data = b"phone,name,tags\n081234567890,Budi,vip\n081299999999,Ani,\n"
    first = crm.import_csv(db, data, "ID", None)
    db.commit()
    stamps = dict(db.execute(select(Contact.phone, Contact.updated_at)).all())
    second = crm.import_csv(db, data, "ID", None)
    db.commit()
    assert len(first.created) == 2
    assert (second.created, second.updated, second.unchanged) == ([], [], 2)
    assert dict(db.execute(select(Contact.phone, Contact.updated_at)).all()) == stamps
    assert len(audits(db, "contact.import")) == 1


def test_without_a_header_the_columns_are_the_exports(db):
    result = crm.import_csv(db, "081234567890,Budi,Toko Maju,dealer,vip,,no,no\n", "ID", None)
    assert result.created == [PHONE]
    contact = db.scalar(select(Contact))
    assert (contact.name, contact.organisation, contact.type) == ("Budi", "Toko Maju", "dealer")


def test_each_bad_line_is_named_and_the_good_ones_are_imported(db):
    data = (b"phone,name,type,tags,blocked\n"
            b"081234567890,Budi,customer,,\n"
            b"not-a-number,X,,,\n"
            b",no number,,,\n"
            b"081299999999,Ani,vip,,\n"
            b"081311112222,Cici,,bad tag!,\n"
            b"0812 3456 7890,Budi again,,,\n"
            b"081344445555,Dodi,,,maybe\n"
            b"081355556666,Eka,,,,extra\n"
            b"081366667777,\"Fina\n"
            b"081377778888,Gita,,,\n")
    result = crm.import_csv(db, data, "ID", None)
    assert result.created == [PHONE]
    assert result.errors == [
        "line 3: 'not-a-number' is not a phone number",
        "line 4: no phone number",
        "line 5: the type 'vip' is not one of customer, reseller, dealer",
        "line 6: 'tag!' is not a tag: use letters a-z, digits, '-' and '_', at most 32 "
        "characters",
        f"line 7: {PHONE} is on line 2 already; only that line is imported",
        "line 8: 'maybe' is not yes or no (write 1 or 0)",
        "line 9: 6 fields, but there are 5 columns",
        # An unclosed quote would swallow the rest of the file into one field.
        "line 10: cannot be read as CSV, check its quotes (unexpected end of data)",
    ]
    assert db.scalar(select(func.count()).select_from(Contact)) == 1


@pytest.mark.parametrize("data,words", [
    ("phone,name\n081234567890,B\u00fcdi\n".encode("latin-1"), "not UTF-8"),
    (b"phone,name\x00\n", "not text"),
    (b"name,organisation\nBudi,Toko\n", "names no phone column"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8"),
])
def test_a_file_that_cannot_be_read_imports_nothing(db, data, words):
    add_contact(db, name="Budi")
    db.commit()
    with pytest.raises(crm.CsvRejected) as caught:
        crm.import_csv(db, data, "ID", None)
    assert words in caught.value.problems[0]
    assert db.scalar(select(func.count()).select_from(Contact)) == 1


def test_too_many_lines_is_refused_whole(db, monkeypatch):
    monkeypatch.setattr(crm, "MAX_IMPORT_LINES", 3)
    data = "".join(f"08123456789{i},N{i}\n" for i in range(5))
    with pytest.raises(crm.CsvRejected, match="more than 3 contacts"):
        crm.import_csv(db, data, "ID", None)


def test_vtiger_style_headers_are_understood(db):
    data = ("First Name,Mobile Phone,Organization Name,Description,Lead Source\n"
            "Budi,0812-3456-7890,Toko Maju,<script>alert(1)</script>,Web\n")
    result = crm.import_csv(db, data, "ID", None)
    assert result.created == [PHONE]
    assert result.ignored_columns == ["First Name", "Lead Source"]
    contact = db.scalar(select(Contact))
    assert (contact.organisation, contact.notes) == ("Toko Maju", "<script>alert(1)</script>")


# --- blocked senders --------------------------------------------------------------------------

def _text_arrives(sessionmaker, config, text, location=1):
    part = RawPart(location=location, sender="081234567890", text=text, smsc_time=T0,
                   reference=None, part_number=1, part_count=1)
    in_transaction(sessionmaker, store_batch, "modem1", [part], config, T0)


def test_a_blocked_sender_is_stored_but_gets_no_reply_and_no_ticket(db, sessionmaker, config):
    add_contact(db, blocked=True)
    db.commit()
    _text_arrives(sessionmaker, config, "KOMPLAIN pulsa belum masuk")
    db.expire_all()
    [message] = db.scalars(select(Message)).all()
    assert (message.direction, message.text, message.ticket_id) == (
        "in", "KOMPLAIN pulsa belum masuk", None)
    assert message.contact_id is not None and message.intent == "complaint"
    assert db.scalar(select(func.count()).select_from(Ticket)) == 0

    db.scalar(select(Contact)).blocked = False  # unblocked: answered as anyone else
    db.commit()
    _text_arrives(sessionmaker, config, "KOMPLAIN masih belum", location=2)
    assert db.scalar(select(func.count()).select_from(Ticket)) == 1
    assert db.scalar(select(func.count()).select_from(Message)
                     .where(Message.direction == "out")) == 1
