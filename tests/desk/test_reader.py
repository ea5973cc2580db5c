"""gateway.desk.reader: the project's sample texts, our labelled set, the fields, properties."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.desk.reader import (
    INTENTS,
    Context,
    Item,
    Reading,
    format_rupiah,
    parse_amount,
    product_names,
    read,
)

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = DATA / "sms-examples.tsv"      # the project's sample texts, one per kind of SMS
LABELLED = DATA / "sms_labelled.tsv"     # the larger labelled set


def _load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _rows(path: Path):
    """Rows as pytest params; a missing file is an error at collection, never a skip."""
    return [pytest.param(row, id=row["number"]) for row in _load(path)]


def _check_row(row):
    reading = read(row["text"])
    want_amount = int(row["amount"]) if row["amount"].strip() else None
    assert (reading.intent, reading.amount) == (row["intent"], want_amount), (
        f"{row['text']!r} read as {reading}")


@pytest.mark.parametrize("row", _rows(SAMPLES))
def test_sample_texts(row):
    _check_row(row)


@pytest.mark.parametrize("row", _rows(LABELLED))
def test_labelled_set(row):
    _check_row(row)


def test_sample_file_has_every_kind_of_text():
    rows = _load(SAMPLES)
    assert list(rows[0]) == ["number", "text", "intent", "amount"]
    assert {r["intent"] for r in rows} >= {"order", "complaint", "payment", "status",
                                           "register", "help", "stop", "other"}


def test_labelled_set_is_large_and_varied():
    rows = _load(LABELLED)
    assert len(rows) >= 200
    intents = {r["intent"] for r in rows}
    assert intents >= {"order", "complaint", "payment", "status", "register", "help",
                       "stop", "start", "other"}


# --- Fields -----------------------------------------------------------------------------

CATALOGUE = Context(product_codes=frozenset({"XL25", "XL50", "TSEL50", "AXIS10"}))


def test_order_fields():
    r = read("Pesan TSEL50 4 antar ke ruko blok C2")
    assert r.items == (Item("TSEL50", 4),)
    assert r.note == "antar ke ruko blok C2"
    assert r.keyword == "PESAN" and r.problems == ()


def test_order_several_items_and_polite_note():
    r = read("pesan xl25 2 dan tsel50 1 kak")
    assert r.items == (Item("XL25", 2), Item("TSEL50", 1))
    assert r.note is None


def test_order_resolves_split_code_only_with_a_catalogue():
    assert read("beli voucher xl 25 ribu 3", CATALOGUE).items == (Item("XL25", 3),)
    plain = read("beli voucher xl 25 ribu 3")
    assert plain.intent == "order" and plain.items == ()
    assert plain.problems == ("unknown_product",)


def test_order_unknown_code_in_catalogue():
    r = read("PESAN XL99 2", CATALOGUE)
    assert r.intent == "order" and r.items == () and "unknown_product" in r.problems


def test_order_without_quantity():
    r = read("PESAN XL25")
    assert r.items == (Item("XL25", 1),) and r.problems == ("no_quantity",)


def test_payment_fields():
    r = read("KONFIRMASI 9 80rb BRI a.n. Tono")
    assert (r.intent, r.order_number, r.amount, r.bank, r.payer_name) == (
        "payment", "9", 80000, "BRI", "Tono")
    r = read("bayar#8#Rp 55.000#mandiri#joko")
    assert (r.order_number, r.amount, r.bank, r.payer_name) == ("8", 55000, "Mandiri", "joko")


def test_payment_free_text_fields():
    r = read("sdh trf 2jt ke rek bni a.n. Budi Santoso")
    assert (r.intent, r.amount, r.bank, r.payer_name) == ("payment", 2_000_000, "BNI",
                                                          "Budi Santoso")
    assert r.problems == ("no_reference",)
    assert read("sdh tf 125rb, no order 45").order_number == "45"


def test_payment_bare_number_uses_open_orders():
    assert read("BAYAR 5000").amount == 5000
    r = read("BAYAR 5000", Context(open_order_numbers=("5000",)))
    assert (r.order_number, r.amount, r.problems) == ("5000", None, ("no_amount",))


def test_payment_numbers_after_the_amount():
    assert read("bayar 150rb bca order 7").order_number == "7"
    assert read("bayar 150rb bca tgl 12").order_number is None
    r = read("BAYAR 7 50 bca")
    assert (r.order_number, r.amount, r.problems) == ("7", None, ("no_amount",))


def test_payment_after_a_greeting():
    r = read("min, konfirmasi 9 80rb bri ya, tolong dicek?")
    assert (r.intent, r.order_number, r.amount, r.bank) == ("payment", "9", 80000, "BRI")
    assert read("min, bayar pakai apa?").intent == "other"
    assert read("kak kalau bayar 150rb ke bca bisa?").intent == "other"


def test_payment_dot_separated_fields():
    r = read("bayar.8.200.000.bca")
    assert (r.order_number, r.amount, r.bank) == ("8", 200_000, "BCA")


def test_phone_numbers_are_not_money():
    r = read("sudah transfer ke 0812-3456-7890 dana 50rb")
    assert r.amount == 50000 and r.bank == "DANA"
    assert read("nomor saya 081234567890").intent == "other"


def test_dana_as_a_word_is_not_a_bank():
    assert read("dana sudah saya transfer 50rb").bank is None


def test_status_reference():
    assert read("cek tiket 15").reference == "15"
    assert read("STATUS").problems == ("no_reference",)


def test_register_and_start():
    assert read("DAFTAR#CV Sinar Terang").name == "CV Sinar Terang"
    assert read("REG nama saya: Budi").name == "Budi"
    assert read("REG").intent == "start"
    assert read("START").intent == "start"
    assert read("daftar harga dong").intent == "other"


def test_complaint_body_is_text_after_keyword():
    assert read("keluhan: sinyal modem lemot").body == "sinyal modem lemot"
    assert read("pulsa blm masuk").body == "pulsa blm masuk"
    assert read("KOMPLAIN").problems == ("no_text",)


def test_open_ticket_turns_other_into_reply():
    ctx = Context(has_open_ticket=True)
    assert read("makasih kak", ctx).intent == "reply"
    assert read("Apakah toko buka hari minggu?", ctx).intent == "reply"
    assert read("STOP", ctx).intent == "stop"
    assert read("udh tf 150rb ke bri", ctx).intent == "payment"


# --- Free text: what people write without a keyword -------------------------------------

@pytest.mark.parametrize("text,reference", [
    ("bos pesanan sy no 237 kapan dikirim?", "237"),
    ("gan order #302 sdh jalan?", "302"),
    ("orderan 61 udh diproses blm?", "61"),
    ("what is the status of order 227?", "227"),
    ("track order 104", "104"),
    ("servis laptop tiket 258 sudah selesai belum?", "258"),
    ("order 224 gimana statusnya?", "224"),
    ("tiket 40 bagaimana?", "40"),
])
def test_status_question_in_a_sentence(text, reference):
    r = read(text)
    assert (r.intent, r.reference, r.amount) == ("status", reference, None)


def test_status_question_without_a_number():
    r = read("pesanan saya sudah dikirim belum?")
    assert (r.intent, r.problems) == ("status", ("no_reference",))
    assert read("min paket sy udh dikirim blm ya").intent == "status"
    # Not a status: how to order, a late order (a complaint), a price.
    assert read("mau order tapi gimana caranya?").intent == "other"
    assert read("kenapa pesanan saya belum dikirim juga?").intent == "complaint"
    assert read("pesanan 23 blm dikirim juga, padahal udah 3 hari").intent == "complaint"
    # A reference and a done-word without a question is news, not a question.
    assert read("pesanan 12 sudah diterima, makasih kak").intent == "other"
    assert read("kalau order 10 bisa dikirim hari ini?").intent == "other"
    assert read("beli dimana kak?").intent == "other"
    assert read("where is my order?").intent == "status"


@pytest.mark.parametrize("text,items", [
    ("minta axis10 2x + xl50 1 buah min", (Item("AXIS10", 2), Item("XL50", 1))),
    ("bos order dong XL50 3", (Item("XL50", 3),)),
    ("mau order lagi axis10 2, tsel50 1", (Item("AXIS10", 2), Item("TSEL50", 1))),
    ("I want to order tsel100 10 please", (Item("TSEL100", 10),)),
    ("can I order TSEL25 2 pcs dan XL25 5 dan axis10 1",
     (Item("TSEL25", 2), Item("XL25", 5), Item("AXIS10", 1))),
    ("minta 2 xl25 ya kak", (Item("XL25", 2),)),
    ("Can you send me 2 xl50 please", (Item("XL50", 2),)),
    ("mau beli xl25 2 bisa?", (Item("XL25", 2),)),
    ("Selamat siang, saya Budi. Saya ingin memesan voucher XL25 sebanyak 3 buah. Terima kasih.",
     (Item("XL25", 3),)),
])
def test_order_without_its_keyword_first(text, items):
    r = read(text)
    assert (r.intent, r.items, r.problems) == ("order", items, ())


@pytest.mark.parametrize("text", [
    "kemarin beli xl25 2, makasih ya", "I want to know the price of xl25",
    "harga xl25 brp?", "tsel50 berapa kak?", "xl25 masih ada stok?", "kalau beli 10 ada diskon?",
    "do you have xl25 in stock?", "how much is xl50?",
    "bisa pesan lewat wa?", "pulsa xl25 masih ada?",
])
def test_questions_about_products_are_not_orders(text):
    assert read(text).intent == "other"


@pytest.mark.parametrize("text", [
    "bisa bayar pakai ovo?", "bayar bisa via dana gak?", "rekening bca nya brp?",
    "sy mau transfer tp ke rek mana?", "besok mau bayar ya", "kalau transfer 100rb dapat apa?",
    "kalo bayar 2jt bisa dicicil?", "nanti sore sy transfer", "do you accept gopay?",
    "what payment methods do you accept?", "blm sy transfer kak, nanti sore",
    "mau bayar 200rb pakai dana bisa?",
])
def test_questions_about_paying_are_not_payments(text):
    r = read(text)
    assert (r.intent, r.amount) == ("other", None)


@pytest.mark.parametrize("text,amount,bank", [
    ("payment Rp 1.500.000 done via BCA", 1_500_000, "BCA"),
    ("payment 1,5jt done via bsi", 1_500_000, "BSI"),
    ("tf Rp. 250.000 sdh masuk blm?", 250_000, None),
    ("bos tf Rp55.512 sdh masuk blm?", 55_512, None),
    ("dana 500rb sudah sy kirim via dana", 500_000, "DANA"),
    ("sudah kak, 150rb via ovo", 150_000, "OVO"),
    ("sent 150k via gopay just now", 150_000, "GoPay"),
    ("I have paid Rp 200.000 via BCA", 200_000, "BCA"),
])
def test_payment_in_other_words(text, amount, bank):
    r = read(text)
    assert (r.intent, r.amount, r.bank) == ("payment", amount, bank)


@pytest.mark.parametrize("text, amount, payer", [
    ("ovo 200rb + dana 300rb udah ya", 500_000, None),
    ("bayar 700rb pakai ovo + 300rb pakai bca udah ya", 1_000_000, None),
    ("BAYAR 12 700rb + 300rb BCA Budi Santoso", 1_000_000, "Budi Santoso"),
    # A "+" before digits is a phone number's, not a sum.
    ("sudah tf 150rb ke +6281234567 50rb", 150_000, None),
])
def test_a_payment_in_parts_joined_by_plus_is_their_sum(text, amount, payer):
    r = read(text)
    assert (r.intent, r.amount, r.payer_name) == ("payment", amount, payer)


def test_amount_in_millions_and_thousands():
    assert read("sudah transfer 1 juta 250 ribu ke bca").amount == 1_250_000
    assert read("udh tf 2jt 500rb").amount == 2_500_000
    # Two amounts that do not add up to one stay apart: the first is the amount, unless
    # another is called the total.
    assert read("udh tf 1,5jt 200rb").amount == 1_500_000
    assert read("sy sudah transfer 2x 50rb, total 100rb").amount == 100_000


@pytest.mark.parametrize("text", [
    "printer yg kemarin diservis masih macet", "hp yg diservis masih sama aja rusaknya",
    "laptop sy habis diservis malah mati total", "pulsa masuk cuma setengah, kurang",
    "flashdisk yg sy beli ga kebaca di laptop", "ini gimana sih, udah bayar tp barang ga dtg2",
    "voucher sdh dipakai tp kuota tdk bertambah", "barang yg datang beda sama yg dipesan",
    "pelayanan buruk sekali", "I paid but the order never came",
    "Sudah sampai kak, tapi warnanya beda", "kak kok saya ditagih 2x", "Very bad service",
])
def test_complaint_without_a_keyword(text):
    assert read(text).intent == "complaint"


def test_question_about_a_fault_is_no_complaint():
    assert read("kalau barang rusak bisa diganti?").intent == "other"
    assert read("harga servis lcd yg pecah brp?").intent == "other"
    assert read("bisa servis hp mati total?").intent == "other"
    assert read("kok mahal banget harganya?").intent == "complaint"
    assert read("kok pulsanya belum masuk juga?").intent == "complaint"


def test_typos_are_read_as_the_word_meant():
    assert read("berhhenti kirim sms promo").intent == "stop"
    assert read("hi tiket 450 samppai mana ya?").reference == "450"
    assert read("charger nya ga berfunngsi min").intent == "complaint"
    assert read("odrer xl50 2").items == (Item("XL50", 2),)
    # Real words one letter from a known one keep their meaning: "tempat" is no "empat".
    assert read("bisa bayar di tempat?").intent == "other"


def test_opting_out_in_a_sentence():
    assert read("jangan kirim promo lagi").intent == "stop"
    assert read("please stop sending me promos").intent == "stop"
    assert read("maaf salah kirim sms").intent == "other"


SHOP = [("XL25", "Voucher XL 25K"), ("FD32", "Flashdisk Sandisk 32GB"),
        ("FD64", "Flashdisk Sandisk 64GB"), ("MS1", "Mouse Logitech M170"), ("KP01", "Kopi")]
NAMED = Context(product_codes=frozenset(code for code, _ in SHOP),
                product_names=product_names(SHOP))


@pytest.mark.parametrize("text,items", [
    ("beli flashdisk sandisk 32gb 2", (Item("FD32", 2),)),
    ("min mau pesan mouse logitech 1 sama kopi 3", (Item("MS1", 1), Item("KP01", 3))),
    ("minta voucher xl 25k 2", (Item("XL25", 2),)),
    ("order xl 25k x3", (Item("XL25", 3),)),
    ("mouse 2 ya", (Item("MS1", 2),)),
])
def test_order_names_a_product_by_its_name(text, items):
    r = read(text, NAMED)
    assert (r.intent, r.items, r.problems) == ("order", items, ())


def test_product_names_that_are_not_orders_or_are_ambiguous():
    # "flashdisk" alone fits two products: a person asks which.
    r = read("beli flashdisk 2", NAMED)
    assert (r.intent, r.items, r.problems) == ("order", (), ("unknown_product",))
    assert read("harga flashdisk sandisk 32gb brp?", NAMED).intent == "other"
    assert read("flashdisk sandisk 32gb yg sy beli rusak", NAMED).intent == "complaint"
    # No catalogue, no product: the model may take it for an order, which a person
    # then completes, but nothing is read as an item.
    r = read("kopi 2", Context())
    assert r.items == () and (r.intent, r.problems) in {("other", ()), ("order", ("no_items",))}


def test_intake_reads_product_names_from_the_catalogue(sessionmaker, config):
    """gateway.desk.intake gives the reader the products' names: an order by name."""
    import datetime as dt

    from sqlalchemy import select

    from gateway.db.models import Order, Product
    from gateway.db.transaction import in_transaction
    from gateway.desk.inbox import RawPart, store_batch

    with sessionmaker.begin() as s:
        s.add_all([Product(code="FD32", name="Flashdisk Sandisk 32GB", price=60000, stock=10),
                   Product(code="OLD1", name="Kabel Lama", price=5000, active=False)])
    when = dt.datetime(2026, 11, 23, 9, 0, 0)
    for location, words in enumerate(["mau beli flashdisk sandisk 32gb 2 ya", "beli kabel lama 1"]):
        part = RawPart(location=location + 1, sender="+6281234567890", text=words,
                       smsc_time=when + dt.timedelta(seconds=location))
        in_transaction(sessionmaker, store_batch, "modem1", [part], config, when)
    with sessionmaker() as s:
        [order] = s.scalars(select(Order)).all()    # an inactive product is not ordered
        assert [(i.code, i.quantity) for i in order.items] == [("FD32", 2)]


