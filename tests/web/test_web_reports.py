"""The reports page and its exports: figures and chart on the page, who may see what,
hostile strings escaped on the page and defused in CSV and XLSX, the three formats with
the company's name, range and time, a CSV that streams, a PDF that says where it stops.
SQLite, MariaDB and PostgreSQL."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

import openpyxl
import pypdf
import pytest

from gateway.db.models import Contact, Message, Order, OrderItem, Product
from gateway.reports import export
from tests.helpers import page

HOSTILE = '<script>alert(1)</script>=HYPERLINK("http://x")'
RANGE = {"from": "2026-03-01", "to": "2026-03-14"}


@pytest.fixture
def config(config):
    """English pages (the figures, not the catalogue, are under test) and a company."""
    return dataclasses.replace(config, company="Toko Maju", web_language="en")


def local(*args) -> dt.datetime:
    return dt.datetime(*args) - dt.timedelta(hours=7)


@pytest.fixture
def data(db):
    contact = Contact(phone="+6281234567890", name=HOSTILE, created_at=local(2026, 3, 1, 8))
    db.add(contact)
    db.flush()
    for i in range(5):
        db.add(Message(direction="in", number=contact.phone, text=f"=cmd|' /C calc'!A{i}",
                       status="received", modem=HOSTILE[:64], contact_id=contact.id,
                       created_at=local(2026, 3, 2, 9, i)))
    db.add(Message(direction="in", number=contact.phone, text="diluar rentang",
                   status="received", modem="modem1", created_at=local(2026, 3, 15, 0, 0)))
    product = Product(code="XL25", name="Pulsa", price=25_000)
    db.add(product)
    db.flush()
    order = Order(contact_id=contact.id, status="paid", total=51_037,
                  created_at=local(2026, 3, 3, 10))
    db.add(order)
    db.flush()
    db.add(OrderItem(order_id=order.id, product_id=product.id, code="XL25", quantity=2,
                     unit_price=25_518))
    db.commit()
    return contact


def test_the_page_shows_figures_and_a_chart_with_hostile_strings_escaped(auth, client, data):
    auth.login("sari", "supervisor")
    html = page(client.get("/reports", query_string={**RANGE, "report": "sms-traffic"}))
    assert "<svg" in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "2026-03-02" in html
    assert len(html.encode()) < 100_000
    sales = page(client.get("/reports", query_string={**RANGE, "report": "sales"}))
    assert "Rp 51.036" in sales  # revenue of the items: 2 x 25.518


def test_grouping_and_bad_dates(auth, client, data):
    auth.login("sari", "supervisor")
    html = page(client.get("/reports", query_string={**RANGE, "grouping": "month"}))
    assert "2026-03-01" in html
    bad = client.get("/reports", query_string={"from": "2026-13-01"})
    assert bad.status_code == 400
    assert "YYYY-MM-DD" in bad.get_data(as_text=True)
    assert client.get("/reports/export", query_string={"kind": "messages",
                                                       "from": "kemarin"}).status_code == 400
    assert client.get("/reports", query_string={"report": "nope"}).status_code == 404
    assert client.get("/reports/export", query_string={"kind": "nope"}).status_code == 404


@pytest.mark.parametrize("role, report, status", [
    ("admin", "response-times", 200), ("supervisor", "call-outcomes", 200),
    ("sales", "sales", 200), ("sales", "payment-status", 200),
    ("sales", "response-times", 403), ("operator", "sales", 403), ("viewer", "sales", 403)])
def test_who_may_see_which_report(auth, client, role, report, status):
    auth.login("u", role)
    assert client.get("/reports", query_string={"report": report}).status_code == status


def test_sales_may_export_orders_and_payments_but_not_messages(auth, client, data):
    auth.login("s", "sales")
    assert client.get("/reports/export", query_string={
        **RANGE, "kind": "orders", "format": "csv"}).status_code == 200
    assert client.get("/reports/export", query_string={
        **RANGE, "kind": "messages", "format": "csv"}).status_code == 403


def _csv_rows(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_export_streams_with_heading_and_defused_cells(auth, client, data):
    auth.login("sari", "supervisor")
    response = client.get("/reports/export", query_string={**RANGE, "kind": "messages",
                                                           "format": "csv"})
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv"
    rows = _csv_rows(response)
    assert rows[0] == ["Toko Maju"]
    assert rows[2][0].startswith("Range: 2026-03-01 – 2026-03-14")
    assert rows[3][0].startswith("Generated: ") and rows[3][0].endswith("Asia/Jakarta")
    header = rows[5]
    assert header[:3] == ["No.", "Created", "Direction"]
    body = rows[6:]
    assert len(body) == 5  # the text after the range is not in it
    text_col, modem_col = header.index("Text"), header.index("Modem")
    assert all(r[text_col].startswith("'=cmd|") for r in body)
    assert body[0][1] == "2026-03-02 09:00:00"  # Jakarta time
    assert body[0][modem_col] == HOSTILE[:64]  # starts with '<': nothing to defuse


def test_report_exports_in_three_formats(auth, client, data):
    auth.login("admin", "admin")
    query = {**RANGE, "kind": "sales", "grouping": "week"}
    rows = _csv_rows(client.get("/reports/export", query_string={**query, "format": "csv"}))
    assert rows[5] == ["Period", "Product", "Orders", "Quantity", "Revenue (paid)"]
    assert rows[6] == ["2026-03-02", "XL25", "1", "2", "51036"]
    response = client.get("/reports/export", query_string={**query, "format": "xlsx"})
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.get_data())).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][0] == "Toko Maju"
    assert values[6][:5] == ("2026-03-02", "XL25", 1, 2, 51036)
    pdf = client.get("/reports/export", query_string={**query, "format": "pdf"})
    assert pdf.mimetype == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(pdf.get_data())).pages[0].extract_text()
    assert "Orders and revenue per product" in text
    assert "Rp 51.036" in text and "2026-03-01 – 2026-03-14" in text


def test_xlsx_list_keeps_hostile_text_as_text(auth, client, data):
    auth.login("admin", "admin")
    response = client.get("/reports/export", query_string={**RANGE, "kind": "contacts",
                                                           "format": "xlsx"})
    book = openpyxl.load_workbook(io.BytesIO(response.get_data()))
    rows = list(book.active.iter_rows())
    name = rows[6][3]
    assert name.data_type == "s" and name.value == HOSTILE


def test_pdf_of_a_long_list_says_where_it_stops(auth, client, data, db, monkeypatch):
    monkeypatch.setattr(export, "PDF_ROW_CAP", 3)
    monkeypatch.setattr(export.write_pdf, "__defaults__", (None, 3))
    auth.login("admin", "admin")
    response = client.get("/reports/export", query_string={**RANGE, "kind": "messages",
                                                           "format": "pdf"})
    reader = pypdf.PdfReader(io.BytesIO(response.get_data()))
    text = "".join(p.extract_text() for p in reader.pages)
    assert "first 3 of 5 rows" in text
    assert text.count("=cmd|") == 3


def test_exports_are_audited(auth, client, data, db):
    from sqlalchemy import select

    from gateway.db.models import AuditLog
    auth.login("admin", "admin")
    client.get("/reports/export", query_string={**RANGE, "kind": "tickets", "format": "csv"})
    db.expire_all()
    row = db.scalar(select(AuditLog).where(AuditLog.action == "report.export"))
    assert row is not None and '"kind": "tickets"' in row.detail
