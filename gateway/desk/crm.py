"""The CRM: a contact's details and tags, one timeline of everything they did, and the
contact list as CSV out and in.

Every function works inside the caller's session and leaves the commit to the caller, so
a change and its audit row land in one transaction, and a failed import leaves nothing.
"""
from __future__ import annotations

import csv
import datetime as dt
import heapq
import io
import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gateway.db.models import (
    CONTACT_TYPES,
    Call,
    Contact,
    ContactTag,
    Message,
    Order,
    Payment,
    Tag,
    Ticket,
    utcnow,
)
from gateway.desk import search
from gateway.desk.users import audit
from gateway.sms.phone import normalise

MAX_NAME = 200  # the columns' sizes
MAX_ORGANISATION = 200
MAX_NOTES = 10_000
MAX_TAGS = 20  # per contact
MAX_TAG = 32
MAX_ID = 2**31 - 1

# Tags are codes to filter by and to address broadcasts to: ASCII lower case, so that
# "VIP" and "vip" are one tag and every database compares them alike (MariaDB's
# utf8mb4_unicode_ci would take "café" and "cafe" for one name, SQLite would not).
_TAG = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TAG_SEPARATORS = re.compile(r"[\s,;]+")

EDITABLE = ("name", "organisation", "type", "tags", "notes", "opted_out", "blocked")
_FLAGS = ("opted_out", "blocked")


class ContactError(ValueError):
    """A change that was refused: `problems` maps each bad field to a sentence."""

    def __init__(self, problems: dict[str, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


# --- one contact's details ---------------------------------------------------------------

def parse_tags(text: str | list | tuple) -> list[str]:
    """'VIP, grosir #jakarta' -> ['grosir', 'jakarta', 'vip']; ValueError naming a bad tag."""
    words = text if isinstance(text, list | tuple) else _TAG_SEPARATORS.split(text or "")
    names: list[str] = []
    for word in words:
        name = word.strip().lstrip("#").lower()
        if not name:
            continue
        if len(name) > MAX_TAG or not _TAG.fullmatch(name):
            raise ValueError(f"{word.strip()[:40]!r} is not a tag: use letters a-z, digits, "
                             f"'-' and '_', at most {MAX_TAG} characters")
        if name not in names:
            names.append(name)
    if len(names) > MAX_TAGS:
        raise ValueError(f"{len(names)} tags is too many; at most {MAX_TAGS} per contact")
    return sorted(names)


def _text(limit: int, what: str, multiline: bool = False):
    def clean(value) -> str | None:
        text = str(value or "")
        text = text.replace("\r\n", "\n").strip() if multiline else " ".join(text.split())
        if len(text) > limit:
            raise ValueError(f"the {what} is {len(text)} characters; at most {limit}")
        return text or None
    return clean


def _type(value) -> str:
    kind = str(value or "").strip().lower()
    if kind not in CONTACT_TYPES:
        raise ValueError(f"the type {str(value)[:20]!r} is not one of {', '.join(CONTACT_TYPES)}")
    return kind


_YES = ("1", "yes", "y", "true", "ya", "x")
_NO = ("0", "no", "n", "false", "tidak", "t", "")


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value or "").strip().lower()
    if word in _YES:
        return True
    if word in _NO:
        return False
    raise ValueError(f"{str(value)[:20]!r} is not yes or no (write 1 or 0)")


_CLEAN = {
    "name": _text(MAX_NAME, "name"),
    "organisation": _text(MAX_ORGANISATION, "organisation"),
    "type": _type,
    "tags": parse_tags,
    "notes": _text(MAX_NOTES, "notes", multiline=True),
    "opted_out": _flag,
    "blocked": _flag,
}


def clean(fields: dict) -> dict:
    """The given fields validated and normalised; ContactError naming every bad one."""
    values, problems = {}, {}
    for key, value in fields.items():
        try:
            values[key] = _CLEAN[key](value)
        except ValueError as e:
            problems[key] = str(e)
    if problems:
        raise ContactError(problems)
    return values


def update_contact(session, contact: Contact, user_id: int | None, via: str = "web",
                   **fields) -> dict:
    """Change the given EDITABLE fields, with one audit row; nothing changes when any
    field is wrong (ContactError). Returns {field: [old, new]} of what changed."""
    changes = _apply(session, contact, clean(fields), {})
    if changes:
        audit(session, user_id, "contact.update", "contact", contact.id,
              {"via": via, **changes})
    return changes


def _apply(session, contact: Contact, values: dict, tag_cache: dict) -> dict:
    changes = {}
    for key, new in values.items():
        if key == "tags":
            old = [t.name for t in contact.tags] if contact.id is not None else []
            if old != new:
                contact.tags = _tags_named(session, new, tag_cache)
        else:
            old = getattr(contact, key)
            if key in _FLAGS:
                old = bool(old)
            if old != new:
                setattr(contact, key, new)
        if old != new:
            changes[key] = [old, new]
    if changes and contact.id is not None:
        contact.updated_at = utcnow()  # a change of tags alone touches no contacts column
    return changes


def _tags_named(session, names: list[str], cache: dict) -> list[Tag]:
    """The Tag rows of these names, made where new. Two users making one new tag at the
    same moment: the unique name refuses the second at commit (IntegrityError), whose
    change is then not saved and can be made again."""
    missing = [n for n in names if n not in cache]
    if missing:
        cache.update({t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(missing)))})
    for name in names:
        if name not in cache:
            cache[name] = Tag(name=name)
            session.add(cache[name])
    return [cache[n] for n in names]