def test_amount_only_on_payments():
    assert read("sudah tf 150rb tapi pulsa belum masuk").amount is None
    assert read("pulsa 25rb harganya berapa?").amount is None


@pytest.mark.parametrize("written,value", [
    ("150000", 150000), ("150.000", 150000), ("Rp 150.000", 150000),
    ("Rp150.000", 150000), ("Rp. 150.000,-", 150000), ("150rb", 150000),
    ("150 rb", 150000), ("150 ribu", 150000), ("150k", 150000), ("150K", 150000),
    ("1,5jt", 1500000), ("1.5 juta", 1500000), ("1.2jt", 1200000), ("2 juta", 2000000),
    ("80rb", 80000), ("Rp 150.000,00", 150000), ("150,000", 150000),
    ("Rp 50.000.00", 50000), ("1.250rb", 1_250_000), ("1.5rb", 1500), ("1,125jt", 1_125_000),
    ("abc", None), ("0812", None), ("1.5", None), ("", None), ("Rp", None),
])
def test_parse_amount(written, value):
    assert parse_amount(written) == value


def test_format_rupiah():
    assert format_rupiah(51037) == "Rp 51.037"
    assert format_rupiah(0) == "Rp 0"
    assert format_rupiah(1_500_000) == "Rp 1.500.000"


