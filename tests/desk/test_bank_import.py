"""Bank statements: each bank's CSV read (gateway.imports.bank), its credits matched and
confirmed (gateway.desk.statements), and `helpdesk import bank`."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway import cli
from gateway.config import parse
from gateway.db.models import (
    AuditLog,
    BankStatementLine,
    Contact,
    Message,
    Order,
    OrderItem,
    Payment,
    Product,
    Ticket,
    utcnow,
)
from gateway.desk import payments, statements
from gateway.imports import bank

DATA = Path(__file__).resolve().parent.parent / "data" / "bank"
TODAY = dt.date(2026, 12, 2)
KOPERASI = {"date": 1, "description": 2, "amount": 3, "marker": 4, "date_format": "%d.%m.%Y",
            "decimal": ",", "skip_lines": 2}
SARI = payments.Actor(None, "sari")


def sample(name: str) -> bytes:
    return (DATA / f"{name}.csv").read_bytes()


def read(data: bytes, formats=None, name=None) -> bank.Statement:
    return bank.read(data, bank.layouts(formats), name, today=TODAY)


# --- reading: no database ----------------------------------------------------------------

@pytest.mark.parametrize("name, account, credits, debits, unreadable", [
    ("bca", "0123456789", [51_037, 75_000, 250_000, 250_000], 2,
     {12: "not a number", 13: "date '31/11'", 15: "2 columns"}),
    ("mandiri", None, [62_044, 100_000], 1, {5: "date '13/13/26'", 6: "both the debit"}),
    ("bri", None, [80_021], 1, {4: "'ratusan' is not a number"}),
    ("bni", None, [93_058, 20_000], 1, {}),
])
def test_each_bank_is_detected_and_read(name, account, credits, debits, unreadable):
    statement = read(sample(name))
    assert statement.layout.name == name and statement.account == account
    assert [line.amount for line in statement.credits] == credits
    assert statement.debits == debits
    assert {n: why for n, why in statement.unreadable}.keys() == unreadable.keys()
    for number, why in statement.unreadable:
        assert unreadable[number] in why
    assert all(line.credit for line in statement.credits)


def test_bca_dates_take_the_year_of_the_period_and_pend_waits():
    statement = read(sample("bca"))
    assert statement.credits[0].booked_on == dt.date(2026, 11, 2)
    assert "BUDI SANTOSO" in statement.credits[0].description
    assert statement.pending == [16]  # not booked yet: a later statement carries it
    assert statement.lines_read == 10  # the totals at the end are no transactions


def test_a_dd_mm_date_without_a_period_is_never_in_the_future():
    data = b"Tanggal Transaksi,Keterangan,Cabang,Jumlah,Saldo\n'30/12,TRSF,0000,5.00 CR,5.00\n"
    [line] = read(data).credits
    assert line.booked_on == dt.date(2025, 12, 30)  # 'today' is 2 December 2026


def test_mandiri_carries_the_account_and_both_descriptions():
    first = read(sample("mandiri")).credits[0]
    assert first.account == "1270010264453"
    assert first.description == "SA OB CA No Book DARI BUDI SANTOSO PESANAN 12"
    assert first.booked_on == dt.date(2026, 11, 2)


def test_sen_are_kept_apart_from_rupiah():
    ani = read(sample("bni")).credits[1]
    assert (ani.amount, ani.sen) == (20_000, 50)


def test_identical_lines_both_count_with_different_fingerprints():
    statement = read(sample("bca"))
    cash = [line for line in statement.credits if line.description == "SETORAN TUNAI"]
    assert len(cash) == 2 and cash[0].fingerprint != cash[1].fingerprint
    again = read(sample("bca"))
    assert [c.fingerprint for c in again.credits] == [c.fingerprint for c in statement.credits]


@pytest.mark.parametrize("raw, decimal, expected", [
    ("1,500,000.00", ".", (150_000_000, None, False)),
    ("1.500.000,00", ",", (150_000_000, None, False)),
    ("150000.00 CR", ".", (15_000_000, "CR", False)),
    ("100,000.00 DB", ".", (10_000_000, "DB", False)),
    ("Rp 150.000", ",", (15_000_000, None, False)),
    ("-25,000.00", ".", (2_500_000, None, True)),
    ("(25,000.00)", ".", (2_500_000, None, True)),
    (".00", ".", (0, None, False)),
    ("12,50", ",", (1_250, None, False)),
])
def test_amounts_as_banks_write_them(raw, decimal, expected):
    assert bank._amount(raw, decimal) == expected


@pytest.mark.parametrize("raw, decimal", [
    ("1.500.000,00", "."), ("1,500,000.00", ","), ("12O,000.00", "."), ("1,50,000.00", "."),
    ("150.000", "."), ("", "."), ("abc", "."), ("1.000.000.000.000.000.000,00", ","),
])
def test_amounts_that_are_not_money_are_refused(raw, decimal):
    with pytest.raises(bank._Unreadable, match="amount"):
        bank._amount(raw, decimal)


def test_a_negative_or_marked_amount_in_a_credit_column_is_no_credit():
    head = b"DATE,TIME,REMARK,DEBET,CREDIT,LEDGER,TELLER ID\n"
    data = head + (b'02/11/26,03:42,KOREKSI,0.00,"-80,021.00",0.00,X\n'
                   b'02/11/26,03:43,KOREKSI,0.00,"80,021.00 DB",0.00,X\n'
                   b'02/11/26,03:44,DARI BUDI,0.00,"80,021.00",0.00,X\n')
    statement = read(data)
    assert [line.amount for line in statement.credits] == [80_021]
    assert [n for n, _why in statement.unreadable] == [2, 3]
    assert all("credit column has a sign" in why for _n, why in statement.unreadable)


def test_a_configured_layout_reads_cp1252_semicolons_and_indonesian_amounts():
    statement = read(sample("koperasi"), {"koperasi": KOPERASI}, "koperasi")
    assert statement.layout.bank == "KOPERASI"
    assert [(c.amount, c.description) for c in statement.credits] == [
        (51_037, "Transfer dari José Ramírez"), (1_500_000, "Setoran «tunai»")]
    assert statement.debits == 1
    [(number, why)] = statement.unreadable
    assert number == 6 and "1.500.000,00" in why  # written the other way: said, not guessed


def test_a_layout_without_a_header_is_never_guessed():
    with pytest.raises(bank.StatementUnreadable, match="not a statement in a known layout"):
        read(sample("koperasi"), {"koperasi": KOPERASI})


def test_the_configuration_follows_a_bank_that_changed_its_layout():
    # BCA moves Jumlah to the end and renames Keterangan: [bank.formats.bca] says so.
    data = (b"No. rekening : 0123456789\nPeriode : 01/11/2026 - 30/11/2026\n"
            b"Tanggal;Uraian;Cabang;Saldo;Jumlah;Tipe\n"
            b"02/11/2026;TRSF E-BANKING BUDI;0000;1.551.037,00;51.037,00;CR\n"
            b"03/11/2026;BIAYA ADM;0000;1.541.037,00;10.000,00;DB\n")
    with pytest.raises(bank.StatementUnreadable):
        read(data)
    config = parse({"bank": {"formats": {"bca": {
        "header": ["Uraian", "Jumlah", "Tipe"], "date": "Tanggal", "description": "Uraian",
        "amount": "Jumlah", "marker": "Tipe", "decimal": ",",
        "date_format": "%d/%m/%Y"}}}})
    statement = read(data, config.bank_formats)
    assert statement.layout.name == "bca" and statement.account == "0123456789"
    assert [(c.amount, c.description) for c in statement.credits] == [
        (51_037, "TRSF E-BANKING BUDI")]
    assert statement.debits == 1 and statement.unreadable == []


def test_encodings_and_delimiters():
    body = ("Post Date;Value Date;Branch;Journal No.;Description;Debit;Credit;Balance\r\n"
            "02/11/26 06.25.21;02/11/26;0996;1;TRANSFER DARI Sdr ANDRÉ;.00;\"10,000.00\";0\r\n")
    for data in (body.encode("utf-8-sig"), body.encode("cp1252"), body.encode("utf-16")):
        [line] = read(data).credits
        assert line.amount == 10_000 and line.description.endswith("ANDRÉ")


@pytest.mark.parametrize("data, name, message", [
    (b"", None, "empty"),
    (b"\x00\x01\x02garbage,,\n", None, "not a statement in a known layout"),
    (b"a,b,c\n1,2,3\n", "bca", "not a bca statement"),
    (b"a,b,c\n", "permata", "no bank format named 'permata'"),
    (b"x" * (bank.MAX_BYTES + 1), None, "larger than"),
])
def test_a_file_that_cannot_be_read_says_why(data, name, message):
    with pytest.raises(bank.StatementUnreadable, match=message):
        read(data, name=name)


def test_broken_quoting_keeps_the_lines_before_it():
    data = (b"DATE,TIME,REMARK,DEBET,CREDIT,LEDGER,TELLER ID\n"
            b'02/11/26,03:42:14,DARI 0206,0.00,"80,021.00",0,X\n'
            b'03/11/26,03:42:14,"DARI 0207,0.00,"1.00",0,X\n')
    statement = read(data)
    assert [c.amount for c in statement.credits] == [80_021]


# --- matching and confirming: on every database ------------------------------------------

def order(db, total, *, phone, stock=10, sms=None, payer=None, bank_name="BCA",
          sms_amount=None, code="KP01", placed=dt.datetime(2026, 11, 1)):
    """An open order of one `code` with this total; with `sms`, the customer's unverified
    payment text and its payer name."""
    product = db.scalar(select(Product).where(Product.code == code))
    if product is None:
        product = Product(code=code, name="Kopi", price=25_000, stock=stock, active=True)
        db.add(product)
    contact = Contact(phone=phone, name=payer)
    db.add(contact)
    db.flush()
    ticket = Ticket(kind="order", status="pending", contact_id=contact.id, created_at=utcnow())
    db.add(ticket)
    db.flush()
    row = Order(contact_id=contact.id, ticket_id=ticket.id, status="awaiting_payment",
                unique_code=total % 1000, total=total, open_total=total, created_at=placed)
    row.items.append(OrderItem(product_id=product.id, code=code, quantity=1,
                               unit_price=25_000))
    db.add(row)
    db.flush()
    payment = None
    if sms:
        message = Message(direction="in", number=phone, text=sms, status="received",
                          intent="payment", contact_id=contact.id, ticket_id=ticket.id,
                          modem="modem1", created_at=utcnow())
        db.add(message)
        db.flush()
        payment = Payment(contact_id=contact.id, order_id=row.id, message_id=message.id,
                          amount=sms_amount or total, bank=bank_name, payer_name=payer,
                          status="unverified", created_at=utcnow())
        db.add(payment)
    db.commit()
    return row.id, payment.id if payment else None


def config(auto_confirm=False, **formats):
    return parse({"bank": {"auto_confirm": auto_confirm, "formats": formats}})


def run(db, name, cfg=None, **kwargs):
    return bank.import_statement(db, sample(name), cfg or config(), SARI, today=TODAY,
                                 file_name=f"{name}.csv", **kwargs)


def lines(db):
    db.expire_all()
    return db.scalars(select(BankStatementLine).order_by(BankStatementLine.id)).all()


def outbound(db):
    db.expire_all()
    return db.scalars(select(Message).where(Message.direction == "out")).all()


def test_credits_match_by_unique_total_then_by_sms_confirmation(db):
    budi, _ = order(db, 51_037, phone="+6281100000001")
    # Siti paid 75,000 for an order of 75,412: only her text says it is hers.
    siti, siti_pay = order(db, 75_412, phone="+6281100000002", sms="BAYAR 2 75000 BCA Siti",
                           payer="Siti A", sms_amount=75_000)
    summary = run(db, "bca")
    r = summary.recorded
    assert (r.new, r.by_total, r.by_sms, r.ambiguous, r.unmatched) == (4, 1, 1, 0, 2)
    assert summary.confirmed == 0 and summary.waiting == 2
    rows = lines(db)
    assert [(x.status, x.matched_by, x.order_id) for x in rows] == [
        ("matched", "total", budi), ("matched", "sms", siti),
        ("unmatched", None, None), ("unmatched", None, None)]
    assert rows[1].payment_id == siti_pay
    # Nothing is decided until someone clicks: no payment confirmed, no SMS.
    assert db.get(Order, budi).status == "awaiting_payment" and outbound(db) == []
    text = "\n".join(summary.lines())
    for expected in ("lines read: 10", "matched by unique total: 1",
                     "matched by SMS confirmation: 1", "waiting for a click on /payments: 2",
                     "unmatched: 2", "unreadable: 3", "line 13: the date '31/11'",
                     "debits ignored: 2", "not booked yet (PEND"):
        assert expected in text


def test_one_click_confirms_through_the_payments_path(db):
    budi, _ = order(db, 51_037, phone="+6281100000001")
    run(db, "bca")
    line = lines(db)[0]
    decision = statements.confirm_line(db, line.id, SARI, "id")
    db.commit()
    assert decision.order.id == budi and db.get(Order, budi).status == "paid"
    assert db.get(Product, decision.order.items[0].product_id).stock == 9
    payment = db.get(Payment, decision.payment.id)
    assert (payment.status, payment.amount, payment.bank) == ("confirmed", 51_037, "BCA")
    [sms] = outbound(db)
    assert sms.number == "+6281100000001" and sms.id == decision.message.id
    actions = db.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["bank.import", "payment.confirm", "bank.confirm"]
    with pytest.raises(payments.PaymentConflict, match="is confirmed"):
        statements.confirm_line(db, line.id, SARI, "id")
    db.rollback()
    assert len(outbound(db)) == 1 and lines(db)[0].status == "confirmed"


def test_auto_confirm_confirms_what_matched_and_tells_the_customer(db):
    budi, budi_pay = order(db, 51_037, phone="+6281100000001", sms="BAYAR 1 51037",
                           payer="Budi")
    summary = run(db, "bca", config(auto_confirm=True))
    assert summary.confirmed == 1 and summary.waiting == 0 and len(summary.message_ids) == 1
    # The customer's own text's payment is the one confirmed: no second payment row.
    assert db.scalar(select(func.count(Payment.id))) == 1
    assert db.get(Payment, budi_pay).status == "confirmed"
    assert db.get(Order, budi).status == "paid"
    assert db.scalar(select(Product.stock)) == 9
    [sms] = outbound(db)
    assert sms.id == summary.message_ids[0] and "51.037" in sms.text
    [row] = db.scalars(select(AuditLog).where(AuditLog.action == "payment.confirm")).all()
    assert json.loads(row.detail)["amount"] == 51_037
    assert lines(db)[0].status == "confirmed"


def test_auto_confirm_leaves_a_refused_line_waiting_with_why(db):
    order(db, 51_037, phone="+6281100000001", stock=0)  # sold out meanwhile
    order(db, 62_044, phone="+6281100000003", code="TEH1")
    summary = run(db, "bca", config(auto_confirm=True))
    assert summary.confirmed == 0 and len(summary.refused) == 1
    line = lines(db)[0]
    assert line.status == "matched" and "left in stock" in line.reason
    assert outbound(db) == [] and db.scalar(select(func.count(Payment.id))) == 0
    summary = run(db, "mandiri", config(auto_confirm=True))
    assert summary.confirmed == 1  # the next statement is not held up


def test_ambiguous_confirmations_are_left_for_a_person(db):
    # Two customers texted that they paid 100,000; Mandiri's line names neither.
    order(db, 100_123, phone="+6281100000004", sms="BAYAR 100000", payer="Agus",
          sms_amount=100_000)
    order(db, 100_456, phone="+6281100000005", sms="BAYAR 100000", payer="Rina",
          sms_amount=100_000)
    summary = run(db, "mandiri", config(auto_confirm=True))
    assert summary.recorded.ambiguous == 1 and summary.confirmed == 0
    row = [x for x in lines(db) if x.amount == 100_000][0]
    assert row.status == "ambiguous" and "several customers" in row.reason
    assert outbound(db) == []


def test_the_payer_name_decides_between_two_confirmations(db):
    order(db, 62_500, phone="+6281100000004", sms="BAYAR 62044", payer="Agus",
          sms_amount=62_044)
    budi, _ = order(db, 62_999, phone="+6281100000005", sms="BAYAR 62044", payer="Budi S",
                    sms_amount=62_044)
    run(db, "mandiri")
    row = lines(db)[0]
    assert (row.status, row.matched_by, row.order_id) == ("matched", "sms", budi)


def test_a_second_line_for_the_same_order_waits_for_a_person(db):
    order(db, 51_037, phone="+6281100000001")
    data = sample("bca").replace(b"'03/11,\"BIAYA ADM\",0000,\"10,000.00 DB\"",
                                 b"'03/11,\"TRSF BUDI LAGI\",0000,\"51,037.00 CR\"")
    bank.import_statement(db, data, config(), SARI, today=TODAY)
    first, second = lines(db)[:2]
    assert first.status == "matched" and second.status == "ambiguous"
    assert "already matched" in second.reason


def test_importing_twice_changes_nothing(db):
    order(db, 51_037, phone="+6281100000001")
    run(db, "bca", config(auto_confirm=True))

    def snapshot():
        db.expire_all()
        return [db.scalar(select(func.count()).select_from(model))
                for model in (BankStatementLine, Payment, Message, AuditLog)]
    before = snapshot()
    again = run(db, "bca", config(auto_confirm=True))
    assert snapshot() == before
    assert (again.recorded.new, again.recorded.known, again.confirmed) == (0, 4, 0)
    assert "4 imported before" in "\n".join(again.lines())


def test_an_overlapping_statement_adds_only_the_new_identical_line(db):
    data = sample("bca")
    run(db, "bca")
    third = b"'05/11,\"SETORAN TUNAI\",0998,\"250,000.00 CR\",\"2,366,037.00\"\n"
    more = data.replace(b"'07/11", third + b"'07/11", 1)
    summary = bank.import_statement(db, more, config(), SARI, today=TODAY)
    assert (summary.recorded.new, summary.recorded.known) == (1, 4)
    assert sum(x.description == "SETORAN TUNAI" for x in lines(db)) == 3


def test_an_order_placed_after_the_transfer_is_never_what_it_paid(db):
    # 51,037 paid an earlier order on 2 November; its unique code came free and an order
    # placed on 1 December has that total now. Importing November's statement late must
    # not confirm it, neither by the total nor through the customer's text.
    late, _ = order(db, 51_037, phone="+6281100000001", placed=dt.datetime(2026, 12, 1))
    siti, _ = order(db, 75_412, phone="+6281100000002", sms="BAYAR 75000 BCA Siti",
                    payer="Siti A", sms_amount=75_000, placed=dt.datetime(2026, 12, 1))
    summary = run(db, "bca", config(auto_confirm=True))
    assert summary.confirmed == 0 and summary.recorded.matched_ids == []
    first, second = lines(db)[:2]
    assert (first.status, first.order_id) == ("ambiguous", late)
    assert (second.status, second.order_id) == ("ambiguous", siti)
    assert "placed after the bank booked" in first.reason
    assert db.get(Order, late).status == "awaiting_payment" and outbound(db) == []


def test_lines_with_sen_never_match(db):
    order(db, 20_000, phone="+6281100000006")
    run(db, "bni")
    row = [x for x in lines(db) if x.amount == 20_000][0]
    assert row.status == "unmatched" and "sen" in row.reason


# --- the command line ----------------------------------------------------------------------

@pytest.fixture
def helpdesk(db_url, engine, tmp_path, capsys):
    path = tmp_path / "h.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[bank]\nauto_confirm = true\n'
                    '[bank.formats.koperasi]\ndate = 1\ndescription = 2\namount = 3\n'
                    'marker = 4\ndate_format = "%d.%m.%Y"\ndecimal = ","\nskip_lines = 2\n')

    def call(*argv):
        code = cli.main(["--config", str(path), *argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def test_cli_imports_and_prints_a_summary(helpdesk, db):
    budi, _ = order(db, 51_037, phone="+6281100000001")
    code, out, err = helpdesk("import", "bank", str(DATA / "koperasi.csv"), "--bank",
                              "koperasi")
    assert code == 0 and err == ""
    assert "helpdesk: matched by unique total: 1" in out and "confirmed: 1" in out
    assert "line 6: the amount '1,500,000.00'" in out
    db.expire_all()
    assert db.get(Order, budi).status == "paid"
    code, out, _ = helpdesk("import", "bank", str(DATA / "koperasi.csv"), "--bank",
                            "koperasi")
    assert code == 0 and "2 imported before" in out and "confirmed: 0" in out


@pytest.mark.parametrize("argv, message", [
    (["bank", str(DATA / "koperasi.csv")], "not a statement in a known layout"),
    (["bank", str(DATA / "bca.csv"), "--bank", "permata"], "no bank format named 'permata'"),
    (["bank", "/nonexistent/mutasi.csv"], "No such file"),
])
def test_cli_says_in_one_line_why_a_file_cannot_be_read(helpdesk, argv, message):
    code, out, err = helpdesk("import", *argv)
    assert code == 2 and out == "" and message in err and err.count("\n") == 1


def test_config_mistakes_are_one_line(tmp_path):
    from gateway.config import ConfigError

    for body, message in [({"auto_confirm": "yes"}, "bank.auto_confirm: must be true or false"),
                          ({"formats": {"x": {"date": 1}}}, "bank.formats.x: needs amount"),
                          ({"formats": {"x": {"date": 0}}}, "bank.formats.x.date: must be a "
                                                            "column number"),
                          ({"formats": {"bca": {"decimal": ";"}}}, "bank.formats.bca.decimal")]:
        with pytest.raises(ConfigError, match=message):
            parse({"bank": body}, "h.toml")
    assert dataclasses.asdict(parse({}))["bank_auto_confirm"] is False