def tags_of(session, contact_ids) -> dict[int, list[str]]:
    """Each contact's tag names (sorted), for a page of contacts in one query."""
    found: dict[int, list[str]] = {i: [] for i in contact_ids}
    if found:
        for contact_id, name in session.execute(
                select(ContactTag.contact_id, Tag.name).join(Tag, Tag.id == ContactTag.tag_id)
                .where(ContactTag.contact_id.in_(list(found))).order_by(Tag.name)):
            found[contact_id].append(name)
    return found


def tag_names(session, limit: int = 500) -> list[str]:
    """The tags in use, by name, for the list's filter."""
    return list(session.scalars(select(Tag.name).where(
        Tag.id.in_(select(ContactTag.tag_id))).order_by(Tag.name).limit(limit)))


def contact_filter(q: str = "", country: str = "ID", type: str | None = None,
                   tag: str | None = None) -> list:
    """Conditions on Contact for the contact list and its export: the search box (a number
    in any spelling, or a name: gateway.desk.search), a type and a tag."""
    conditions = []
    if q:
        conditions.append(search.contacts_matching(q, country))
    if type in CONTACT_TYPES:
        conditions.append(Contact.type == type)
    if tag:
        conditions.append(Contact.id.in_(
            select(ContactTag.contact_id).join(Tag, Tag.id == ContactTag.tag_id)
            .where(Tag.name == tag.strip().lstrip("#").lower())))
    return conditions


# --- the timeline ------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    type: str  # message, call, ticket, order, payment
    id: int
    at: dt.datetime
    row: object  # the Message, Call, Ticket, Order or Payment


@dataclass(frozen=True)
class Timeline:
    entries: list[Entry]
    next: str | None  # the cursor for the older page, None at the oldest


# Each kind: its letter in a cursor, and how to read one contact's rows of it, newest
# first by id through an index that starts with the contact (or the number).
_KINDS = {
    "message": ("m", Message, lambda c: Message.number == c.phone, "created_at"),
    "call": ("c", Call, lambda c: Call.number == c.phone, "started_at"),
    "ticket": ("t", Ticket, lambda c: Ticket.contact_id == c.id, "created_at"),
    "order": ("o", Order, lambda c: Order.contact_id == c.id, "created_at"),
    "payment": ("p", Payment, lambda c: Payment.contact_id == c.id, "created_at"),
}
_LETTERS = {spec[0]: kind for kind, spec in _KINDS.items()}
_CURSOR = re.compile(r"[a-z]\d{1,10}(\.[a-z]\d{1,10})*")


def parse_cursor(text: str) -> dict[str, int]:
    """'m1200.t7' -> {"message": 1200, "ticket": 7}; ValueError for anything else."""
    bounds = {}
    if _CURSOR.fullmatch(text or ""):
        for part in text.split("."):
            kind, number = _LETTERS.get(part[0]), int(part[1:])
            if kind is None or kind in bounds or not 1 <= number <= MAX_ID + 1:
                break
            bounds[kind] = number
        else:
            return bounds
    raise ValueError(f"{(text or '')[:40]!r} is not a timeline cursor; pass on the "
                     "'next' of the page before")


