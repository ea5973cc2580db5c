"""Warranty by SMS: GARANSI read, serials recorded (per item and by CSV), warranty looked
up, claims opened from a text, repair states texted and audited, replacements by the
shop's rule. SQLite and MariaDB."""
from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from gateway.config import ConfigError, parse
from gateway.db.models import (
    AuditLog,
    Contact,
    Message,
    Order,
    OrderItem,
    Product,
    SoldItem,
    Ticket,
    TicketEvent,
    WarrantyClaim,
)
from gateway.db.transaction import in_transaction
from gateway.desk import replies, warranty
from gateway.desk.inbox import RawPart, store_batch
from gateway.desk.reader import read

BUDI = "+6281234567890"
SARI = "+6281298765432"
T0 = dt.datetime(2026, 11, 23, 9, 0, 0)
_locations = itertools.count(1)


# --- reading ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, serial, note", [
    ("GARANSI SN12345", "SN12345", None),
    ("garansi sn12345", "SN12345", None),
    ("Warranty SN-123/A", "SN-123/A", None),
    ("GARANSI#SN12345#layar mati", "SN12345", "layar mati"),
    ("garansi,SN12345,tidak bisa dicas", "SN12345", "tidak bisa dicas"),
    ("GARANSI.SN12345. mati total", "SN12345", "mati total"),
    ("min garansi SN123 rusak", "SN123", "rusak"),
])
def test_garansi_forms(text, serial, note):
    r = read(text)
    assert (r.intent, r.serial, r.note, r.problems) == ("warranty", serial, note, ())


@pytest.mark.parametrize("text, problem", [
    ("GARANSI", "no_serial"), ("garansi ab", "bad_serial"),
    ("GARANSI " + "A" * 41, "bad_serial"), ("GARANSI <script>x</script> hi", "bad_serial"),
    ("GARANSI ----", "bad_serial"),
])
def test_garansi_without_a_serial_is_for_a_person(text, problem):
    r = read(text)
    assert r.intent == "warranty" and r.serial is None and problem in r.problems


def test_a_question_about_a_warranty_without_a_serial_goes_to_a_person():
    # The intent model reads it as a warranty question: the customer is told how to name
    # the item (GARANSI <serial>) and a person answers on a warranty ticket.
    r = read("min garansinya berapa lama?")
    assert (r.intent, r.serial, r.problems) == ("warranty", None, ("no_serial",))


def test_replacement_rule_is_configured():
    assert parse({}).warranty_replacement == "rest"
    assert parse({"warranty": {"replacement": "new"}}).warranty_replacement == "new"
    with pytest.raises(ConfigError, match='warranty.replacement: must be "rest"'):
        parse({"warranty": {"replacement": "forever"}})


# --- the shop ---------------------------------------------------------------------------

@pytest.fixture
def shop(sessionmaker):
    """Two products (one with a year of warranty), an order of Budi's for 2 HP + 1 XL25."""
    with sessionmaker.begin() as s:
        hp = Product(code="HP1", name="Handphone A1", price=1_500_000, stock=10,
                     warranty_days=365)
        xl = Product(code="XL25", name="Voucher XL", price=25_500, stock=None)
        budi, sari = Contact(phone=BUDI), Contact(phone=SARI)
        s.add_all([hp, xl, budi, sari])
        s.flush()
        order = Order(contact_id=budi.id, status="paid", total=3_025_500, created_at=T0,
                      paid_at=T0)
        s.add(order)
        s.flush()
        s.add_all([OrderItem(order_id=order.id, product_id=hp.id, code="HP1", quantity=2,
                             unit_price=1_500_000),
                   OrderItem(order_id=order.id, product_id=xl.id, code="XL25", quantity=1,
                             unit_price=25_500)])
        s.flush()
        ids = dict(order=order.id, hp_item=order.items[0].id, xl_item=order.items[1].id,
                   budi=budi.id, sari=sari.id)
    return ids


def test_serials_recorded_per_item_with_warranty_until(sessionmaker, shop):
    with sessionmaker.begin() as s:
        added = warranty.record_serials(s, shop["order"], {shop["hp_item"]: ["sn-a1", "SN-A2"],
                                                           shop["xl_item"]: ["XL0001"]})
        assert [i.serial for i in added] == ["SN-A1", "SN-A2", "XL0001"]
    with sessionmaker() as s:
        hp = s.scalar(select(SoldItem).where(SoldItem.serial == "SN-A1"))
        assert hp.sold_on == T0.date() and hp.warranty_until == dt.date(2027, 11, 23)
        assert hp.contact_id == shop["budi"] and hp.order_item_id == shop["hp_item"]
        assert s.scalar(select(SoldItem).where(SoldItem.serial == "XL0001")).warranty_until \
            is None
        assert s.scalar(select(AuditLog).where(AuditLog.action == "warranty.serials"))
        # recording the same again changes nothing
        assert warranty.record_serials(s, shop["order"], {shop["hp_item"]: ["SN-A1"]}) == []


