"""Exports: the lists (messages, tickets, orders, payments, calls, contacts) and every
report as CSV, XLSX or PDF, each headed with the company's name, the range and when it was
made.

A list is read in keyset batches by id (`id > last ORDER BY id LIMIT n`), never by OFFSET
and never all at once, and written as it is read: CSV as a stream of text chunks, XLSX
with XlsxWriter's constant_memory mode (one row in memory at a time; the file itself is
written to disk). A PDF is for reading, so a list's PDF stops at PDF_ROW_CAP rows and
says so. A cell a spreadsheet would run as a formula gets a leading apostrophe.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import os
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import func, select

from gateway.db.models import (
    Call,
    Contact,
    Message,
    Order,
    OrderItem,
    Payment,
    Ticket,
    User,
    utcnow,
)
from gateway.desk.reader import format_rupiah
from gateway.reports import charts, queries
from gateway.reports.queries import Range, Report

FORMATS = ("csv", "xlsx", "pdf")
BATCH = 2000
PDF_ROW_CAP = 2000
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu",)  # Debian's fonts-dejavu-core
_FORMULA_START = frozenset("=+-@\t\r")  # what a spreadsheet reads as a formula


class ExportError(ValueError):
    """An export that cannot be made as asked, with a sentence saying why."""


def safe_text(value: str) -> str:
    """What a spreadsheet shows as text, never runs: '=cmd' becomes "'=cmd"."""
    return "'" + value if value and value[0] in _FORMULA_START else value


def default_label(column: str) -> str:
    return column.replace("_", " ").capitalize()


@dataclass
class Document:
    """What every format writes: a title, the heading lines, columns and rows (plain
    values: str, int, float, None, naive local datetime), and an optional chart."""
    kind: str
    title: str
    company: str
    period: Range
    generated_at: dt.datetime  # local, naive
    columns: list[str]
    rows: Iterator[list]
    labels: dict[str, str] = field(default_factory=dict)
    money: tuple[str, ...] = ()
    chart_svg: str | None = None
    is_list: bool = False
    words: dict[str, str] = field(default_factory=dict)  # heading words, translated

    def label(self, column: str) -> str:
        return self.labels.get(column) or default_label(column)

    def word(self, key: str, default: str) -> str:
        return self.words.get(key, default)

    def heading(self) -> list[str]:
        return [self.company, self.title,
                f"{self.word('range', 'Range')}: {self.period.label()} "
                f"({self.word(self.period.grouping, self.period.grouping)})",
                f"{self.word('generated', 'Generated')}: "
                f"{self.generated_at:%Y-%m-%d %H:%M} {self.period.timezone}"]


# -- the lists ---------------------------------------------------------------------------

def _localiser(period: Range) -> Callable:
    zone = zoneinfo.ZoneInfo(period.timezone)

    def local(value):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC).astimezone(zone).replace(tzinfo=None)
    return local


def _keyset(session, query, id_column, batch: int) -> Iterator[list]:
    """The query's rows in id order, `batch` at a time, each batch a fresh SELECT."""
    last = 0
    while True:
        rows = session.execute(query.where(id_column > last).order_by(id_column)
                               .limit(batch)).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _messages(session, period, batch):
    local = _localiser(period)
    query = select(Message.id, Message.created_at, Message.direction, Message.number,
                   Message.modem, Message.status, Message.intent, Message.ticket_id,
                   Message.text).where(period.holds(Message.created_at))
    for rows in _keyset(session, query, Message.id, batch):
        for r in rows:
            yield [r[0], local(r[1]), *r[2:]]


def _tickets(session, period, batch):
    local = _localiser(period)
    query = (select(Ticket.id, Ticket.created_at, Ticket.kind, Ticket.status, Ticket.priority,
                    Ticket.subject, Contact.phone, Contact.name, User.name,
                    Ticket.first_response_at, Ticket.closed_at, Ticket.merged_into_id)
             .join(Contact, Contact.id == Ticket.contact_id)
             .outerjoin(User, User.id == Ticket.assignee_id)
             .where(period.holds(Ticket.created_at)))
    for rows in _keyset(session, query, Ticket.id, batch):
        for r in rows:
            yield [r[0], local(r[1]), *r[2:9], local(r[9]), local(r[10]), r[11]]