def timeline(session, contact: Contact, limit: int = 50, before: str | None = None) -> Timeline:
    """The contact's texts in and out, calls, tickets, orders and payments, newest first,
    `limit` at a time; `before` is the `next` of the page before.

    Each kind is read by its own index, at most limit+1 rows, and the kinds are merged by
    time, so a contact with 50,000 texts costs what one with fifty does. The cursor keeps,
    for each kind with rows left, the id below which its next page starts; a kind is
    paged by id, which is its order in time since rows are written as things happen.
    """
    bounds = parse_cursor(before) if before else dict.fromkeys(_KINDS)
    fetched, streams = {}, []
    for kind, bound in bounds.items():
        _letter, model, of_contact, at = _KINDS[kind]
        query = select(model).where(of_contact(contact))
        if bound is not None:
            query = query.where(model.id < bound)
        rows = fetched[kind] = session.scalars(
            query.order_by(model.id.desc()).limit(limit + 1)).all()
        streams.append([Entry(kind, r.id, getattr(r, at) or dt.datetime.min, r) for r in rows])
    # Merging keeps each kind's own order, so its page ends exactly where its cursor says.
    entries = list(itertools.islice(
        heapq.merge(*streams, key=lambda e: (e.at, e.id), reverse=True), limit))
    taken = Counter(e.type for e in entries)
    following = []
    for kind, rows in fetched.items():
        n = taken[kind]
        if len(rows) > n:  # this kind goes on past the page
            bound = rows[n - 1].id if n else (bounds[kind] or rows[0].id + 1)
            following.append(f"{_KINDS[kind][0]}{bound}")
    return Timeline(entries, ".".join(following) or None)


# --- CSV out -------------------------------------------------------------------------------

CSV_COLUMNS = ("phone", "name", "organisation", "type", "tags", "notes", "opted_out",
               "blocked")
# A cell a spreadsheet would run as a formula (=, +, -, @, and tab or CR before them) gets
# a leading apostrophe; one already quoted so gets another, so an import undoes exactly
# one and the round trip is exact.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
EXPORT_CHUNK = 1000


def _cell(value) -> str:
    if isinstance(value, bool):
        value = "yes" if value else "no"
    text = "" if value is None else str(value)
    return "'" + text if _FORMULA.match(text) else text


def export_csv(session, conditions=(), chunk: int = EXPORT_CHUNK) -> Iterator[str]:
    """The contacts matching `conditions` (contact_filter) as CSV text, a chunk at a time
    in id order, so 100,000 contacts stream without being held in memory. Starts with a
    BOM, which spreadsheet programs need to read UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + out.getvalue()
    last = 0
    while True:
        out.seek(0)
        out.truncate()
        rows = session.scalars(select(Contact).where(*conditions, Contact.id > last)
                               .order_by(Contact.id).limit(chunk)).all()
        if not rows:
            return
        tags = tags_of(session, [c.id for c in rows])
        for c in rows:
            writer.writerow([_cell(v) for v in (
                c.phone, c.name, c.organisation, c.type, " ".join(tags[c.id]), c.notes,
                bool(c.opted_out), bool(c.blocked))])
        yield out.getvalue()
        last = rows[-1].id  # the session's identity map is weak: written rows are freed


# --- CSV in --------------------------------------------------------------------------------

MAX_IMPORT_LINES = 20_000
MAX_FIELD = 20_000  # characters in one cell; a note is at most MAX_NOTES
# Header names as people write them, vTiger's export among them, -> our columns.
_HEADERS = {
    "phone": "phone", "mobile": "phone", "mobile phone": "phone", "phone number": "phone",
    "telepon": "phone", "no hp": "phone", "hp": "phone", "nomor": "phone", "nomor hp": "phone",
    "name": "name", "nama": "name", "full name": "name",
    "organisation": "organisation", "organization": "organisation",
    "organization name": "organisation", "company": "organisation",
    "perusahaan": "organisation", "toko": "organisation",
    "type": "type", "jenis": "type", "tipe": "type",
    "tags": "tags", "tag": "tags", "label": "tags",
    "notes": "notes", "note": "notes", "description": "notes", "catatan": "notes",
    "opted_out": "opted_out", "opted out": "opted_out", "stop": "opted_out",
    "blocked": "blocked", "blokir": "blocked",
}
_UNQUOTE = re.compile(r"'+[=+\-@\t\r]")


class CsvRejected(Exception):
    """The whole file was refused and nothing imported; `problems` says why."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class Imported:
    created: list[str] = field(default_factory=list)  # phone numbers
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)  # lines not imported, one sentence each
    ignored_columns: list[str] = field(default_factory=list)


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvRejected(["the file is not UTF-8 text; in the spreadsheet program save it "
                           "as \"CSV UTF-8\""]) from None
    if "\x00" in text:
        raise CsvRejected(["the file is not text (it holds NUL bytes); upload a CSV file"])
    return text


