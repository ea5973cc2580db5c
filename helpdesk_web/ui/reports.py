"""The reports page (/reports) and its exports (/reports/export): figures over a date
range by day, week or month, a chart drawn on the server, and every report and list as
CSV, XLSX or PDF. Admins and supervisors see everything; sales the sales, payments and
their lists."""
from __future__ import annotations

import os
import tempfile

from flask import Blueprint, Response, abort, g, render_template, request
from flask_babel import gettext as _
from markupsafe import Markup

from gateway.desk.users import audit
from gateway.reports import charts, export, queries
from gateway.reports.queries import ReportError
from helpdesk_web.auth import login_required
from helpdesk_web.db import get_db, helpdesk

bp = Blueprint("reports", __name__)

READERS = ("admin", "supervisor", "sales")
SALES_KINDS = ("sales", "payment-status", "orders", "payments")
MIMETYPES = {"csv": "text/csv; charset=utf-8",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             "pdf": "application/pdf"}


def titles() -> dict[str, str]:
    return {"sms-traffic": _("Texts in and out per modem"),
            "ticket-volume": _("Tickets opened and closed"),
            "response-times": _("Response and resolution times per operator"),
            "sales": _("Orders and revenue per product"),
            "payment-status": _("Payments and how long they waited"),
            "call-outcomes": _("Calls answered, missed and called back"),
            "messages": _("Messages"), "tickets": _("Tickets"), "orders": _("Orders"),
            "payments": _("Payments"), "calls": _("Calls"), "contacts": _("Contacts")}


def labels() -> dict[str, str]:
    return {
        "period": _("Period"), "modem": _("Modem"), "in": _("In"), "out": _("Out"),
        "kind": _("Kind"), "opened": _("Opened"), "closed": _("Closed"),
        "operator": _("Operator"), "tickets": _("Tickets"),
        "first_response_median": _("First response, median (min)"),
        "first_response_p90": _("First response, 90th percentile (min)"),
        "first_response_sla_met_pct": _("First response within SLA (%)"),
        "resolved": _("Resolved"), "resolution_median": _("Resolution, median (min)"),
        "resolution_p90": _("Resolution, 90th percentile (min)"),
        "resolution_sla_met_pct": _("Resolution within SLA (%)"),
        "product": _("Product"), "orders": _("Orders"), "quantity": _("Quantity"),
        "revenue": _("Revenue (paid)"), "confirmed": _("Confirmed"), "rejected": _("Rejected"),
        "waiting": _("Waiting"), "wait_median": _("Wait, median (min)"),
        "wait_p90": _("Wait, 90th percentile (min)"),
        "oldest_waiting": _("Oldest still waiting (min)"), "answered": _("Answered"),
        "missed": _("Missed"), "called_back": _("Called back"),
        "id": _("No."), "created_at": _("Created"), "direction": _("Direction"),
        "number": _("Number"), "status": _("Status"), "intent": _("Intent"),
        "ticket": _("Ticket"), "text": _("Text"), "priority": _("Priority"),
        "subject": _("Subject"), "phone": _("Phone"), "name": _("Name"),
        "assignee": _("Assignee"), "first_response_at": _("First response"),
        "closed_at": _("Closed at"), "merged_into": _("Merged into"), "items": _("Items"),
        "total": _("Total"), "paid_at": _("Paid at"), "amount": _("Amount"), "bank": _("Bank"),
        "payer_name": _("Payer"), "order": _("Order"), "decided_at": _("Decided at"),
        "decided_by": _("Decided by"), "started_at": _("Started"),
        "answered_at": _("Answered at"), "ended_at": _("Ended at"),
        "disposition": _("Outcome"), "talk_seconds": _("Talk time (s)"),
        "organisation": _("Organisation"), "type": _("Type"), "opted_out": _("Opted out"),
        "blocked": _("Blocked"),
    }


def words() -> dict[str, str]:
    return {"range": _("Range"), "generated": _("Generated"), "day": _("by day"),
            "week": _("by week"), "month": _("by month"),
            "capped": _("This PDF shows the first {cap} of {total} rows; export CSV or XLSX "
                        "for all of them."),
            "empty": _("Nothing in this range.")}


