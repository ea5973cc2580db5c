"""Bank statements as Indonesian internet banking exports them (CSV): which bank's layout
a file is in, and its lines read into credits, debits and lines that cannot be read.

`read` is pure: bytes in, a Statement out. `import_statement` files one through
gateway.desk.statements, which matches its credits to orders.

The built-in layouts follow exports seen in the wild (KlikBCA's "mutasi rekening",
Mandiri, BRI and BNI internet banking) but no bank documents them, and banks change them
without notice. So every layout is data: [bank.formats.NAME] in the configuration
describes another one, or replaces a built-in one of the same name, without a release.
"""
from __future__ import annotations

import codecs
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from gateway.desk import statements

MAX_BYTES = 5_000_000  # a month of a busy shop's statement is well under 1 MB
HEADER_SEARCH_ROWS = 40  # the header row is within the first rows (after the preamble)
MAX_SEN = 10**17  # an amount beyond this is a misread column, not money
DELIMITERS = ",;\t|"

Column = int | str  # 1-based position, or the header cell's text


class StatementUnreadable(ValueError):
    """The file as a whole cannot be read: one sentence saying why and what to do."""


@dataclass(frozen=True)
class Layout:
    """Where a bank's export keeps each field. Columns are 1-based positions or header
    texts (then `header` must find the header row)."""
    name: str
    bank: str  # the label kept with each line and payment, e.g. "BCA"
    header: tuple[str, ...] = ()  # cells that together identify the header row
    date: Column = 1
    description: tuple[Column, ...] = (2,)
    amount: Column | None = None  # one amount column, direction from a marker or sign
    debit: Column | None = None  # or two columns
    credit: Column | None = None
    marker: Column | None = None  # a column holding CR/DB, when not in the amount itself
    account: Column | None = None  # the account number, when each line carries it
    date_formats: tuple[str, ...] = ("%d/%m/%Y",)
    decimal: str = "."  # "." for 1,500,000.00; "," for 1.500.000,00
    skip_lines: int = 0  # rows before the header row (or the data, without a header)
    delimiter: str | None = None  # None: sniffed
    ignore: tuple[str, ...] = ()  # first cells of rows that are totals, not transactions
    pending: tuple[str, ...] = ("PEND",)  # a date cell saying "not booked yet"
    credit_markers: tuple[str, ...] = ("CR", "K", "C", "KR", "KREDIT", "CREDIT")
    debit_markers: tuple[str, ...] = ("DB", "D", "DR", "DEBET", "DEBIT")
    signed: bool = False  # an unmarked amount is a credit, a negative one a debit

    @property
    def detectable(self) -> bool:
        return bool(self.header)


# KlikBCA (individual): a preamble ("No. rekening : ...", "Nama : ...", "Periode : dd/mm/yyyy
# - dd/mm/yyyy", "Kode Mata Uang : Rp"), then Tanggal Transaksi, Keterangan, Cabang, Jumlah
# ("100,000.00 CR"), Saldo; the date is "dd/mm" (often with a leading ') or PEND for a
# transfer not booked yet; totals at the end. The year comes from the period.
BCA = Layout("bca", "BCA", header=("Keterangan", "Cabang", "Jumlah"), date=1,
             description=(2,), amount=4, date_formats=("%d/%m", "%d/%m/%Y"),
             ignore=("Saldo Awal", "Mutasi Kredit", "Mutasi Debet", "Mutasi Debit",
                     "Saldo Akhir"))
# Mandiri internet banking: Account No, Date, Val. Date, Transaction Code, Description,
# Description, Reference No., Debit, Credit (".00" when empty). Header texts unsure.
MANDIRI = Layout("mandiri", "Mandiri", header=("Account No", "Val. Date", "Transaction Code"),
                 account=1, date=2, description=(5, 6), debit=8, credit=9,
                 date_formats=("%d/%m/%y", "%d/%m/%Y"))
# BRI internet banking: DATE, TIME, REMARK, DEBET, CREDIT, LEDGER (balance), TELLER ID.
# The balance column's title is unsure; it is not read.
BRI = Layout("bri", "BRI", header=("DATE", "REMARK", "DEBET", "CREDIT"), date=1,
             description=(3,), debit=4, credit=5, date_formats=("%d/%m/%y", "%d/%m/%Y"))
