"""`helpdesk import kalkun --from URL`: a Gammu SMSD + Kalkun database moved in.

What comes over, read in batches by ID so a database of millions of rows is never held
in memory:

- Kalkun's phonebook (`pbk`) becomes contacts, matched by their E.164 number; its groups
  (`pbk_groups`, members from `user_group` and the older `pbk.GroupID`) become contact
  groups, matched by name.
- `inbox` becomes received texts; the parts of a long text (one row each, linked by the
  concatenation reference in their UDH) become one text again.
- `sentitems` becomes sent texts with Gammu's status read as sent, delivered, failed or
  unknown; the parts of a long text share one ID.
- `outbox` (with `outbox_multipart`) becomes *failed* texts, never queued ones: they were
  waiting to go out of the old system, and queueing them here would send old texts
  again, maybe twice. They wait in the outbox folder for an operator to retry or leave.

Every text is history: it is written as it was, opens no ticket, is read by no keyword
and gets no automatic reply. Each imported row is remembered (kalkun_imported), so a
second run adds only what is new. SMSD schema versions 14 to 18 are read (16 dropped
Gammu's own phonebook tables, 17 added Status and StatusCode columns, 18 inbox grouping
columns): only the columns all of them have are used.
"""
from __future__ import annotations

import datetime as dt
import heapq
import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import column, create_engine, func, inspect, select, table, tuple_
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from gateway.db.models import (
    Contact,
    ContactGroup,
    ContactGroupMember,
    KalkunImported,
    Message,
    utcnow,
)
from gateway.desk.inbox import GAP
from gateway.sms.phone import normalise

SUPPORTED_VERSIONS = range(14, 19)
BATCH = 1000
TRASH_FOLDER, SPAM_FOLDER = 5, 6  # Kalkun's user_folders 5 and 6
OUTBOX_NOTE = "waiting in Kalkun's outbox at the move, never sent; retry to send it now"
# sentitems.Status -> our status; what is not here (SendingOK, SendingOKNoReport,
# DeliveryPending, DeliveryUnknown) went out, so it is 'sent'.
FAILED_STATES = ("SendingError", "DeliveryFailed")
UNKNOWN_STATES = ("Error",)  # SMSD's own error: the text may or may not have gone


class KalkunImportError(Exception):
    """A sentence for the user: the source cannot be read as a Gammu SMSD database."""


@dataclass
class Summary:
    imported: Counter = field(default_factory=Counter)  # what -> count
    already: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    version: int | None = None

    def lines(self) -> list[str]:
        kinds = ("contacts", "groups", "group members", "received texts", "sent texts",
                 "outbox texts (as failed)")
        if self.imported["contacts from texts"]:
            kinds = kinds[:1] + ("contacts from texts",) + kinds[1:]
        out = [f"Gammu SMSD schema version {self.version}"]
        for kind in kinds:
            out.append(f"{kind}: {self.imported[kind]} imported, {self.already[kind]} "
                       "already there")
        for reason, count in sorted(self.skipped.items()):
            out.append(f"skipped: {count} {reason}")
        return out


@dataclass
class _Text:
    """One text to write, from one or more source rows of one table."""
    source_table: str
    ids: list[int]
    at: dt.datetime
    direction: str
    raw_number: str
    text: str
    status: str
    incomplete: bool = False
    sent_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    last_error: str | None = None


