"""What customers' texts do: orders against the catalogue, unique totals, payments
matched to orders, confirmation by sales, complaints, status, registration, opt-out."""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from gateway.db.models import Contact, Message, Order, Payment, Product, Ticket
from gateway.db.transaction import in_transaction
from gateway.desk import orders, payments, replies
from gateway.desk.inbox import RawPart, store_batch

T0 = dt.datetime(2026, 11, 23, 9, 0, 0)
BUDI = "+6281234567890"
_locations = itertools.count(1)


@pytest.fixture
def shop(sessionmaker, config):
    """A catalogue, bank accounts, and a `text(sender, words)` that files one SMS."""
    config = dataclasses.replace(config, bank_accounts=("BCA 1234567890 a.n. Toko Maju",))
    with sessionmaker.begin() as s:
        s.add_all([Product(code="XL25", name="Voucher XL 25K", price=25500, stock=100),
                   Product(code="TSEL50", name="Pulsa Telkomsel 50K", price=50500, stock=None),
                   Product(code="MODEM", name="Modem USB", price=250000, stock=0)])
    clock = itertools.count()

    def text(words, sender=BUDI):
        when = T0 + dt.timedelta(seconds=next(clock))
        part = RawPart(location=next(_locations), sender=sender, text=words, smsc_time=when)
        in_transaction(sessionmaker, store_batch, "modem1", [part], config, when)
        with sessionmaker() as s:
            message = s.scalars(select(Message).where(Message.direction == "in")
                                .order_by(Message.id.desc())).first()
            replies_ = s.scalars(select(Message.text).where(
                Message.direction == "out", Message.id > message.id)).all()
        return message, replies_
    return text


def rows(sessionmaker, model):
    with sessionmaker() as s:
        return s.scalars(select(model).order_by(model.id)).all()


def test_order_gets_number_items_unique_total_and_accounts(shop, sessionmaker):
    message, [reply] = shop("PESAN XL25 2")
    assert message.intent == "order"
    [order] = rows(sessionmaker, Order)
    assert order.status == "awaiting_payment" and 1 <= order.unique_code <= 999
    assert order.total == 2 * 25500 + order.unique_code
    assert f"Pesanan {order.number}" in reply and "2x XL25" in reply
    assert replies.rupiah(order.total) in reply
    assert "BCA 1234567890" in reply and f"BAYAR {order.number} {order.total}" in reply
    [ticket] = rows(sessionmaker, Ticket)
    assert ticket.kind == "order" and ticket.id == order.ticket_id


def test_unique_totals_never_collide_among_open_orders(sessionmaker, shop, config):
    config = dataclasses.replace(config, unique_code_max=5)
    with sessionmaker.begin() as s:
        contact = Contact(phone=BUDI)
        s.add(contact)
        s.flush()
        totals = {orders.create_order(s, contact.id, [orders.Line("XL25", 1)], None, 5).total
                  for _ in range(5)}
        assert len(totals) == 5
        with pytest.raises(orders.OrderProblem) as problem:
            orders.create_order(s, contact.id, [orders.Line("XL25", 1)], None, 5)
        assert problem.value.reason == "no_unique_code"


@pytest.mark.parametrize("words, problem, expect", [
    ("PESAN ZZ99 1", "unknown_product", "ZZ99 tidak ada di katalog"),
    ("PESAN MODEM 1", "out_of_stock", "sedang habis"),
    ("PESAN XL25 500", "out_of_stock", "tinggal 100"),
])
def test_order_problems_get_a_polite_answer_and_a_ticket(shop, sessionmaker, words, problem,
                                                         expect):
    message, [reply] = shop(words)
    assert rows(sessionmaker, Order) == []
    [ticket] = rows(sessionmaker, Ticket)
    assert ticket.kind == "order" and ticket.status == "new"  # a person takes it
    assert expect in reply and f"tiket {ticket.number}" in reply


def test_payment_matched_by_unique_amount_then_confirmed(shop, sessionmaker):
    shop("PESAN XL25 2")
    [order] = rows(sessionmaker, Order)
    amount = f"{order.total:,}".replace(",", ".")
    message, [reply] = shop(f"sudah tf {amount} ke bca ya min")
    assert message.intent == "payment"
    [payment] = rows(sessionmaker, Payment)
    assert payment.order_id == order.id and payment.amount == order.total
    assert payment.bank == "BCA" and payment.status == "unverified"
    assert f"pesanan {order.number}" in reply
    assert message.ticket_id == order.ticket_id  # on the order's ticket

    with sessionmaker.begin() as s:
        p, o = s.get(Payment, payment.id), s.get(Order, order.id)
        payments.confirm_payment(s, p, o, user_id=None)
    [order] = rows(sessionmaker, Order)
    assert order.status == "paid" and order.open_total is None
    assert rows(sessionmaker, Product)[0].stock == 98


