"""`helpdesk export KIND --from --to`: CSV, XLSX and PDF files with the company's name,
the range and the time; lists read in keyset batches by id and written as they are read
(XLSX in constant_memory mode); mistakes as one line and exit code 2. SQLite, MariaDB and
PostgreSQL."""
from __future__ import annotations

import csv
import datetime as dt
import io

import openpyxl
import pypdf
import pytest
from sqlalchemy import event

from gateway import cli
from gateway.db.models import Contact, Message
from gateway.reports import export
from gateway.reports.queries import Range

TEXT = "Kak, pesanan sy blm sampai. Tolong dicek ya 🙏 – Ibu Sri (Jl. Cempaka №5)"


def local(*args) -> dt.datetime:
    return dt.datetime(*args) - dt.timedelta(hours=7)


@pytest.fixture
def filled(db):
    contact = Contact(phone="+6281234567890", name="Sri Rahayu")
    db.add(contact)
    db.flush()
    for i in range(7):
        db.add(Message(direction="in", number=contact.phone, contact_id=contact.id,
                       text=TEXT if i else "=1+2", status="received", modem="modem1",
                       created_at=local(2026, 3, 2, 8, i)))
    db.commit()


@pytest.fixture
def run(db_url, engine, tmp_path, capsys):
    path = tmp_path / "h.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[reports]\ncompany = "Toko Maju Jaya"\n')

    def call(*argv):
        code = cli.main(["--config", str(path), *argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def test_csv_to_a_file(run, filled, tmp_path):
    target = tmp_path / "out" / "pesan.csv"
    target.parent.mkdir()
    code, _out, err = run("export", "messages", "--from", "2026-03-01", "--to", "2026-03-02",
                          "-o", str(target))
    assert code == 0 and "written to" in err
    assert [p.name for p in target.parent.iterdir()] == ["pesan.csv"]  # no .part left
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert rows[0] == ["Toko Maju Jaya"] and rows[1] == ["Messages"]
    assert rows[5][:2] == ["Id", "Created at"]
    assert len(rows) == 6 + 7
    assert rows[6][-1] == "'=1+2" and rows[7][-1] == TEXT
    assert rows[6][1] == "2026-03-02 08:00:00"


def test_csv_to_standard_output(run, filled):
    code, out, _err = run("export", "messages", "--from", "2026-03-03", "--to", "2026-03-03")
    assert code == 0 and out.startswith("\ufeffToko Maju Jaya")
    assert out.count("\n") == 6  # heading and column names: nothing that day


def test_xlsx_and_pdf(run, filled, tmp_path):
    code, _out, _err = run("export", "messages", "--from", "2026-03-01", "--to", "2026-03-02",
                           "-o", str(tmp_path / "pesan.xlsx"))
    assert code == 0
    sheet = openpyxl.load_workbook(tmp_path / "pesan.xlsx").active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Toko Maju Jaya" and "2026-03-01 – 2026-03-02" in rows[2][0]
    assert rows[6][1] == dt.datetime(2026, 3, 2, 8, 0)  # a real date cell, Jakarta time
    assert rows[6][-1] == "'=1+2" and rows[7][-1] == TEXT
    code, _out, _err = run("export", "ticket-volume", "--from", "2026-03-01", "--to",
                           "2026-03-31", "--group", "week", "--format", "pdf", "-o",
                           str(tmp_path / "tiket"))
    assert code == 0
    text = pypdf.PdfReader(tmp_path / "tiket").pages[0].extract_text()
    assert "Toko Maju Jaya" in text and "Tickets opened and closed" in text and "(week)" in text
    code, _out, _err = run("export", "messages", "--from", "2026-03-01", "--to", "2026-03-02",
                           "-o", str(tmp_path / "pesan.pdf"))
    text = pypdf.PdfReader(tmp_path / "pesan.pdf").pages[0].extract_text()
    # the Unicode font: the dash and the ellipsis of a cut text are there as they are
    assert "pesanan sy blm sampai. Tolong dicek ya" in text and "– Ibu Sri" in text
    assert "…" in text


@pytest.mark.parametrize("argv, message", [
    (("export", "surat", "--from", "2026-03-01", "--to", "2026-03-02"), "unknown KIND 'surat'"),
    (("export", "messages", "--from", "1-3-2026", "--to", "2026-03-02"), "YYYY-MM-DD"),
    (("export", "messages", "--from", "2026-03-05", "--to", "2026-03-02"), "starts"),
])
def test_mistakes_are_one_line(run, argv, message):
    code, _out, err = run(*argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_lists_are_read_in_keyset_batches(db, engine, filled):
    statements = []

    def seen(_conn, _cursor, statement, *_args):
        if "FROM messages" in statement:
            statements.append(statement)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        period = Range(dt.date(2026, 3, 1), dt.date(2026, 3, 2))
        doc = export.list_document(db, "messages", period, "Toko", batch=3)
        chunks = export.csv_chunks(doc, rows_per_chunk=2)
        next(chunks)  # the heading: no row read yet
        assert statements == []
        assert "08:00:00" in next(chunks) and len(statements) == 1  # one batch so far
        rest = "".join(chunks)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert rest.count("\n") == 5
    assert len(statements) == 4  # 3 + 3 + 1 rows, then an empty batch
    # each batch starts after the last id read (SQLite writes LIMIT n OFFSET 0 for LIMIT n)
    assert all("messages.id >" in s and "ORDER BY messages.id" in s for s in statements)


def test_xlsx_is_written_in_constant_memory(monkeypatch, tmp_path):
    import xlsxwriter

    options = []
    real = xlsxwriter.Workbook

    def spy(target, opts):
        options.append(opts)
        return real(target, opts)
    monkeypatch.setattr(xlsxwriter, "Workbook", spy)
    period = Range(dt.date(2026, 3, 1), dt.date(2026, 3, 2))
    pulled = []

    def rows():
        for i in range(3):
            pulled.append(i)
            yield [i, "=SUM(A1)"]
    doc = export.Document("x", "X", "Toko", period, dt.datetime(2026, 3, 2), ["id", "text"],
                          rows())
    export.write_xlsx(doc, str(tmp_path / "x.xlsx"))
    assert options[0]["constant_memory"] is True and pulled == [0, 1, 2]
    cell = openpyxl.load_workbook(tmp_path / "x.xlsx").active["B7"]
    assert cell.data_type == "s" and cell.value == "'=SUM(A1)"