def _delimiter(text: str) -> str:
    """';' where the first line has more of them than commas (a spreadsheet in an
    Indonesian or European locale writes those), else ','."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return ";" if first.count(";") > first.count(",") else ","


def _header(cells: list[str]) -> list[str | None] | None:
    """The columns a header line names (None for one not ours), or None when the line is
    not a header but a contact."""
    names = [" ".join(c.strip().lower().replace("_", " ").split()) for c in cells]
    columns = [_HEADERS.get(n) or _HEADERS.get(n.replace(" ", "_")) for n in names]
    if any(columns):
        return columns
    if cells and cells[0].strip() and not any(ch.isdigit() for ch in cells[0]):
        return columns  # words, not a number: a header of columns we do not know
    return None


def _records(text: str, delimiter: str, errors: list[str]):
    """(first line number, cells) of each CSV record; a record csv cannot read is an
    error for its line, and the reading goes on."""
    # strict: a stray quote is an error for its line, not a field that swallows the rest
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            errors.append(f"line {line}: cannot be read as CSV, check its quotes ({e})")
            line = reader.line_num + 1
            continue
        yield line, cells
        line = reader.line_num + 1


def import_csv(session, data: bytes | str, country: str, user_id: int | None,
               via: str = "web") -> Imported:
    """Add or update contacts from a CSV (UTF-8 with or without BOM, ',' or ';'), matched
    by phone number in any spelling. The first line may name the columns (CSV_COLUMNS,
    or common names such as 'mobile' or 'nama'); without one they are CSV_COLUMNS in
    order. An empty cell leaves that field as it is; tags replace the contact's tags.

    A line that cannot be read is skipped and named in `errors`; the others are imported.
    CsvRejected for a file that cannot be read at all, which changes nothing. The same
    file imported twice changes nothing the second time."""
    text = _decode(data)
    result = Imported()
    columns: list[str | None] | None = None
    plan: dict[str, tuple[int, dict]] = {}  # phone -> (line, values)
    count = 0
    for line, cells in _records(text, _delimiter(text), result.errors):
        if not any(c.strip() for c in cells):
            continue
        count += 1
        if count > MAX_IMPORT_LINES:
            raise CsvRejected([f"the file has more than {MAX_IMPORT_LINES} contacts; split "
                               "it into smaller files"])
        if columns is None:
            columns = _header(cells)
            if columns is not None:
                if "phone" not in columns:
                    raise CsvRejected(["the first line names no phone column; call it "
                                       f"'phone' (the columns: {', '.join(CSV_COLUMNS)})"])
                result.ignored_columns = [c.strip()[:40] for c, col in zip(cells, columns)
                                          if col is None and c.strip()]
                continue
            columns = list(CSV_COLUMNS)
        _plan_line(line, cells, columns, country, plan, result.errors)
    _write(session, plan, result)
    if result.created or result.updated:
        audit(session, user_id, "contact.import", "contact", None, {
            "via": via, "created": result.created, "updated": result.updated,
            "unchanged": result.unchanged, "errors": len(result.errors)})
    return result


def _plan_line(line: int, cells: list[str], columns, country: str, plan: dict,
               errors: list[str]) -> None:
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
        errors.append(f"line {line}: {len(cells)} fields, but there are {len(columns)} "
                      "columns")
        return
    if any(len(c) > MAX_FIELD for c in cells):
        errors.append(f"line {line}: a field is longer than {MAX_FIELD} characters")
        return
    raw = {}
    for column, cell in zip(columns, cells):
        cell = cell.strip()
        if _UNQUOTE.match(cell):
            cell = cell[1:]  # the apostrophe our export put before a formula character
        if column is not None and cell and column not in raw:
            raw[column] = cell
    written = raw.pop("phone", "")
    phone = normalise(written, country)
    if phone is None:
        errors.append(f"line {line}: {written[:32]!r} is not a phone number" if written else
                      f"line {line}: no phone number")
        return
    if phone in plan:
        errors.append(f"line {line}: {phone} is on line {plan[phone][0]} already; only that "
                      "line is imported")
        return
    try:
        values = clean(raw)
    except ContactError as e:
        errors.append(f"line {line}: {e}")
        return
    plan[phone] = (line, values)


def _write(session, plan: dict, result: Imported) -> None:
    phones = list(plan)
    known: dict[str, Contact] = {}
    for start in range(0, len(phones), 500):
        known.update({c.phone: c for c in session.scalars(
            select(Contact).options(selectinload(Contact.tags))
            .where(Contact.phone.in_(phones[start:start + 500])))})
    tag_cache: dict[str, Tag] = {}
    now = utcnow()
    for phone, (_line, values) in plan.items():
        contact = known.get(phone)
        if contact is None:
            contact = Contact(phone=phone, created_at=now, updated_at=now, type="customer",
                              opted_out=False, blocked=False)
            session.add(contact)
            _apply(session, contact, values, tag_cache)
            result.created.append(phone)
        elif _apply(session, contact, values, tag_cache):
            result.updated.append(phone)
        else:
            result.unchanged += 1
    session.flush()