def _orders(session, period, batch):
    local = _localiser(period)
    query = (select(Order.id, Order.created_at, Order.status, Contact.phone, Contact.name,
                    Order.total, Order.paid_at)
             .join(Contact, Contact.id == Order.contact_id).where(period.holds(Order.created_at)))
    for rows in _keyset(session, query, Order.id, batch):
        items: dict[int, list[str]] = {}
        for order_id, code, quantity in session.execute(
                select(OrderItem.order_id, OrderItem.code, OrderItem.quantity)
                .where(OrderItem.order_id.in_([r[0] for r in rows])).order_by(OrderItem.id)):
            items.setdefault(order_id, []).append(f"{code} x{quantity}")
        for r in rows:
            yield [r[0], local(r[1]), r[2], r[3], r[4], ", ".join(items.get(r[0], [])), r[5],
                   local(r[6])]


def _payments(session, period, batch):
    local = _localiser(period)
    query = (select(Payment.id, Payment.created_at, Payment.status, Payment.amount, Payment.bank,
                    Payment.payer_name, Contact.phone, Payment.order_id, Payment.decided_at,
                    User.name)
             .join(Contact, Contact.id == Payment.contact_id)
             .outerjoin(User, User.id == Payment.decided_by)
             .where(period.holds(Payment.created_at)))
    for rows in _keyset(session, query, Payment.id, batch):
        for r in rows:
            yield [r[0], local(r[1]), *r[2:8], local(r[8]), r[9]]


def _calls(session, period, batch):
    local = _localiser(period)
    query = (select(Call.id, Call.started_at, Call.direction, Call.number, Contact.name,
                    User.name, Call.answered_at, Call.ended_at, Call.disposition)
             .outerjoin(Contact, Contact.id == Call.contact_id)
             .outerjoin(User, User.id == Call.operator_id)
             .where(period.holds(Call.started_at)))
    for rows in _keyset(session, query, Call.id, batch):
        for r in rows:
            talked = (int((r[7] - r[6]).total_seconds()) if r[6] and r[7] else None)
            yield [r[0], local(r[1]), r[2], r[3], r[4], r[5], local(r[6]), local(r[7]), r[8],
                   talked]


def _contacts(session, period, batch):
    local = _localiser(period)
    query = (select(Contact.id, Contact.created_at, Contact.phone, Contact.name,
                    Contact.organisation, Contact.type, Contact.opted_out, Contact.blocked)
             .where(period.holds(Contact.created_at)))
    for rows in _keyset(session, query, Contact.id, batch):
        for r in rows:
            yield [r[0], local(r[1]), *r[2:6], "yes" if r[6] else "no", "yes" if r[7] else "no"]


# kind -> (columns, row generator, money columns, the model counted for the PDF's cap)
LISTS = {
    "messages": (["id", "created_at", "direction", "number", "modem", "status", "intent",
                  "ticket", "text"], _messages, (), Message.created_at),
    "tickets": (["id", "created_at", "kind", "status", "priority", "subject", "phone", "name",
                 "assignee", "first_response_at", "closed_at", "merged_into"], _tickets, (),
                Ticket.created_at),
    "orders": (["id", "created_at", "status", "phone", "name", "items", "total", "paid_at"],
               _orders, ("total",), Order.created_at),
    "payments": (["id", "created_at", "status", "amount", "bank", "payer_name", "phone", "order",
                  "decided_at", "decided_by"], _payments, ("amount",), Payment.created_at),
    "calls": (["id", "started_at", "direction", "number", "name", "operator", "answered_at",
               "ended_at", "disposition", "talk_seconds"], _calls, (), Call.started_at),
    "contacts": (["id", "created_at", "phone", "name", "organisation", "type", "opted_out",
                  "blocked"], _contacts, (), Contact.created_at),
}
KINDS = (*LISTS, *queries.REPORTS)


def list_count(session, kind: str, period: Range) -> int:
    column = LISTS[kind][3]
    return session.scalar(select(func.count()).where(period.holds(column))) or 0