@pytest.mark.parametrize("serials, sentence", [
    ({"hp": ["SN1", ]}, "not a serial number"),
    ({"hp": ["SN-1", "SN-2", "SN-3"]}, "no more serials fit"),
    ({"hp": ["SN-1", "sn-1"]}, "given twice"),
    ({"other": ["SN-1"]}, "has no item"),
])
def test_bad_serials_are_refused_with_a_sentence(sessionmaker, shop, serials, sentence):
    names = {"hp": shop["hp_item"], "other": 999}
    with sessionmaker() as s:
        with pytest.raises(warranty.WarrantyError, match=sentence):
            warranty.record_serials(s, shop["order"],
                                    {names[k]: v for k, v in serials.items()})
        s.rollback()
        assert s.scalars(select(SoldItem)).all() == []


def test_unknown_order_and_serial_sold_already(sessionmaker, shop):
    with sessionmaker.begin() as s:
        warranty.record_serials(s, shop["order"], {shop["hp_item"]: ["SN-A1"]})
    with sessionmaker() as s:
        with pytest.raises(warranty.WarrantyError, match="there is no order 77"):
            warranty.record_serials(s, 77, {1: ["SN-B1"]})
        with pytest.raises(warranty.WarrantyError, match="already sold"):
            warranty.record_serials(s, shop["order"], {shop["xl_item"]: ["SN-A1"]})


def test_csv_import_good_lines_then_idempotent_again(sessionmaker, shop):
    n = shop["order"]
    data = f"order,serial,sold\n{n},SN-A1,2026-11-01\n{n},SN-A2\n\n{n},XL0001\n".encode()
    with sessionmaker.begin() as s:
        result = warranty.import_csv(s, data)
        assert [i.serial for i in result.added] == ["SN-A1", "SN-A2", "XL0001"]
    with sessionmaker.begin() as s:
        a1 = s.scalar(select(SoldItem).where(SoldItem.serial == "SN-A1"))
        assert a1.sold_on == dt.date(2026, 11, 1) and a1.warranty_until == dt.date(2027, 11, 1)
        xl = s.scalar(select(SoldItem).where(SoldItem.serial == "XL0001"))
        assert xl.order_item_id == shop["xl_item"]  # the HP's two had no room left
        again = warranty.import_csv(s, data)
        assert again.added == [] and again.unchanged == 3
    with sessionmaker() as s:
        assert len(s.scalars(select(SoldItem)).all()) == 3


def test_csv_with_bad_lines_records_nothing_and_names_each(sessionmaker, shop):
    n = shop["order"]
    data = (f"{n},SN-A1\n"
            f"abc,SN-A2\n"
            f"999,SN-A3\n"
            f"{n},x\n"
            f"{n},SN-A4,yesterday\n"
            f"{n},SN-A5,2026-11-01,extra\n"
            f"{n},SN-A6\n"
            f"{n},SN-A7\n"
            f"{n},SN-A8\n")  # the order has room for 3
    with sessionmaker() as s:
        with pytest.raises(warranty.CsvRejected) as rejected:
            warranty.import_csv(s, data.encode())
        s.rollback()
        assert s.scalars(select(SoldItem)).all() == []
    problems = rejected.value.problems
    assert any(p.startswith("line 2:") and "not an order number" in p for p in problems)
    assert any(p.startswith("line 3:") and "no order 999" in p for p in problems)
    assert any(p.startswith("line 4:") and "not a serial" in p for p in problems)
    assert any(p.startswith("line 5:") and "not a date" in p for p in problems)
    assert any(p.startswith("line 6:") and "found 4 fields" in p for p in problems)
    assert any(p.startswith("line 9:") and "already" in p for p in problems)
    assert not any(p.startswith(("line 1:", "line 7:", "line 8:")) for p in problems)


def test_csv_not_utf8(sessionmaker, shop):
    with sessionmaker() as s, pytest.raises(warranty.CsvRejected, match="UTF-8"):
        warranty.import_csv(s, b"\xff\xfe\x00")