# --- Properties -------------------------------------------------------------------------

@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=1600), st.booleans())
def test_any_text_reads_without_error(text, open_ticket):
    r = read(text, Context(has_open_ticket=open_ticket, product_codes=frozenset({"XL25"})))
    assert isinstance(r, Reading) and r.intent in INTENTS
    assert r.amount is None or isinstance(r.amount, int)


# Texts made of the characters the tokeniser cares about find its corners faster.
_TRICKY = st.lists(st.sampled_from(
    list("0123456789 .,#:-+RrPpKkJjTtBbAaYyXxLl?!") +
    ["rb", "jt", "juta", "ribu", "Rp", "BAYAR", "PESAN", "CEK", "REG", "a.n.", "XL25", "08",
     "62", "bca", "dana", "sudah", "tf", "belum", "shopee", "pay", "2x", "no", "order"]),
    max_size=120).map("".join)


@settings(max_examples=500)
@given(_TRICKY)
def test_number_heavy_text_reads_without_error(text):
    r = read(text, CATALOGUE)
    assert r.intent in INTENTS
    if r.amount is not None:
        assert r.amount >= 0


@pytest.mark.parametrize("text", [
    "1.,5", "1,.,2 rb", "BAYAR 1..2", "Rp 1.,-", "0812-", "+62", "a.n.", "1" * 1600,
    "1." * 800, "\u202e\u0645\u0631\u062d\u0628\u0627 7", "\x00PESAN\x00XL25\x002",
])
def test_awkward_texts_read_without_error(text):
    assert read(text).intent in INTENTS