def report_document(report: Report, company: str, *, title: str | None = None,
                    labels=None, series_labels=None, words=None,
                    now: dt.datetime | None = None) -> Document:
    title = title or queries.TITLES.get(report.name, report.name)
    chart = charts.bar_chart(report.categories, report.series, title=title,
                             labels=series_labels or labels, unit=report.chart_unit)
    return Document(report.name, title, company, report.period,
                    _local_now(report.period, now), report.columns, iter(report.rows),
                    labels=labels or {}, money=report.money, chart_svg=chart,
                    words=words or {})


def list_document(session, kind: str, period: Range, company: str, *, title=None,
                  labels=None, words=None, batch: int = BATCH, limit: int | None = None,
                  now: dt.datetime | None = None) -> Document:
    """A Document whose rows are read lazily from `session` as the writer asks."""
    if kind not in LISTS:
        raise ExportError(f"unknown list {kind!r}; choose one of {', '.join(LISTS)}")
    columns, rows, money, _column = LISTS[kind]
    stream = rows(session, period, batch)
    if limit is not None:
        stream = _take(stream, limit)
    return Document(kind, title or kind.capitalize(), company, period,
                    _local_now(period, now), columns, stream, labels=labels or {},
                    money=money, is_list=True, words=words or {})


def _take(rows, n):
    for i, row in enumerate(rows):
        if i >= n:
            return
        yield row


def _local_now(period: Range, now=None) -> dt.datetime:
    now = now or utcnow()
    return now.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(period.timezone)
                                                 ).replace(tzinfo=None)


# -- CSV ---------------------------------------------------------------------------------

def _csv_cell(value):
    kind = type(value)  # exact types first: a million rows pass here
    if kind is str:
        return "'" + value if value and value[0] in _FORMULA_START else value
    if value is None:
        return ""
    if kind is dt.datetime:
        return value.isoformat(" ", "seconds")
    if kind is bool:
        return "yes" if value else "no"
    return value


def csv_chunks(doc: Document, rows_per_chunk: int = 1000) -> Iterator[str]:
    """The CSV as text chunks: a BOM (spreadsheets need it for UTF-8), the heading lines,
    an empty line, the column names, then the rows."""
    out = io.StringIO()
    writer = csv.writer(out)
    for line in doc.heading():
        writer.writerow([safe_text(line)])
    writer.writerow([])
    writer.writerow([doc.label(c) for c in doc.columns])
    yield "\ufeff" + out.getvalue()
    n = 0
    out.seek(0)
    out.truncate()
    for row in doc.rows:
        writer.writerow([_csv_cell(v) for v in row])
        n += 1
        if n % rows_per_chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue()


# -- XLSX --------------------------------------------------------------------------------

def write_xlsx(doc: Document, target) -> None:
    """Write the workbook to `target` (a path or a binary file) in constant_memory mode:
    each row goes to a temporary file as soon as the next begins."""
    import xlsxwriter

    book = xlsxwriter.Workbook(target, {"constant_memory": True, "strings_to_numbers": False,
                                        "strings_to_formulas": False, "strings_to_urls": False,
                                        "remove_timezone": True})
    sheet = book.add_worksheet(doc.kind[:31])
    bold = book.add_format({"bold": True})
    when = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    money = book.add_format({"num_format": "#,##0"})
    heading = doc.heading()
    for r, line in enumerate(heading):
        sheet.write_string(r, 0, safe_text(line), bold if r == 0 else None)
    r = len(heading) + 1
    for c, column in enumerate(doc.columns):
        sheet.write_string(r, c, doc.label(column), bold)
        sheet.set_column(c, c, 18 if column != "text" else 60)
    is_money = [c in doc.money for c in doc.columns]
    for row in doc.rows:
        r += 1
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, dt.datetime):
                sheet.write_datetime(r, c, value, when)
            elif isinstance(value, bool):
                sheet.write_string(r, c, "yes" if value else "no")
            elif isinstance(value, (int, float)):
                sheet.write_number(r, c, value, money if is_money[c] else None)
            else:
                sheet.write_string(r, c, safe_text(str(value)))
    book.close()


# -- PDF ---------------------------------------------------------------------------------