def _allowed(kind: str) -> bool:
    return g.user.role != "sales" or kind in SALES_KINDS


def _company() -> str:
    return helpdesk().config.company


def _period():
    config = helpdesk().config
    return queries.parse_range(request.args.get("from"), request.args.get("to"),
                               request.args.get("grouping"), config.timezone)


@bp.route("/reports")
@login_required(roles=READERS)
def index():
    names = [n for n in queries.REPORTS if _allowed(n)]
    lists = [k for k in export.LISTS if _allowed(k)]
    name = request.args.get("report") or names[0]
    if name not in queries.REPORTS:
        abort(404)
    if not _allowed(name):
        abort(403, _("Your role (%(role)s) may not do this; ask an admin.", role=g.user.role))
    error, report, chart = None, None, None
    try:
        period = _period()
    except ReportError as e:
        error, period = str(e), queries.parse_range(None, None, None,
                                                    helpdesk().config.timezone)
    if error is None:
        report = queries.run(get_db(), name, period)
        names_of = labels()
        # Our own drawing, every text in it escaped (gateway.reports.charts).
        chart = Markup(charts.bar_chart(report.categories, report.series,
                                        title=titles()[name], labels=names_of,
                                        unit=report.chart_unit))
    return render_template("reports/index.html", name=name, names=names, lists=lists,
                           titles=titles(), labels=labels(), report=report, chart=chart,
                           period=period, error=error, formats=export.FORMATS,
                           pdf_cap=export.PDF_ROW_CAP,
                           company=_company()), 400 if error else 200


@bp.route("/reports/export")
@login_required(roles=READERS)
def download():
    kind = request.args.get("kind", "")
    fmt = request.args.get("format", "csv")
    if kind not in export.KINDS or fmt not in export.FORMATS:
        abort(404)
    if not _allowed(kind):
        abort(403, _("Your role (%(role)s) may not do this; ask an admin.", role=g.user.role))
    try:
        period = _period()
    except ReportError as e:
        abort(400, str(e))
    db = get_db()
    audit(db, g.user.id, "report.export", "report", None,
          {"kind": kind, "format": fmt, "from": str(period.first), "to": str(period.last),
           "grouping": period.grouping})
    db.commit()
    filename = f"{kind}_{period.first}_{period.last}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if kind in export.LISTS:
        # Read after this view returns: a session of its own, closed with the stream.
        session = helpdesk().sessionmaker()
        total = export.list_count(session, kind, period) if fmt == "pdf" else None
        doc = export.list_document(session, kind, period, _company(), title=titles()[kind],
                                   labels=labels(), words=words())
    else:
        session = None
        report = queries.run(db, kind, period)
        doc = export.report_document(report, _company(), title=titles()[kind],
                                     labels=labels(), words=words())
        total = None
    if fmt == "csv":
        def chunks():
            try:
                yield from export.csv_chunks(doc)
            finally:
                if session is not None:
                    session.close()
        return Response(chunks(), mimetype=MIMETYPES["csv"], headers=headers)
    # XLSX and PDF are whole files (a zip, a page tree): made on disk, then streamed.
    handle, path = tempfile.mkstemp(suffix="." + fmt, prefix="helpdesk-export-")
    os.close(handle)
    try:
        if fmt == "xlsx":
            export.write_xlsx(doc, path)
        else:
            export.write_pdf(doc, path, total=total)
    except export.ExportError as e:  # no font for the PDF: say which package brings it
        os.unlink(path)
        abort(503, str(e))
    except BaseException:
        os.unlink(path)
        raise
    finally:
        if session is not None:
            session.close()
    return Response(_file_chunks(path), mimetype=MIMETYPES[fmt], headers=headers)


def _file_chunks(path: str, size: int = 64 * 1024):
    try:
        with open(path, "rb") as f:
            while chunk := f.read(size):
                yield chunk
    finally:
        os.unlink(path)