def _dotted(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def written_forms(n: int) -> list[str]:
    """Every way of writing n that parse_amount promises to read."""
    forms = [str(n), _dotted(n), f"Rp {_dotted(n)}", f"Rp{_dotted(n)}",
             f"Rp. {_dotted(n)},-", f"rp {n}", f"IDR {n}", f"{_dotted(n)},00"]
    if n >= 1000:
        forms.append(f"{n:,}")
    if n % 1000 == 0:
        k = n // 1000
        forms += [f"{k}rb", f"{k} rb", f"{k} ribu", f"{k}k", f"{k}K", f"Rp {k}rb"]
        whole, frac = divmod(n, 1_000_000)
        frac_digits = f"{frac:06d}".rstrip("0")   # at most 3 digits, since 1000 | n
        if frac_digits:
            forms += [f"{whole},{frac_digits}jt", f"{whole}.{frac_digits} juta",
                      f"{whole},{frac_digits} JT"]
        else:
            forms += [f"{whole}jt", f"{whole} juta"]
    return forms


_AMOUNTS = st.one_of(st.integers(0, 10**12), st.integers(1, 10**9).map(lambda k: k * 1000),
                     st.integers(1, 9999).map(lambda k: k * 1000))


@given(_AMOUNTS)
def test_amounts_round_trip(n):
    for form in written_forms(n):
        assert parse_amount(form) == n, form
    assert parse_amount(format_rupiah(n)) == n


@st.composite
def _cased(draw, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips))