def test_status_in_and_out_of_warranty(sessionmaker, shop):
    with sessionmaker.begin() as s:
        warranty.record_serials(s, shop["order"], {shop["hp_item"]: ["SN-A1"],
                                                   shop["xl_item"]: ["XL0001"]})
    with sessionmaker() as s:
        item = warranty.lookup(s, " sn-a1 ")
        assert warranty.status(item, dt.date(2027, 11, 23)) == \
            warranty.Status("valid", dt.date(2027, 11, 23))
        assert warranty.status(item, dt.date(2027, 11, 24)).warranty == "expired"
        assert warranty.status(warranty.lookup(s, "XL0001")).warranty == "none"
        assert warranty.lookup(s, "NOPE1") is None and warranty.lookup(s, "<x>") is None


# --- by SMS -----------------------------------------------------------------------------

@pytest.fixture
def text(sessionmaker, config):
    clock = itertools.count()

    def send(words, sender=BUDI):
        when = T0 + dt.timedelta(seconds=next(clock))
        part = RawPart(location=next(_locations), sender=sender, text=words, smsc_time=when)
        in_transaction(sessionmaker, store_batch, "modem1", [part], config, when)
        with sessionmaker() as s:
            message = s.scalars(select(Message).where(Message.direction == "in")
                                .order_by(Message.id.desc())).first()
            answers = s.scalars(select(Message.text).where(
                Message.direction == "out", Message.id > message.id)).all()
        return message, answers
    return send


@pytest.fixture
def sold(sessionmaker, shop):
    with sessionmaker.begin() as s:
        warranty.record_serials(s, shop["order"], {shop["hp_item"]: ["SN-A1", "SN-OLD"]})
        s.scalar(select(SoldItem).where(SoldItem.serial == "SN-OLD")).warranty_until = \
            dt.date(2020, 1, 1)
    return shop


def rows(sessionmaker, model):
    with sessionmaker() as s:
        return s.scalars(select(model).order_by(model.id)).all()


def test_garansi_serial_answers_until_when(text, sold, sessionmaker):
    message, [answer] = text("GARANSI sn-a1")
    assert message.intent == "warranty"
    assert "SN-A1" in answer and "Handphone A1" in answer and "23-11-2027" in answer
    assert rows(sessionmaker, Ticket) == []  # a question answered, nothing for a person
    _, [answer] = text("garansi SN-OLD")
    assert "berakhir" in answer and "01-01-2020" in answer


def test_someone_elses_serial_gets_the_warranty_but_not_the_owner(text, sold, sessionmaker):
    _, [answer] = text("GARANSI SN-A1", sender=SARI)
    assert "23-11-2027" in answer
    assert "Handphone" not in answer and "0812345" not in answer and BUDI not in answer


def test_unknown_serial_is_polite_and_a_ticket_for_a_person(text, sold, sessionmaker):
    message, [answer] = text("GARANSI ZZ9999 rusak")
    [ticket] = rows(sessionmaker, Ticket)
    assert ticket.kind == "warranty" and ticket.status == "new"
    assert "ZZ9999" in answer and f"tiket {ticket.number}" in answer
    assert rows(sessionmaker, WarrantyClaim) == []
    _, [answer] = text("GARANSI", sender=SARI)
    assert "GARANSI SN12345" in answer


def test_serial_and_text_opens_a_claim_acknowledged_with_the_ticket(text, sold, sessionmaker):
    message, [answer] = text("GARANSI#SN-A1#layar mati total")
    [ticket] = rows(sessionmaker, Ticket)
    [claim] = rows(sessionmaker, WarrantyClaim)
    assert ticket.kind == "warranty" and message.ticket_id == ticket.id
    assert claim.ticket_id == ticket.id and claim.state == "received" and claim.received_at
    assert f"tiket {ticket.number}" in answer and "23-11-2027" in answer
    # the same claim again joins its ticket
    _, [again] = text("GARANSI SN-A1 masih mati")
    assert len(rows(sessionmaker, Ticket)) == 1 and f"tiket {ticket.number}" in again


def test_hostile_text_never_raises(text, sold, sessionmaker):
    for words in ["GARANSI " + "9" * 5000, "GARANSI SN-A1 " + "\u202e<script>" * 300,
                  "GARANSI \x00\x01", "warranty ////", "GARANSI 😀😀😀 rusak"]:
        message, answers = text(words, sender=SARI)
        assert message.attention is None and len(answers) == 1