def font_path(name: str = "DejaVuSans.ttf") -> str:
    for folder in FONT_DIRS:
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise ExportError("a PDF needs the DejaVu Sans font, which is not installed: on Debian "
                      "or Ubuntu run 'apt-get install fonts-dejavu-core'")


def _pdf_cell(value, is_money: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if is_money and isinstance(value, int):
        return format_rupiah(value)
    if isinstance(value, float):
        return f"{value:g}"
    text = str(value)
    return text if len(text) <= 300 else text[:299] + "…"


def _fit(pdf, text: str, width: float) -> str:
    """The text cut to one line of `width` mm (with an ellipsis where cut)."""
    text = " ".join(text.split())
    if pdf.get_string_width(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits, by halves
        mid = (low + high + 1) // 2
        if pdf.get_string_width(text[:mid] + "…") <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low] + "…"


def _pdf_table(pdf, doc: Document, rows: list[list]) -> None:
    """One line per row, each cell cut to its column: fpdf2's wrapping table costs ten
    times as much per row, and a list in a PDF is for a glance, not the whole text."""
    weights = [4 if c == "text" else 3 if c in ("subject", "items") else 1.6
               if c.endswith("_at") or c == "period" else 1 for c in doc.columns]
    widths = [pdf.epw * w / sum(weights) for w in weights]
    size = 7 if len(doc.columns) > 8 else 8
    is_money = [c in doc.money for c in doc.columns]

    def head():
        pdf.set_font("DejaVu", "B", size)
        pdf.set_fill_color(230, 230, 230)
        for column, width in zip(doc.columns, widths):
            pdf.cell(width, 5, _fit(pdf, doc.label(column), width - 1), border=1, fill=True)
        pdf.ln()
        pdf.set_font("DejaVu", "", size)
    head()
    for row in rows:
        if pdf.will_page_break(4.5):
            pdf.add_page()
            head()
        for c, (value, width) in enumerate(zip(row, widths)):
            text = _pdf_cell(value, is_money[c])
            align = "R" if isinstance(value, (int, float)) and not isinstance(value, bool) else "L"
            pdf.cell(width, 4.5, _fit(pdf, text, width - 1), border="B", align=align)
        pdf.ln()


def write_pdf(doc: Document, target, total: int | None = None,
              cap: int = PDF_ROW_CAP) -> int:
    """Write the PDF to `target` (a path or a binary file); a list stops after `cap`
    rows and says so above the table. Returns the rows written."""
    from fpdf import FPDF

    regular, bold = font_path(), font_path("DejaVuSans-Bold.ttf")
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_title(doc.title)
    pdf.set_creator("helpdesk")
    pdf.add_font("DejaVu", "", regular)
    pdf.add_font("DejaVu", "B", bold)
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 14)
    heading = doc.heading()
    pdf.cell(0, 8, heading[0], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "B", 11)
    pdf.cell(0, 6, heading[1], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    for line in heading[2:]:
        pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    rows = list(_take(doc.rows, cap + 1)) if doc.is_list else list(doc.rows)
    capped = doc.is_list and len(rows) > cap
    if capped:
        rows = rows[:cap]
        shown = doc.word("capped", "This PDF shows the first {cap} of {total} rows; "
                                   "export CSV or XLSX for all of them.")
        pdf.set_font("DejaVu", "B", 9)
        figures = {"cap": f"{cap:,}".replace(",", "."),
                   "total": f"{total:,}".replace(",", ".") if total is not None
                   else f"> {cap}"}
        try:
            shown = shown.format(**figures)
        except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder
            shown = (f"This PDF shows the first {figures['cap']} of {figures['total']} "
                     "rows; export CSV or XLSX for all of them.")
        pdf.multi_cell(0, 5, shown, new_x="LMARGIN", new_y="NEXT")
    if doc.chart_svg:
        pdf.ln(2)
        pdf.image(io.BytesIO(doc.chart_svg.encode("utf-8")), w=pdf.epw * 0.8)
    pdf.ln(3)
    _pdf_table(pdf, doc, rows)
    if not rows:
        pdf.cell(0, 6, doc.word("empty", "Nothing in this range."))
    pdf.output(target)
    return len(rows)