@st.composite
def _joiner(draw):
    """One separator style per text, as a person types it, with optional extra spaces."""
    sep = draw(st.sampled_from([" ", "#", ",", "."]))
    pads = st.sampled_from(["", " ", "  "]) if sep != " " else st.sampled_from(["", " ", "  "])

    def join(fields):
        out = fields[0]
        for f in fields[1:]:
            out += draw(pads) + sep + draw(pads) + f
        return draw(pads) + out + draw(pads)
    return join


NAMES = ["Rina", "Budi Santoso", "Siti Aminah", "Hendra", "Dewi Lestari", "joko"]
BANKS = {"bca": "BCA", "bri": "BRI", "bni": "BNI", "mandiri": "Mandiri", "bsi": "BSI",
         "cimb niaga": "CIMB", "permata": "Permata", "dana": "DANA", "ovo": "OVO",
         "gopay": "GoPay", "shopeepay": "ShopeePay", "shopee pay": "ShopeePay"}
CODES = ["XL25", "TSEL50", "AXIS10", "IM3", "SMART100"]


@given(st.data())
def test_order_keyword_survives_variation(data):
    join = data.draw(_joiner())
    kw = data.draw(_cased(data.draw(st.sampled_from(["PESAN", "ORDER", "BELI"]))))
    code = data.draw(st.sampled_from(CODES))
    qty = data.draw(st.integers(1, 999))
    note = data.draw(st.sampled_from([None, "antar sore", "ambil sendiri"]))
    fields = [kw, data.draw(_cased(code)), str(qty)] + ([note] if note else [])
    r = read(join(fields))
    assert (r.intent, r.items, r.note, r.problems) == ("order", (Item(code, qty),), note, ())


@given(st.data())
def test_payment_keyword_survives_variation(data):
    join = data.draw(_joiner())
    kw = data.draw(_cased(data.draw(st.sampled_from(["BAYAR", "KONFIRMASI", "PAY"]))))
    order = data.draw(st.integers(1, 99999))
    amount = data.draw(st.integers(1, 50_000).map(lambda k: k * 1000))
    written = data.draw(st.sampled_from(
        [f for f in written_forms(amount) if "," not in f or f.endswith(("jt", "JT", ",-"))]))
    bank_alias = data.draw(st.sampled_from(sorted(BANKS)))
    name = data.draw(st.sampled_from(NAMES))
    text = join([kw, str(order), written, data.draw(_cased(bank_alias)), name])
    r = read(text)
    assert (r.intent, r.order_number, r.amount, r.bank, r.payer_name, r.problems) == (
        "payment", str(order), amount, BANKS[bank_alias], name, ()), text


@given(st.data())
def test_status_keyword_survives_variation(data):
    join = data.draw(_joiner())
    kw = data.draw(_cased(data.draw(st.sampled_from(["STATUS", "CEK"]))))
    ref = str(data.draw(st.integers(1, 99999)))
    r = read(join([kw, ref]))
    assert (r.intent, r.reference) == ("status", ref)


@given(st.data())
def test_register_keyword_survives_variation(data):
    join = data.draw(_joiner())
    kw = data.draw(_cased(data.draw(st.sampled_from(["REG", "DAFTAR"]))))
    name = data.draw(st.sampled_from(NAMES + ["CV Sinar Terang", "Toko Maju Jaya"]))
    r = read(join([kw, name]))
    assert (r.intent, r.name) == ("register", name)


@given(st.data())
def test_bare_keywords_survive_variation(data):
    word, intent = data.draw(st.sampled_from([
        ("HELP", "help"), ("BANTUAN", "help"), ("INFO", "help"), ("STOP", "stop"),
        ("UNREG", "stop"), ("BERHENTI", "stop"), ("START", "start")]))
    before = data.draw(st.sampled_from(["", " ", "  ", "\n"]))
    after = data.draw(st.sampled_from(["", " ", "!", ".", "!!", " ?", "\n"]))
    r = read(before + data.draw(_cased(word)) + after)
    assert r.intent == intent


@given(st.data())
def test_complaint_keyword_survives_variation(data):
    kw = data.draw(_cased(data.draw(st.sampled_from(["KOMPLAIN", "KELUHAN", "COMPLAINT"]))))
    sep = data.draw(st.sampled_from([" ", ": ", ":", "#", " - ", "  "]))
    body = data.draw(st.sampled_from(["paket data tidak aktif", "sinyal lemot",
                                      "the voucher code is invalid", "Pulsa 50rb blm masuk"]))
    r = read(kw + sep + body)
    assert (r.intent, r.body) == ("complaint", body)


# --- Texts in many hands (tests/data/sms_unseen.tsv, made by make_sms_unseen.py) ---------

UNSEEN = DATA / "sms_unseen.tsv"
# More dev texts, written by hand to phrase things the generator does not (all dev).
UNSEEN_EXTRA = DATA / "sms_unseen_extra.tsv"
# Floors just under the reader's scores (intent, amount): dev 100 %/100 %, held-out
# 100 %/100 %, extra dev 99.5 %/100 % (two texts left: "sy ambil 2 ya min xl25", "mau
# beliin adek pulsa xl50 1"). A regression fails; a rule that costs one text does not.
UNSEEN_FLOORS = {"dev": (0.995, 0.995), "heldout": (0.995, 0.995), "extra": (0.99, 0.99)}