def test_states_are_texted_and_audited_and_rest_rule_keeps_the_period(
        text, sold, sessionmaker, config):
    text("GARANSI SN-A1 layar mati")
    [claim] = rows(sessionmaker, WarrantyClaim)
    staff = None
    with sessionmaker.begin() as s:
        change = warranty.set_state(s, claim.id, "in_repair", staff, "id")
        assert "sedang diperbaiki" in change.message.text and change.message.number == BUDI
    with sessionmaker.begin() as s:
        with pytest.raises(warranty.WarrantyError, match="needs the new item's serial"):
            warranty.set_state(s, claim.id, "replaced", staff, "id")
        with pytest.raises(warranty.WarrantyError, match="already sold"):
            warranty.set_state(s, claim.id, "replaced", staff, "id", new_serial="SN-OLD")
        with pytest.raises(warranty.WarrantyError, match="unknown repair state"):
            warranty.set_state(s, claim.id, "lost", staff, "id")
    with sessionmaker.begin() as s:
        change = warranty.set_state(s, claim.id, "replaced", staff, "id", rule="rest",
                                    new_serial="sn-b1", today=dt.date(2027, 1, 5))
        assert change.replacement.warranty_until == dt.date(2027, 11, 23)
        assert "SN-B1" in change.message.text and "23-11-2027" in change.message.text
    with sessionmaker() as s:
        old = s.scalar(select(SoldItem).where(SoldItem.serial == "SN-A1"))
        new = s.scalar(select(SoldItem).where(SoldItem.serial == "SN-B1"))
        assert old.replaced_by_id == new.id and new.replaces_id == old.id
        assert new.contact_id == old.contact_id and new.sold_on == dt.date(2027, 1, 5)
        claim = s.get(WarrantyClaim, claim.id)
        assert claim.state == "replaced" and claim.in_repair_at and claim.replaced_at
        audits = s.scalars(select(AuditLog).where(AuditLog.action == "warranty.state")).all()
        assert len(audits) == 2 and '"replacement": "SN-B1"' in audits[1].detail
        events = s.scalars(select(TicketEvent.kind).where(
            TicketEvent.ticket_id == claim.ticket_id)).all()
        assert events.count("warranty") == 2 and events.count("message_out") == 2
        # the replacement's quantity does not count against the order
        order_items = s.scalars(select(SoldItem).where(SoldItem.replaces_id.is_(None),
                                                       SoldItem.order_item_id
                                                       == sold["hp_item"])).all()
        assert len(order_items) == 2


def test_new_rule_starts_a_new_period(text, sold, sessionmaker):
    text("GARANSI SN-A1 layar mati")
    [claim] = rows(sessionmaker, WarrantyClaim)
    with sessionmaker.begin() as s:
        change = warranty.set_state(s, claim.id, "replaced", None, "en", rule="new",
                                    new_serial="SN-B2", today=dt.date(2027, 6, 1))
        assert change.replacement.warranty_until == dt.date(2028, 5, 31)
        assert "has been replaced by serial SN-B2" in change.message.text
    with sessionmaker.begin() as s:
        change = warranty.set_state(s, claim.id, "returned", None, "en")
        assert "returned" in change.message.text


def test_warranty_replies_fit_three_sms():
    longest = dict(serial="S" * 40, until="31-12-2099", warranty="valid", product="P" * 40,
                   ticket_number="9999999", state="replaced", new_serial="N" * 40)
    for language in replies.LANGUAGES:
        for name in ("warranty_status", "warranty_not_found", "warranty_claim_ack",
                     "warranty_state"):
            assert replies.parts(replies.render(name, language, **longest)) <= 2


def test_config_dataclass_carries_the_rule(config):
    assert dataclasses.replace(config, warranty_replacement="new").warranty_replacement == "new"


def test_a_claim_on_someone_elses_item_is_noted_for_a_person(text, sold, sessionmaker):
    _, [answer] = text("GARANSI SN-A1 layar pecah", sender=SARI)
    [ticket] = rows(sessionmaker, Ticket)
    [claim] = rows(sessionmaker, WarrantyClaim)
    assert claim.ticket_id == ticket.id and ticket.contact_id == sold["sari"]
    assert f"tiket {ticket.number}" in answer and "Handphone" not in answer
    with sessionmaker() as s:
        notes = s.scalars(select(TicketEvent.detail).where(
            TicketEvent.ticket_id == ticket.id, TicketEvent.kind == "note")).all()
    assert any("not the customer" in n for n in notes)