def test_payment_with_wrong_amount_waits_for_a_person(shop, sessionmaker):
    shop("PESAN XL25 2")
    [order] = rows(sessionmaker, Order)
    message, [reply] = shop(f"BAYAR {order.number} 50000 BRI Budi")
    [payment] = rows(sessionmaker, Payment)
    assert payment.order_id is None and payment.amount == 50000
    assert payment.payer_name == "Budi" and payment.bank == "BRI"
    assert "berbeda" in reply and replies.rupiah(order.total) in reply


def test_payment_for_unknown_order_is_recorded_not_lost(shop, sessionmaker):
    message, [reply] = shop("BAYAR 77 150rb BNI Maria")
    [payment] = rows(sessionmaker, Payment)
    assert payment.order_id is None and payment.amount == 150000
    assert Ticket in {type(t) for t in rows(sessionmaker, Ticket)}
    assert "Petugas" in reply


def test_complaint_keyword_opens_complaint_ticket(shop, sessionmaker):
    message, [reply] = shop("KOMPLAIN paket data tidak aktif")
    [ticket] = rows(sessionmaker, Ticket)
    assert message.intent == "complaint" and ticket.kind == "complaint"
    assert f"tiket {ticket.number}" in reply


def test_status_answers_only_the_owner(shop, sessionmaker):
    shop("KOMPLAIN voucher salah")
    [ticket] = rows(sessionmaker, Ticket)
    _, [answer] = shop(f"STATUS {ticket.number}")
    assert f"Tiket {ticket.number}: baru" in answer
    _, [stranger] = shop(f"CEK {ticket.number}", sender="+6289999999999")
    assert "tidak kami temukan" in stranger and "baru" not in stranger


def test_register_names_the_contact_and_stop_opts_out(shop, sessionmaker):
    _, [reply] = shop("REG Budi Santoso")
    assert "Budi Santoso" in reply
    _, [reply] = shop("STOP")
    [contact] = rows(sessionmaker, Contact)
    assert contact.name == "Budi Santoso" and contact.opted_out
    assert "START" in reply
    _, [reply] = shop("START")
    assert not rows(sessionmaker, Contact)[0].opted_out


def test_help_lists_the_keywords(shop, sessionmaker):
    message, [reply] = shop("info")
    assert message.intent == "help" and "PESAN" in reply and "BAYAR" in reply
    assert rows(sessionmaker, Ticket) == []  # nothing for a person to do


def test_every_reply_fits_three_sms():
    longest = {"ticket_number": "9999999", "order_number": "9999999", "total": 99999999999,
               "amount": 99999999999, "expected": 99999999999, "reason": "wrong_amount",
               "items": [{"code": "ABCDEFGHIJ", "quantity": 999}] * 10, "code": "ABCDEFGHIJ",
               "accounts": ["Mandiri 1234567890123 a.n. Koperasi Sejahtera Bersama"] * 3,
               "problem": "out_of_stock", "stock": 999, "kind": "order", "number": "9999999",
               "status": "awaiting_payment", "reference": "9999999", "name": "N" * 200,
               "modem": "M" * 64, "queued": 9999999, "balance": 99999999999,
               "floor": 99999999999, "serial": "S" * 40, "until": "2099-12-31",
               "warranty": "valid", "product": "P" * 200, "state": "in_repair",
               "new_serial": "S" * 40}
    for language in replies.LANGUAGES:
        for name in replies.names():
            text = replies.render(name, language, **longest)
            assert replies.parts(text) <= replies.MAX_PARTS, (name, language)


def test_a_status_question_without_a_number_answers_the_latest_order(shop, sessionmaker):
    shop("PESAN XL25 2")
    [order] = rows(sessionmaker, Order)
    message, [answer] = shop("pesanan saya sudah dikirim belum?")
    assert message.intent == "status"
    assert f"Pesanan {order.number}: menunggu pembayaran" in answer
    assert len(rows(sessionmaker, Ticket)) == 1  # the order's ticket, no new one


def test_a_status_question_without_a_number_answers_the_open_ticket(shop, sessionmaker):
    shop("KOMPLAIN voucher salah")
    [ticket] = rows(sessionmaker, Ticket)
    message, [answer] = shop("tiket saya gimana kabarnya?")
    assert f"Tiket {ticket.number}: baru" in answer
    assert message.ticket_id == ticket.id


def test_a_status_question_about_nothing_known_goes_to_a_person(shop, sessionmaker):
    message, [answer] = shop("pesanan saya sudah dikirim belum?")
    [ticket] = rows(sessionmaker, Ticket)
    assert ticket.kind == "question" and message.ticket_id == ticket.id
    assert f"Nomor tiket Anda: {ticket.number}" in answer


def test_a_bare_status_keyword_about_nothing_known_is_told_how(shop, sessionmaker):
    _, [answer] = shop("STATUS")
    assert "CEK 12" in answer and rows(sessionmaker, Ticket) == []