@pytest.mark.parametrize("split", ["dev", "heldout", "extra"])
def test_unseen_set_accuracy(split):
    if split == "extra":
        rows = _load(UNSEEN_EXTRA)
        assert len(rows) >= 200 and {r["split"] for r in rows} == {"dev"}
    else:
        rows = [r for r in _load(UNSEEN) if r["split"] == split]
        assert len(rows) >= (300 if split == "heldout" else 700)
    intents = amounts = 0
    for row in rows:
        r = read(row["text"])
        want = int(row["amount"]) if row["amount"].strip() else None
        intents += r.intent == row["intent"]
        amounts += r.amount == want
    intent_floor, amount_floor = UNSEEN_FLOORS[split]
    print(f"{split}: intent {intents / len(rows):.3f}, amount {amounts / len(rows):.3f}")
    assert intents / len(rows) >= intent_floor
    assert amounts / len(rows) >= amount_floor


# --- Free text from people who never saw the keywords --------------------------------------

@pytest.mark.parametrize("text", [
    "mau pesan printer epson L3210 satu unit, kirim ke alamat biasa",
    "Hi, I'd like to order one wireless mouse and one USB hub",
    "Order: 2x SSD 512GB, 1x RAM 8GB", "sy mau beli ram 8gb ddr4 2 keping",
])
def test_order_named_in_words_is_an_order_for_a_person(text):
    r = read(text)
    assert (r.intent, r.items, r.problems) == ("order", (), ("unknown_product",))


@pytest.mark.parametrize("text", [
    "kemarin sudah beli mouse di sini, mantap",
    "mau beli tapi uangnya belum cukup",
    "minta nomor rekening bca", "saya mau ambil barang jam 5", "mau order lagi minggu depan",
    "bisa pesan lewat wa?", "kalau beli 5 ada diskon?", "order kemarin sudah sampai, mantap",
])
def test_buying_words_that_are_no_order(text):
    assert read(text).intent == "other"


def test_order_in_words_uses_the_catalogue():
    ctx = Context(product_codes=frozenset({"XL50"}),
                  product_names=product_names([("HDMI2", "Kabel HDMI 2 meter")]))
    assert read("Saya ingin memesan kabel HDMI 2 meter sebanyak 2 buah.", ctx).items == (
        Item("HDMI2", 2),)
    assert read("kak aku mau xl 50 satu ya", ctx).items == (Item("XL50", 1),)


@pytest.mark.parametrize("text, name", [
    ("nama saya Budi, mau daftar", "Budi"),
    ("min daftarin sy dong, nama Putri Ayu", "Putri Ayu"),
    ("I want to register, my name is John Doe", "John Doe"),
])
def test_register_in_a_sentence(text, name):
    r = read(text)
    assert (r.intent, r.name) == ("register", name)


@pytest.mark.parametrize("text", [
    "cara pesan lewat sms gmn kak?", "kode2 perintahnya apa aja min?", "HELP ORDER",
    "how do I order by sms?", "daftar perintah sms apa aja?",
    # How to use the service's features, in free text (the second blind set).
    "cara daftar gmn min?", "Info cara order", "how do I use this number to order?",
    "mohon bantuannya, cara komplain gimana ya", "bantuan dong, sy baru pertama kali pakai",
    "cara pesan gimana?",
])
def test_asking_how_the_sms_service_works_is_help(text):
    assert read(text).intent == "help"


@pytest.mark.parametrize("text, amount", [
    ("sy sdh tf seratus lima puluh ribu", 150_000),
    ("sudah transfer dua juta lima ratus ribu", 2_500_000),
    ("udah tf lima belas ribu ya", 15_000), ("tf 2 jt 500 sdh ya", 2_500_000),
    # Javanese, ngoko and krama; Minang; half a million.
    ("aku wis transfer satus ewu kanggo servis", 100_000),
    ("sampun kula kintun satus seket ewu lewat BRI", 150_000),
    ("sampun nransfer kalih atus sekawan dasa ewu", 240_000),
    ("wis mbayar liwat dana rongatus ewu", 200_000),
    ("sampun kulo transfer sewidak gangsal ewu mas", 65_000),
    ("sampun transfer, jumlahipun sejuta tigang atus ewu", 1_300_000),
    ("tf sampun wolung atus ewu pas", 800_000),
    ("ambo lah transfer limo ratuih ribu", 500_000),
    ("kulo sampun bayar setengah juta kagem DP", 500_000),
    # Madurese; the street names of sums; English "mil".
    ("ampon transfer tello ratos lema polo ebu", 350_000),
    ("ampon mayar 800 ebu ka BRI gi", 800_000),
    ("udah gopay ceban barusan buat top up", 10_000),
    ("kak udh bayar 2 ceban lwt dana", 20_000), ("udh bayar lwt dana kak, 2 goceng", 10_000),
    ("udh bayar gocap + ceban lwt dana ya", 60_000),
    ("paid 3.5 mil for the laptop, transfer BCA", 3_500_000),
])
def test_amount_in_words(text, amount):
    r = read(text)
    assert (r.intent, r.amount) == ("payment", amount)
    assert read("beli xl25 dua").items == (Item("XL25", 2),)


# --- Texts written by someone who never saw the reader (tests/data/sms_blind.tsv) --------

BLIND = DATA / "sms_blind.tsv"
# A shop of the blind set's kind, decided from its dev rows only: the operators'
# vouchers of 5..100 and the computer gear those rows name. Real use passes such a
# Context (gateway/desk/intake.py); the tests read with it and without.
_VOUCHERS = [f"{brand}{value}" for brand in ("XL", "TSEL", "IM3", "AXIS", "SMARTFREN")
             for value in (5, 10, 15, 20, 25, 30, 50, 75, 100)]