# BNI internet banking: Post Date ("dd/mm/yy HH.MM.SS"), Value Date, Branch, Journal No.,
# Description, Debit, Credit, Balance.
BNI = Layout("bni", "BNI", header=("Post Date", "Journal No.", "Description"), date=1,
             description=(5,), debit=6, credit=7,
             date_formats=("%d/%m/%y %H.%M.%S", "%d/%m/%Y %H.%M.%S", "%d/%m/%y", "%d/%m/%Y",
                           "%d/%m/%y %H:%M:%S", "%d/%m/%Y %H:%M:%S"))
BUILT_IN = {layout.name: layout for layout in (BCA, MANDIRI, BRI, BNI)}


def layouts(formats: dict | None = None) -> dict[str, Layout]:
    """The configuration's [bank.formats.NAME] layouts first, then the built-in ones; a
    table named like a built-in layout changes only the keys it gives."""
    configured = {name: layout_from_config(name, table, BUILT_IN.get(name))
                  for name, table in (formats or {}).items()}
    return {**configured, **{n: v for n, v in BUILT_IN.items() if n not in configured}}


def layout_from_config(name: str, table: dict, base: Layout | None = None) -> Layout:
    """A Layout from a [bank.formats.NAME] table (gateway.config has checked it)."""
    def texts(value):
        return tuple(value) if isinstance(value, list) else (value,)

    options = {}
    for key in ("bank", "date", "amount", "debit", "credit", "marker", "account", "decimal",
                "skip_lines", "delimiter", "signed"):
        if key in table:
            options[key] = table[key]
    for key, attr in (("description", "description"), ("header", "header"),
                      ("date_format", "date_formats"), ("ignore", "ignore"),
                      ("pending", "pending"), ("credit_markers", "credit_markers"),
                      ("debit_markers", "debit_markers")):
        if key in table:
            options[attr] = texts(table[key])
    if base is not None:
        if "amount" in options:  # one amount column replaces the debit/credit pair
            options.setdefault("debit", None)
            options.setdefault("credit", None)
        elif "debit" in options or "credit" in options:
            options.setdefault("amount", None)
        return dataclasses.replace(base, **options)
    return Layout(name, options.pop("bank", name.upper()), **options)


@dataclass(frozen=True)
class Line:
    number: int  # the line of the file, for messages
    booked_on: dt.date
    description: str
    amount: int  # whole rupiah (rounded down)
    sen: int  # the hundredths: almost always 0; an order's total never has them
    credit: bool
    account: str | None
    fingerprint: str


@dataclass
class Statement:
    layout: Layout
    account: str | None
    credits: list[Line] = field(default_factory=list)
    debits: int = 0
    pending: list[int] = field(default_factory=list)  # line numbers not booked yet
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (line, why)

    @property
    def lines_read(self) -> int:
        return len(self.credits) + self.debits + len(self.pending) + len(self.unreadable)


class _Unreadable(ValueError):
    """Why one line cannot be read."""


def decode(data: bytes) -> str:
    """Text from a file as Windows programs write it: UTF-8 (with or without BOM),
    UTF-16 with BOM, else cp1252 (Excel's 'CSV' on Indonesian Windows), else latin-1."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")


def read(data: bytes, available: dict[str, Layout], bank: str | None = None,
         today: dt.date | None = None) -> Statement:
    """The statement in `data`, in the layout named `bank` or else the one detected.
    StatementUnreadable when the file as a whole cannot be read."""
    if len(data) > MAX_BYTES:
        raise StatementUnreadable(f"the file is larger than {MAX_BYTES // 1_000_000} MB; "
                                  "export a shorter period")
    text = decode(data).replace("\x00", "")
    if not text.strip():
        raise StatementUnreadable("the file is empty")
    today = today or dt.date.today()
    if bank is not None:
        layout = available.get(bank.lower())
        if layout is None:
            raise StatementUnreadable(f"no bank format named {bank!r} (known: "
                                      f"{', '.join(sorted(available))})")
        rows, header_at = _find(text, layout)
        if rows is None:
            raise StatementUnreadable(
                f"this file is not a {layout.name} statement: no row has the columns "
                f"{', '.join(layout.header)}; check [bank.formats.{layout.name}]")
        return _read_rows(rows, header_at, layout, today)
    for layout in available.values():
        if layout.detectable:
            rows, header_at = _find(text, layout)
            if rows is not None:
                return _read_rows(rows, header_at, layout, today)
    raise StatementUnreadable(
        "the file is not a statement in a known layout (" + ", ".join(sorted(available))
        + "); name one with --bank, or describe it in [bank.formats.NAME]")


def _find(text: str, layout: Layout):
    """The rows (with line numbers) and the header row's index under the first delimiter
    that shows `layout`'s header; (None, None) if none does."""
    for delimiter in _delimiters(text, layout):
        rows = _rows(text, delimiter)
        if not layout.header:
            if len(rows) > layout.skip_lines:
                return rows, layout.skip_lines - 1  # the data starts after skip_lines
            continue
        wanted = {_cell_key(h) for h in layout.header}
        for i, (_number, cells) in enumerate(rows[layout.skip_lines:HEADER_SEARCH_ROWS]):
            if wanted <= {_cell_key(c) for c in cells}:
                return rows, layout.skip_lines + i
    return None, None