class Progress:
    """One line rewritten in place on a terminal; silent elsewhere (a log, a cron job)."""

    def __init__(self, total: int, stream=None):
        self.total, self.done, self.stream = max(total, 1), 0, stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._shown = 0.0

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.live and (now - self._shown > 0.2 or self.done >= self.total):
            self._shown = now
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * 30)
            self.stream.write(f"\r[{bar:<30}] {share:4.0%} {self.done}/{self.total} rows")
            self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def open_source(url: str) -> Engine:
    """An engine on the SMSD database; a clear sentence for a URL that is not one."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise KalkunImportError(f"{url!r} is not a database URL (e.g. "
                                "mysql+pymysql://user:password@host/kalkun)") from None
    backend = parsed.get_backend_name()
    options = {}
    if backend == "mysql":
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        # TIMESTAMP columns (Gammu's on MySQL) then come back in UTC, whatever the server's
        # time zone; DATETIME columns are read as local time like PostgreSQL's and SQLite's.
        options["connect_args"] = {"init_command": "SET time_zone = '+00:00'"}
    elif backend == "sqlite" and not (parsed.database and _exists(parsed.database)):
        raise KalkunImportError(f"no SQLite database at {parsed.database!r}")
    try:
        return create_engine(parsed, **options)
    except (NoSuchModuleError, ImportError) as e:
        raise KalkunImportError(f"cannot open {parsed.render_as_string(hide_password=True)}: "
                                f"{e}") from None


def _exists(path: str) -> bool:
    return os.path.isfile(path)


def source_name(url: str) -> str:
    """The source's identity in kalkun_imported: the URL without user and password, so
    the same database named the same way is recognised on the next run."""
    parsed = make_url(url)
    host = f"{parsed.host or ''}:{parsed.port}" if parsed.port else (parsed.host or "")
    return f"{parsed.get_backend_name()}://{host}/{parsed.database or ''}"[:200]


class _Source:
    """Reads the SMSD tables in ID order, `batch` rows a query."""

    def __init__(self, engine: Engine, local_zone: ZoneInfo, batch: int):
        self.engine, self.zone, self.batch = engine, local_zone, batch
        try:
            names = set(inspect(engine).get_table_names())
        except DBAPIError as e:
            raise KalkunImportError(f"cannot read the source database: {e.orig}") from None
        missing = {"gammu", "inbox", "sentitems", "outbox"} - names
        if missing:
            raise KalkunImportError(
                "not a Gammu SMSD database: it has no table " + ", ".join(sorted(missing)))
        self.tables = names
        self.columns = {name: {c["name"]: c["type"] for c in inspect(engine).get_columns(name)}
                        for name in ("inbox", "sentitems", "outbox", "pbk") if name in names}
        with engine.connect() as conn:
            version = conn.scalar(select(func.max(column("Version"))).select_from(table("gammu")))
        if version not in SUPPORTED_VERSIONS:
            raise KalkunImportError(
                f"Gammu SMSD schema version {version} is not one this import reads "
                f"({SUPPORTED_VERSIONS.start}-{SUPPORTED_VERSIONS.stop - 1}); upgrade the "
                "database with Gammu's own scripts first")
        self.version = version
        self.utc_timestamps = engine.dialect.name == "mysql"

    def count(self, name: str) -> int:
        if name not in self.tables:
            return 0
        with self.engine.connect() as conn:
            return conn.scalar(select(func.count()).select_from(table(name)))

    def has(self, name: str, col: str) -> bool:
        return col in self.columns.get(name, {})

    def when(self, name: str, col: str, value) -> dt.datetime | None:
        """A source time as naive UTC."""
        if value is None or value == "":
            return None
        if isinstance(value, str):  # SQLite keeps its text
            try:
                value = dt.datetime.fromisoformat(value)
            except ValueError:
                return None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time())
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        kind = str(self.columns.get(name, {}).get(col, "")).upper()
        if self.utc_timestamps and kind.startswith("TIMESTAMP"):
            return value  # the session's time zone is UTC
        return value.replace(tzinfo=self.zone).astimezone(dt.UTC).replace(tzinfo=None)

    def rows(self, name: str, cols: list[str], whole_id: bool = False) -> Iterator[dict]:
        """Every row of `name` in ID order. With whole_id, the rows of one ID (its parts,
        by SequencePosition) never straddle two queries."""
        src = table(name, *[column(c) for c in cols])
        ident = src.c.ID
        order = [ident, src.c.SequencePosition] if whole_id else [ident]
        last = None
        with self.engine.connect() as conn:
            while True:
                query = select(src).order_by(*order).limit(self.batch)
                if last is not None:
                    query = query.where(ident > last)
                rows = [dict(r._mapping) for r in conn.execute(query)]
                full = len(rows) == self.batch
                if whole_id and full and rows[0]["ID"] != rows[-1]["ID"]:
                    tail = rows[-1]["ID"]
                    rows = [r for r in rows if r["ID"] != tail]  # read again next time
                if rows:
                    last = rows[-1]["ID"]
                    yield from rows
                if not full:
                    return


# --- reading the texts ---------------------------------------------------------------------

def _concat_reference(udh: str | None) -> tuple[int, int, int] | None:
    """(reference, parts, this part) from a UDH in hex, or None for a text of one part."""
    try:
        data = bytes.fromhex(udh or "")
    except ValueError:
        return None
    if len(data) < 2 or data[0] + 1 > len(data):
        return None
    i, end = 1, data[0] + 1
    while i + 1 < end:
        iei, length = data[i], data[i + 1]
        body = data[i + 2:i + 2 + length]
        if iei == 0x00 and length == 3 and len(body) == 3:
            return body[0], body[1], body[2]
        if iei == 0x08 and length == 4 and len(body) == 4:
            return body[0] << 8 | body[1], body[2], body[3]
        i += 2 + length
    return None


def _skip_folder(source: _Source, name: str, row: dict, include_trash: bool) -> str | None:
    if include_trash or not source.has(name, "id_folder"):
        return None
    return {TRASH_FOLDER: "texts in Kalkun's trash",
            SPAM_FOLDER: "texts in Kalkun's spam folder"}.get(row.get("id_folder"))


def _received(source: _Source, skipped: Counter, include_trash: bool,
              progress: Progress) -> Iterator[_Text]:
    cols = ["ID", "ReceivingDateTime", "SenderNumber", "TextDecoded", "UDH"]
    if source.has("inbox", "id_folder"):
        cols.append("id_folder")
    waiting: dict[tuple, list[dict]] = {}  # a long text's parts read so far

    def joined(parts: list[dict], count: int) -> _Text:
        by_number = {}
        for part in parts:
            by_number.setdefault(part["_part"], part)
        chunks, missing, gap_open = [], False, False
        for number in range(1, count + 1):
            if number in by_number:
                chunks.append(by_number[number]["TextDecoded"] or "")
                gap_open = False
            else:
                if not gap_open:  # several missing parts in a row show as one gap
                    chunks.append(GAP)
                missing = gap_open = True
        return _text_in(source, parts, "".join(chunks).strip(), missing)

    for row in source.rows("inbox", cols):
        progress.advance(1)
        reason = _skip_folder(source, "inbox", row, include_trash)
        if reason:
            skipped[reason] += 1
            continue
        ref = _concat_reference(row["UDH"])
        if ref is None or ref[1] < 2:
            yield _text_in(source, [row], row["TextDecoded"] or "", False)
            continue
        reference, count, number = ref
        key = (row["SenderNumber"], reference, count)
        parts = waiting.setdefault(key, [])
        if any(p["_part"] == number for p in parts):
            # the reference came round again (it repeats every 256 long texts): a new text
            yield joined(waiting.pop(key), count)
            parts = waiting.setdefault(key, [])
        row["_part"] = number
        parts.append(row)
        if len(parts) == count:
            yield joined(waiting.pop(key), count)
        elif len(waiting) > 10_000:  # only texts whose parts never came stay this long
            oldest = min(waiting, key=lambda k: waiting[k][0]["ID"])
            yield joined(waiting.pop(oldest), oldest[2])
    for key, parts in sorted(waiting.items(), key=lambda kv: kv[1][0]["ID"]):
        yield joined(parts, key[2])


def _text_in(source: _Source, parts: list[dict], text: str, incomplete: bool) -> _Text:
    first = min(parts, key=lambda p: p["ID"])
    at = source.when("inbox", "ReceivingDateTime", first["ReceivingDateTime"]) or utcnow()
    return _Text("inbox", [p["ID"] for p in parts], at, "in", first["SenderNumber"] or "",
                 text, "received", incomplete=incomplete)


def _sent(source: _Source, skipped: Counter, include_trash: bool,
          progress: Progress) -> Iterator[_Text]:
    cols = ["ID", "SequencePosition", "InsertIntoDB", "SendingDateTime", "DeliveryDateTime",
            "DestinationNumber", "TextDecoded", "Status"]
    if source.has("sentitems", "id_folder"):
        cols.append("id_folder")
    for _id, group in itertools.groupby(source.rows("sentitems", cols, whole_id=True),
                                        key=lambda r: r["ID"]):
        parts = list(group)
        progress.advance(len(parts))
        first = parts[0]
        reason = _skip_folder(source, "sentitems", first, include_trash)
        if reason:
            skipped[reason] += 1
            continue
        states = {p["Status"] for p in parts}
        sent_at = source.when("sentitems", "SendingDateTime", first["SendingDateTime"])
        at = source.when("sentitems", "InsertIntoDB", first["InsertIntoDB"]) or sent_at
        text = _Text("sentitems", [first["ID"]], at or utcnow(), "out",
                     first["DestinationNumber"] or "",
                     "".join(p["TextDecoded"] or "" for p in parts), "sent", sent_at=sent_at)
        if states & set(FAILED_STATES):
            text.status = "failed"
            text.last_error = "Kalkun: " + ", ".join(sorted(states & set(FAILED_STATES)))
        elif states & set(UNKNOWN_STATES):
            text.status, text.last_error = "unknown", "Kalkun: Error (sent or not, unknown)"
        elif states == {"DeliveryOK"}:
            text.status = "delivered"
            text.delivered_at = max((source.when("sentitems", "DeliveryDateTime",
                                                 p["DeliveryDateTime"]) for p in parts),
                                    key=lambda d: d or dt.datetime.min)
        yield text


def _outbox(source: _Source, progress: Progress) -> Iterator[_Text]:
    cols = ["ID", "InsertIntoDB", "DestinationNumber", "TextDecoded", "MultiPart"]
    more_parts = "outbox_multipart" in source.tables
    batch: list[dict] = []

    def flush():
        rest: dict[int, list[tuple[int, str]]] = {}
        if more_parts:
            ids = [r["ID"] for r in batch if r["MultiPart"] in ("true", True, 1, "1")]
            if ids:
                src = table("outbox_multipart", column("ID"), column("SequencePosition"),
                            column("TextDecoded"))
                with source.engine.connect() as conn:
                    for r in conn.execute(select(src).where(src.c.ID.in_(ids))):
                        rest.setdefault(r.ID, []).append((r.SequencePosition, r.TextDecoded))
        for row in batch:
            tail = "".join(t or "" for _, t in sorted(rest.get(row["ID"], [])))
            at = source.when("outbox", "InsertIntoDB", row["InsertIntoDB"]) or utcnow()
            yield _Text("outbox", [row["ID"]], at, "out", row["DestinationNumber"] or "",
                        (row["TextDecoded"] or "") + tail, "failed", last_error=OUTBOX_NOTE)

    for row in source.rows("outbox", cols):
        progress.advance(1)
        batch.append(row)
        if len(batch) >= source.batch:
            yield from flush()
            batch = []
    yield from flush()


# --- writing -------------------------------------------------------------------------------

def _write_texts(session, texts: list[_Text], source: str, region: str,
                 summary: Summary) -> None:
    """One batch: skip what an earlier run brought, link the rest to their contacts."""
    kind = {"inbox": "received texts", "sentitems": "sent texts",
            "outbox": "outbox texts (as failed)"}
    keys = [(t.source_table, i) for t in texts for i in t.ids]
    # A text Kalkun still had in its outbox on an earlier run, sent since (SMSD keeps its
    # ID when it moves it to sentitems): that text is brought up to date, not doubled.
    keys += [("outbox", t.ids[0]) for t in texts if t.source_table == "sentitems"]
    done = {}
    for table_name, ids in itertools.groupby(sorted(set(keys)), key=lambda k: k[0]):
        ids = [i for _, i in ids]
        for ref in session.scalars(select(KalkunImported).where(
                KalkunImported.source == source, KalkunImported.source_table == table_name,
                KalkunImported.source_id.in_(ids))):
            done[(table_name, ref.source_id)] = ref.message_id
    new, refs, now = [], [], utcnow()
    for t in texts:
        seen = [done.get((t.source_table, i)) for i in t.ids]
        if any(seen):
            summary.already[kind[t.source_table]] += 1
            if not all(seen):
                summary.skipped["parts of a long text imported before without them"] += 1
            continue
        earlier = done.get(("outbox", t.ids[0])) if t.source_table == "sentitems" else None
        if earlier:
            message = session.get(Message, earlier)
            if message is not None and message.status == "failed" \
                    and message.last_error == OUTBOX_NOTE:
                message.status, message.last_error = t.status, t.last_error
                message.sent_at, message.delivered_at = t.sent_at, t.delivered_at
            refs.append(dict(source=source, source_table="sentitems", source_id=t.ids[0],
                             message_id=earlier, imported_at=now))
            summary.already[kind["sentitems"]] += 1
            continue
        new.append(t)
    # Carriers and short codes ('TELKOMSEL', '3636') keep their raw sender, no contact.
    numbers = [normalise(t.raw_number.strip(), region) for t in new]
    contacts = _contacts_for(session, {n for n in numbers if n}, counted=summary)
    rows = []
    for t, e164 in zip(new, numbers):
        number = e164 or t.raw_number.strip()[:32] or "(unknown)"
        contact = contacts.get(e164)
        rows.append(dict(
            direction=t.direction, number=number, text=_storable(t.text) or "(empty SMS)",
            status=t.status, intent=None, incomplete=t.incomplete,
            contact_id=contact.id if contact else None, ticket_id=None, user_id=None,
            modem=None, created_at=t.at, smsc_time=t.at if t.direction == "in" else None,
            attention=None, attempts=0, next_attempt_at=None, claimed_by=None,
            sent_at=t.sent_at, delivered_at=t.delivered_at, last_error=t.last_error,
            priority=0))
        summary.imported[kind[t.source_table]] += 1
    if rows:
        # One statement for the batch where the database returns ids in order (MariaDB,
        # PostgreSQL); SQLAlchemy goes row by row where it cannot (SQLite).
        ids = session.scalars(Message.__table__.insert().returning(
            Message.__table__.c.id, sort_by_parameter_order=True), rows).all()
        for t, message_id in zip(new, ids, strict=True):
            refs += [dict(source=source, source_table=t.source_table, source_id=i,
                          message_id=message_id, imported_at=now) for i in t.ids]
    if refs:
        session.execute(KalkunImported.__table__.insert(), refs)


def _storable(text: str) -> str:
    # PostgreSQL's text takes no NUL; a lone surrogate fits no database.
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _contacts_for(session, phones: set[str], names: dict[str, str] | None = None,
                  summary: Summary | None = None,
                  counted: Summary | None = None) -> dict[str, Contact]:
    """The contacts of these E.164 numbers, those not yet there created (with `names`)."""
    found = {c.phone: c for c in session.scalars(select(Contact).where(Contact.phone.in_(phones)))}
    now = utcnow()
    added = []
    for phone in sorted(phones - found.keys()):
        contact = Contact(phone=phone, name=(names or {}).get(phone), created_at=now,
                          updated_at=now)
        found[phone] = contact
        added.append(contact)
    session.add_all(added)
    session.flush()
    if counted is not None:  # the people texted or texting, not in the phonebook
        counted.imported["contacts from texts"] += len(added)
    if summary is not None:
        summary.imported["contacts"] += len(added)
        for phone in phones - {c.phone for c in added}:
            contact = found[phone]
            if not contact.name and names.get(phone):
                contact.name = names[phone]  # a contact the new system knew only by number
            summary.already["contacts"] += 1
    return found


def _phonebook(sessions, source: _Source, region: str, summary: Summary,
               progress: Progress) -> None:
    if "pbk" not in source.tables:
        return
    groups: dict[int, int] = {}  # pbk_groups.ID -> contact_groups.id
    if "pbk_groups" in source.tables:
        src = table("pbk_groups", column("ID"), column("Name"))
        with source.engine.connect() as conn:
            rows = conn.execute(select(src).order_by(src.c.ID)).all()
        with sessions.begin() as session:
            by_name = {g.name.casefold(): g for g in session.scalars(select(ContactGroup))}
            for row in rows:
                name = " ".join((row.Name or "").split())[:100]
                if not name:
                    summary.skipped["groups without a name"] += 1
                    continue
                group = by_name.get(name.casefold())
                if group is None:
                    group = by_name[name.casefold()] = ContactGroup(name=name, created_at=utcnow())
                    session.add(group)
                    session.flush()
                    summary.imported["groups"] += 1
                else:
                    summary.already["groups"] += 1
                groups[row.ID] = group.id
    contact_of: dict[int, int] = {}  # pbk.ID -> contacts.id, for user_group below
    cols = ["ID", "GroupID", "Name", "Number"]
    rows = source.rows("pbk", cols)
    while chunk := list(itertools.islice(rows, source.batch)):
        progress.advance(len(chunk))
        names, members = {}, []
        for row in chunk:
            phone = normalise((row["Number"] or "").strip(), region)
            if phone is None:
                summary.skipped["phonebook entries without a phone number"] += 1
                continue
            name = " ".join((row["Name"] or "").split())[:200]
            if phone in names:
                summary.skipped["phonebook entries for a number listed before"] += 1
            else:
                names[phone] = name or None
            contact_of[row["ID"]] = phone
            if row["GroupID"] in groups:
                members.append((groups[row["GroupID"]], phone))
        with sessions.begin() as session:
            contacts = _contacts_for(session, set(names), names, summary)
            for pbk_id, phone in list(contact_of.items()):
                if isinstance(phone, str):
                    contact_of[pbk_id] = contacts[phone].id
            _add_members(session, {(g, contacts[p].id) for g, p in members}, summary)
    if "user_group" in source.tables and groups:
        src = table("user_group", column("id_group"), column("id_pbk"), column("id_pbk_groups"))
        last = 0
        with source.engine.connect() as conn:
            while chunk := conn.execute(select(src).where(src.c.id_group > last)
                                        .order_by(src.c.id_group).limit(source.batch)).all():
                progress.advance(len(chunk))
                last = chunk[-1].id_group
                pairs = {(groups[r.id_pbk_groups], contact_of[r.id_pbk]) for r in chunk
                         if r.id_pbk_groups in groups and r.id_pbk in contact_of}
                with sessions.begin() as session:
                    _add_members(session, pairs, summary)


def _add_members(session, pairs: set[tuple[int, int]], summary: Summary) -> None:
    if not pairs:
        return
    there = set(session.execute(select(ContactGroupMember.group_id, ContactGroupMember.contact_id)
                                .where(tuple_(ContactGroupMember.group_id,
                                              ContactGroupMember.contact_id).in_(pairs))).all())
    summary.already["group members"] += len(pairs & there)
    new = sorted(pairs - there)
    if new:
        session.execute(ContactGroupMember.__table__.insert(),
                        [dict(group_id=g, contact_id=c) for g, c in new])
    summary.imported["group members"] += len(new)


def run(url: str, sessions, *, region: str = "ID", local_zone: str = "Asia/Jakarta",
        source: str | None = None, include_trash: bool = False, batch: int = BATCH,
        progress_stream=None, on_batch: Callable[[], None] | None = None) -> Summary:
    """Import the SMSD database at `url` through `sessions` (the helpdesk's sessionmaker).

    Each batch is its own transaction, so an interrupted run keeps what it wrote and the
    next run goes on from there. `source` names the database in kalkun_imported (by
    default its URL without user and password)."""
    engine = open_source(url)
    try:
        src = _Source(engine, ZoneInfo(local_zone), batch)
        summary = Summary(version=src.version)
        total = sum(src.count(n) for n in ("inbox", "sentitems", "outbox", "pbk", "user_group"))
        progress = Progress(total, progress_stream)
        name = source or source_name(url)
        _phonebook(sessions, src, region, summary, progress)
        # The three tables merged by time, so the texts get their ids in the order they
        # happened and the folders and a contact's timeline show them so.
        texts = heapq.merge(_received(src, summary.skipped, include_trash, progress),
                            _sent(src, summary.skipped, include_trash, progress),
                            _outbox(src, progress), key=lambda t: t.at)
        while chunk := list(itertools.islice(texts, batch)):
            with sessions.begin() as session:
                _write_texts(session, chunk, name, region, summary)
            if on_batch:
                on_batch()
        progress.close()
        return summary
    except DBAPIError as e:
        raise KalkunImportError(f"the import stopped: {e.orig}; what was written so far "
                                "is kept, and running it again goes on from there") from None
    finally:
        engine.dispose()