_GEAR = [("FD8", "Flashdisk 8GB"), ("FD32", "Flashdisk Toshiba 32GB"),
         ("FD64", "Flashdisk Sandisk 64GB"), ("MOUSEW", "Mouse Wireless"),
         ("MOUSEPAD", "Mousepad"), ("HUB", "USB Hub"), ("HDMI2", "Kabel HDMI 2 meter"),
         ("USBC", "Kabel USB"), ("LAN", "Kabel LAN"), ("WIFI", "Adaptor WiFi USB"),
         ("IP2770", "Printer Canon IP2770"), ("L3210", "Printer Epson L3210"),
         ("TONER85A", "Toner HP 85A"), ("HDD1TB", "Harddisk Eksternal 1TB"),
         ("SSD512", "SSD 512GB"), ("SPK", "Speaker Bluetooth"), ("HVS", "Kertas HVS A4"),
         ("KB", "Keyboard"), ("HEADSET", "Headset"), ("WEBCAM", "Webcam"),
         ("CHGLAP", "Charger Laptop")]
BLIND_CATALOGUE = Context(product_codes=frozenset(_VOUCHERS + [c for c, _ in _GEAR]),
                          product_names=product_names(_GEAR))
# Floors just under the reader's scores (intent, amount), per split and catalogue; the
# rules were written looking at the dev rows only. Dev 100 %/100 % both ways; held-out
# 89.3 %/99.3 % both ways after the second blind set's rules (was 87.3 %/98.7 %; before
# that 70.0 %/98.0 % bare and 73.3 % with the catalogue).
BLIND_FLOORS = {("dev", False): (0.99, 0.99), ("dev", True): (0.99, 0.99),
                ("heldout", False): (0.97, 0.99), ("heldout", True): (0.97, 0.99)}


@pytest.mark.parametrize("split", ["dev", "heldout"])
@pytest.mark.parametrize("with_catalogue", [False, True], ids=["bare", "catalogue"])
def test_blind_set_accuracy(split, with_catalogue):
    _check_blind(BLIND, split, with_catalogue, BLIND_FLOORS, at_least=150)


def _check_blind(path, split, with_catalogue, floors, at_least):
    """The share of intents and amounts read right on one split stays above its floor."""
    rows = [r for r in _load(path) if r["split"] == split]
    assert len(rows) >= at_least
    ctx = BLIND_CATALOGUE if with_catalogue else None
    intents = amounts = 0
    for row in rows:
        r = read(row["text"], ctx)
        want = int(row["amount"]) if row["amount"].strip() else None
        intents += r.intent == row["intent"]
        amounts += r.amount == want
    intent_floor, amount_floor = floors[split, with_catalogue]
    print(f"{split}: intent {intents / len(rows):.3f}, amount {amounts / len(rows):.3f}")
    assert intents / len(rows) >= intent_floor
    assert amounts / len(rows) >= amount_floor


# --- The second blind set (tests/data/sms_blind2.tsv), by another writer -------------------

BLIND2 = DATA / "sms_blind2.tsv"
# Floors just under the reader's scores (intent, amount), bare and with BLIND_CATALOGUE;
# the rules were written looking at the dev rows only, and the held-out rows scored once
# at the end. Intents before: dev 81.5 %, held-out 82.5 % (payment amounts 88.6 %/94.3 %).
# Now: dev 99.0 % both ways; held-out 97.0 % bare, 97.5 % with the catalogue; amounts
# 100 % on both splits.
BLIND2_FLOORS = {("dev", False): (0.98, 0.99), ("dev", True): (0.98, 0.99),
                 ("heldout", False): (0.96, 0.99), ("heldout", True): (0.96, 0.99)}



# --- The third blind set (tests/data/sms_blind3.tsv), by a third writer -------------------

BLIND3 = DATA / "sms_blind3.tsv"
# Scored once before any rule was written for it, on all 500 texts: intents 87.8 %
# (dev 87.6 %, held-out 88.0 %), payment amounts 73 of 79. Then rules from the dev rows
# only (regional words, asking for broadcasts again, warranty beside a serial, when a
# parcel arrives, money asked after with its amount, links are no payment): dev 96.8 %,
# held-out 89.6 %. The held-out figure is what a new writer's texts get.
BLIND3_FLOORS = {("dev", False): (0.99, 0.99), ("dev", True): (0.99, 0.99),
                 ("heldout", False): (0.97, 0.99), ("heldout", True): (0.97, 0.99)}



@pytest.mark.parametrize("text, intent", [
    ("MULAI", "start"), ("langganan", "start"), ("aktifin notif sms lagi dong", "start"),
    ("mau langganan info promo lagi", "start"), ("please resume sending me promos", "start"),
    ("mulai besok saya transfer ya", "other"), ("langganan pulsa di mana ya?", "other"),
    ("jangan kirim promo lagi", "stop"),
])
def test_asking_for_the_broadcasts_again_is_start(text, intent):
    assert read(text).intent == intent