def _delimiters(text: str, layout: Layout) -> list[str]:
    if layout.delimiter:
        return [layout.delimiter]
    sample = text[:20_000]
    try:
        first = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = max(DELIMITERS, key=sample.count)
    return [first, *(d for d in DELIMITERS if d != first)]


def _rows(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, start = [], 1
    try:
        for cells in reader:
            rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as e:  # an unclosed quote: what came before is still read
        rows.append((start, [f"\x00{e}"]))
    return rows


def _cell_key(cell: str) -> str:
    return " ".join(cell.strip().strip("'\"").split()).casefold()


def _read_rows(rows, header_at: int, layout: Layout, today: dt.date) -> Statement:
    header = rows[header_at][1] if layout.header else None
    index = _resolve(layout, header)
    before = rows[:header_at] if layout.header else rows[:header_at + 1]
    preamble = "\n".join(" ".join(cells) for _n, cells in before)
    statement = Statement(layout, _account_in(preamble))
    period_end = _period_end(preamble) or today
    ignore = tuple(_cell_key(t) for t in layout.ignore)
    pending = {_cell_key(t) for t in layout.pending}
    seen: Counter = Counter()
    for number, cells in rows[header_at + 1:]:
        if cells and cells[0].startswith("\x00"):
            statement.unreadable.append((number, f"broken CSV: {cells[0][1:]}"))
            continue
        cells = [c.strip() for c in cells]
        if not any(cells):
            continue
        first = _cell_key(next(c for c in cells if c))
        if ignore and first.startswith(ignore):
            continue
        try:
            if _cell_key(_cell(cells, index["date"])) in pending:
                statement.pending.append(number)
                continue
            line = _line(number, cells, index, layout, statement.account, period_end, seen)
        except _Unreadable as e:
            statement.unreadable.append((number, str(e)))
            continue
        if line is None:
            statement.debits += 1
        else:
            statement.credits.append(line)
    return statement


def _resolve(layout: Layout, header) -> dict:
    """Each field's 0-based column index (descriptions: a tuple)."""
    keys = [_cell_key(c) for c in header] if header is not None else None

    def one(column):
        if column is None:
            return None
        if isinstance(column, int):
            return column - 1
        if keys is None or _cell_key(column) not in keys:
            raise StatementUnreadable(
                f"column {column!r} of [bank.formats.{layout.name}] is not in the header row")
        return keys.index(_cell_key(column))

    fields = {name: one(getattr(layout, name))
              for name in ("date", "amount", "debit", "credit", "marker", "account")}
    fields["description"] = tuple(one(c) for c in layout.description)
    return fields


def _cell(cells: list[str], i: int | None) -> str:
    if i is None:
        return ""
    if i >= len(cells):
        raise _Unreadable(f"{len(cells)} columns, at least {i + 1} expected")
    return cells[i].lstrip("'")  # a leading ' keeps Excel from turning text into numbers


def _line(number, cells, index, layout: Layout, account, period_end, seen) -> Line | None:
    """The line as a credit, None for a debit; _Unreadable says why neither."""
    needed = max(i for i in (index["date"], index["amount"], index["debit"], index["credit"],
                             index["marker"], *index["description"]) if i is not None)
    if needed >= len(cells):
        raise _Unreadable(f"{len(cells)} columns, at least {needed + 1} expected")
    booked_on = _date(_cell(cells, index["date"]), layout.date_formats, period_end)
    if index["amount"] is not None:
        sen, credit = _one_amount(cells, index, layout)
    else:
        debit = _column_amount(cells, index["debit"], layout, "debit")
        credit_sen = _column_amount(cells, index["credit"], layout, "credit")
        if bool(debit) == bool(credit_sen):
            raise _Unreadable("no amount in either the debit or the credit column" if not debit
                              else "an amount in both the debit and the credit column")
        sen, credit = (credit_sen, True) if credit_sen else (debit, False)
    if not credit:
        return None
    description = " ".join(" ".join(_cell(cells, i) for i in index["description"]).split())
    if index["account"] is not None:
        account = _cell(cells, index["account"]) or account
    # Two identical lines in one statement are two transfers: the how-manieth identical
    # line is part of its fingerprint, so both count, and a statement that overlaps this
    # one (the same day exported again in the evening) adds only what is new.
    key = (layout.bank, account or "", booked_on.isoformat(), description.casefold(), sen)
    seen[key] += 1
    digest = hashlib.sha256("\x1f".join(map(str, (*key, seen[key]))).encode()).hexdigest()
    return Line(number, booked_on, description[:500], sen // 100, sen % 100, True, account,
                digest)


def _column_amount(cells, i, layout: Layout, side: str) -> int:
    """The sen in the debit or the credit column. A minus or a mark there (a reversal
    written '-50,000.00' under Credit) is no plain credit: the line is for a person."""
    raw = _cell(cells, i)
    sen, marker, negative = _amount(raw, layout.decimal, blank=True)
    if sen and (negative or marker):
        raise _Unreadable(f"the amount {raw!r} in the {side} column has a sign or a mark; "
                          "a plain amount is expected there")
    return sen


def _one_amount(cells, index, layout: Layout) -> tuple[int, bool]:
    raw = _cell(cells, index["amount"])
    sen, marker, negative = _amount(raw, layout.decimal)
    if index["marker"] is not None:
        marker = _cell(cells, index["marker"]).upper() or marker
    if marker:
        if marker in (m.upper() for m in layout.credit_markers):
            return sen, True
        if marker in (m.upper() for m in layout.debit_markers):
            return sen, False
        raise _Unreadable(f"{marker!r} is neither a credit mark "
                          f"({'/'.join(layout.credit_markers)}) nor a debit mark "
                          f"({'/'.join(layout.debit_markers)})")
    if negative:
        return sen, False
    if layout.signed:
        return sen, True
    raise _Unreadable(f"the amount {raw!r} says neither credit nor debit "
                      f"({'/'.join(layout.credit_markers[:1] + layout.debit_markers[:1])})")


_AMOUNT = re.compile(r"(?i)(?P<before>[a-z]{1,7}\.?)?\s*(?P<sign>[-+])?\s*(?P<paren>\()?\s*"
                     r"(?:rp\.?\s*)?(?P<number>\d[\d.,' ]*|[.,]\d+)\s*\)?\s*(?P<sign2>-)?\s*"
                     r"(?P<after>[a-z]{1,7})?")


def _amount(raw: str, decimal: str, blank: bool = False) -> tuple[int, str | None, bool]:
    """'1,500,000.00' / '1.500.000,00' / '150000.00 CR' / 'Rp 150.000' / '-25,000.00'
    -> (sen, marker or None, negative)."""
    text = raw.strip()
    if not text and blank:
        return 0, None, False
    m = _AMOUNT.fullmatch(text)
    example = "1,500,000.00" if decimal == "." else "1.500.000,00"
    if not m:
        raise _Unreadable(f"the amount {raw!r} is not a number like {example}")
    before = (m["before"] or "").rstrip(".").upper()
    marker = (m["after"] or "").upper() or (before if before != "RP" else "") or None
    number = m["number"].replace(" ", "").replace("'", "")
    thousands = "," if decimal == "." else "."
    whole, _, fraction = number.partition(decimal)
    if decimal in fraction or thousands in fraction or len(fraction) > 2 \
            or (fraction and not fraction.isdigit()):
        raise _Unreadable(f"the amount {raw!r} is not a number like {example}")
    groups = whole.split(thousands) if whole else ["0"]
    if not all(g.isdigit() for g in groups) or (
            len(groups) > 1 and (len(groups[0]) > 3
                                 or any(len(g) != 3 for g in groups[1:]))):
        raise _Unreadable(f"the amount {raw!r} is not a number like {example}")
    sen = int("".join(groups)) * 100 + int((fraction or "0").ljust(2, "0"))
    if sen >= MAX_SEN:
        raise _Unreadable(f"the amount {raw!r} is too large to be money")
    return sen, marker, bool(m["sign"] == "-" or m["paren"] or m["sign2"])


def _date(raw: str, formats: tuple[str, ...], period_end: dt.date) -> dt.date:
    """The day in one of `formats`; one without a year (BCA's dd/mm) falls in the year
    that puts it on or before the statement's last day."""
    text = " ".join(raw.split())
    for fmt in formats:
        has_year = "%y" in fmt or "%Y" in fmt
        try:
            if has_year:
                return dt.datetime.strptime(text, fmt).date()
            day = dt.datetime.strptime(f"{text} {period_end.year}", f"{fmt} %Y").date()
        except ValueError:
            continue
        if day > period_end:
            try:
                day = day.replace(year=day.year - 1)
            except ValueError:  # 29/02 of a year that has none
                continue
        return day
    shown = " or ".join(f.replace("%d", "dd").replace("%m", "mm").replace("%Y", "yyyy")
                        .replace("%y", "yy").replace("%H", "HH").replace("%M", "MM")
                        .replace("%S", "SS") for f in formats[:2])
    raise _Unreadable(f"the date {raw!r} is not {shown}")


_ACCOUNT = re.compile(r"(?i)\b(?:no\.?\s*rek(?:ening)?|account\s*(?:no|number)\.?)\s*[:=]?\s*"
                      r"([0-9][0-9 .-]{4,30}[0-9])")
_DAY = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")


def _account_in(preamble: str) -> str | None:
    m = _ACCOUNT.search(preamble)
    return re.sub(r"\D", "", m[1]) if m else None


def _period_end(preamble: str) -> dt.date | None:
    """The last date of the preamble ('Periode : 01/11/2019 - 30/11/2019')."""
    days = []
    for d, m, y in _DAY.findall(preamble):
        try:
            days.append(dt.date(int(y), int(m), int(d)))
        except ValueError:
            continue
    return max(days) if days else None


# --- filing a statement: the one path the CLI and the payments page share ---------------

@dataclass
class Summary:
    """What an import read and did: the CLI prints it, the page flashes it."""
    statement: Statement
    recorded: object  # gateway.desk.statements.Recorded
    confirmed: int = 0
    refused: list = field(default_factory=list)  # (line id, why), still waiting
    message_ids: list = field(default_factory=list)  # texts queued to customers

    @property
    def waiting(self) -> int:
        return len(self.recorded.matched_ids) - self.confirmed

    def lines(self) -> list[str]:
        s, r = self.statement, self.recorded
        out = [f"{s.layout.bank} statement ({s.layout.name})"
               + (f", account {s.account}" if s.account else ""),
               f"lines read: {s.lines_read}",
               f"credits: {len(s.credits)} ({r.new} new, {r.known} imported before)",
               f"debits ignored: {s.debits}",
               f"matched by unique total: {r.by_total}",
               f"matched by SMS confirmation: {r.by_sms}",
               f"confirmed: {self.confirmed}",
               f"waiting for a click on /payments: {self.waiting}",
               f"left for a person (ambiguous): {r.ambiguous}",
               f"unmatched: {r.unmatched}"]
        if s.pending:
            out.append(f"not booked yet (PEND; import a later statement): {len(s.pending)} "
                       f"(lines {', '.join(map(str, s.pending))})")
        out.append(f"unreadable: {len(s.unreadable)}")
        out += [f"  line {number}: {why}" for number, why in s.unreadable]
        out += [f"  not confirmed, statement line {line_id}: {why}"
                for line_id, why in self.refused]
        return out


def import_statement(session, data: bytes, config, actor, bank: str | None = None,
                     file_name: str | None = None, today: dt.date | None = None) -> Summary:
    """Read `data`, file its new credits and commit; with [bank] auto_confirm, confirm the
    matched ones (each its own transaction). `actor` is a gateway.desk.payments.Actor.
    StatementUnreadable (nothing stored) when the file cannot be read at all."""
    statement = read(data, layouts(config.bank_formats), bank, today)
    for attempt in (1, 2):
        try:
            recorded = statements.record(session, statement, actor.user_id, file_name)
            session.commit()
            break
        except IntegrityError:  # the same lines filed by a parallel import: skip them now
            session.rollback()
            if attempt == 2:
                raise
    summary = Summary(statement, recorded)
    if config.bank_auto_confirm and recorded.matched_ids:
        done = statements.confirm_all(session, recorded.matched_ids, actor, config.language)
        summary.confirmed, summary.refused = len(done.decisions), done.refused
        summary.message_ids = [d.message.id for d in done.decisions if d.message is not None]
    return summary