@pytest.mark.parametrize("text, intent, amount", [
    ("sampun transfer mas, 60 ewu", "payment", 60_000),
    ("transfer masuk blm min? 175rb via gopay", "payment", 175_000),
    ("Anda menerima transfer Rp 2.500.000 dari BANK BRI, cek di bit.ly/cekdana", "other", None),
    ("besok transfer 175rb masuk belum ya?", "other", None),
])
def test_money_in_regional_words_asked_after_or_in_a_scam(text, intent, amount):
    r = read(text)
    assert (r.intent, r.amount) == (intent, amount)


@pytest.mark.parametrize("text, intent", [
    ("kak paketku posisinya dimana skrg?", "status"),
    ("kira2 paket sy nyampe kapan ya kak?", "status"),
    ("kak printer canon sy rusak, beli 3 bulan lalu, bisa garansi?", "warranty"),
    ("masa garansi flashdisk sy sampe kapan ya kak? sn FD99812", "warranty"),
    ("how do I check my order?", "help"), ("format REG gimana kak?", "help"),
    ("SSD nya ga kedeteksi di laptop sy", "complaint"),
    ("min kok ketarik 2x ya, double charge", "complaint"),
    ("cari printer harga miring ada?", "other"),
])
def test_third_blind_set_kinds_of_text(text, intent):
    assert read(text).intent == intent


# --- The fourth blind set (tests/data/sms_blind4.tsv), by a fourth writer ------------------

BLIND4 = DATA / "sms_blind4.tsv"
# Scored once before any rule was written for it: intents 88.0 % (dev 90.0 %, held-out
# 86.0 %), payment amounts 87 of 90. Rules from the dev rows only (Sundanese openers,
# asking to be put on the broadcast, "stop aja" after the promos named, "a.n. Fajar" to
# register, not what was sold or due, a reference after BAYAR's marker): dev 97.6 %,
# held-out still 86.0 % (start 3/10, stop 6/10, complaint 28/35 held out). Rules written
# from one writer's texts barely carry to that writer's other texts: the held-out figure
# is the honest one.
# With the intent model (gateway/desk/intent_model.py, trained on the dev halves of
# every set, never a held-out one): held-out 97.2 %, amounts 100 %.
BLIND4_FLOORS = {("dev", False): (0.99, 0.99), ("dev", True): (0.99, 0.99),
                 ("heldout", False): (0.96, 0.99), ("heldout", True): (0.96, 0.99)}

# --- The fifth blind set (tests/data/sms_blind5.tsv), by a fifth writer -------------------

BLIND5 = DATA / "sms_blind5.tsv"
# Scored once on all 500 texts before they trained anything: the rules alone 83.4 % of
# intents, with the first intent model 89.2 %; payment amounts 98.4 %. No rule was written
# from it; its dev half trains the model. Held-out with the model now: 96.4 %.
BLIND5_FLOORS = {("dev", False): (0.99, 0.99), ("dev", True): (0.99, 0.99),
                 ("heldout", False): (0.95, 0.99), ("heldout", True): (0.95, 0.99)}


# The later blind sets at their floors: each split, bare and with BLIND_CATALOGUE.
LATER_BLIND = {"second": (BLIND2, BLIND2_FLOORS, 200), "third": (BLIND3, BLIND3_FLOORS, 250),
               "fourth": (BLIND4, BLIND4_FLOORS, 250), "fifth": (BLIND5, BLIND5_FLOORS, 250)}


@pytest.mark.parametrize("blind", list(LATER_BLIND))
@pytest.mark.parametrize("split", ["dev", "heldout"])
@pytest.mark.parametrize("with_catalogue", [False, True], ids=["bare", "catalogue"])
def test_later_blind_set_accuracy(blind, split, with_catalogue):
    path, floors, at_least = LATER_BLIND[blind]
    _check_blind(path, split, with_catalogue, floors, at_least=at_least)


@pytest.mark.parametrize("text, intent", [
    ("punten a, bade meser pulsa 20rb", "order"),
    ("kak masukin nomer aku ke broadcast ya", "start"),
    ("please add me to your promo list", "start"),
    ("boleh minta dikirimin info promo tiap bulan?", "start"),
    ("boleh minta info harga pulsa?", "other"),
    ("ampun deh tiap hari sms promo, stop aja", "stop"),
    ("min daftarin nomer ini a.n. Fajar", "register"),
    ("laptop yg kemarin dibeli ternyata bukan i5 tapi i3", "complaint"),
    ("kuota 10gb yg sy beli cuma masuk 5gb", "complaint"),
    ("printernya bunyi keras pas dinyalain pertama kali, kertas nyangkut terus", "complaint"),
    ("baru pertama kali pakai, cara daftarnya gimana?", "help"),
    ("tiket komplain saya T-3002 sdh ditindaklanjuti?", "status"),
    ("lagi dimana ya kurirnya, dari tadi ditunggu", "status"),
    ("powerbank yg sy beli bulan maret rusak, garansinya brp lama ya?", "warranty"),
])
def test_fourth_blind_set_kinds_of_text(text, intent):
    assert read(text).intent == intent


def test_a_marked_reference_after_bayar_is_no_amount():
    r = read("BAYAR INV-3321 BCA")
    assert (r.intent, r.order_number, r.amount) == ("payment", "3321", None)


def test_a_number_word_that_is_also_a_typo_reads_as_the_typo_elsewhere():
    # "satus" is Javanese 100 before "ewu", and a typo of STATUS before a number.
    assert (read("satus 1234").intent, read("satus 1234").reference) == ("status", "1234")
    assert read("sudah bayar setengah").amount is None
