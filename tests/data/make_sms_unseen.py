"""Writes tests/data/sms_unseen.tsv: customer texts in many hands, labelled.

    .venv/bin/python tests/data/make_sms_unseen.py

Deterministic (seeded). Each row: number, text, intent, amount, split. The split is by a
hash of the text: about a third is held out from the rules (split=heldout).
"""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "sms_unseen.tsv"
R = random.Random(20261201)

HI = ["", "", "", "halo min ", "min ", "kak ", "gan ", "pagi kak, ", "siang min ", "bos ",
      "permisi kak ", "hi ", "assalamualaikum, ", "p ", "sore gan, ", "mas ", "hello, "]
END = ["", "", "", " ya", " kak", " min", " ya kak", " makasih", " thx", " 🙏", " gan",
       " dong", " ya min, makasih", " please", " tq"]
CODES = ["XL25", "XL50", "TSEL50", "TSEL100", "AXIS10", "IM3 25", "TSEL25", "XL100"]
BANKS = ["bca", "BCA", "bri", "BRI", "bni", "mandiri", "Mandiri", "bsi", "dana", "ovo",
         "gopay", "cimb niaga", "permata", "BNI"]
NAMES = ["Budi", "Siti", "Andi Wijaya", "Rina", "Tono", "Dewi Lestari", "Agus", "Maria",
         "Joko", "Putri", "Hendra", "Yuni"]


def amt():
    """(written, value) for an amount in every way people write it."""
    base = R.choice([25, 50, 55, 75, 100, 125, 150, 200, 250, 300, 325, 500, 750])
    v = base * 1000 + R.choice([0, 0, 0, 37, 512, 89, 203])
    k, rest = divmod(v, 1000)
    dotted = f"{v:,}".replace(",", ".")
    forms = [str(v), dotted, f"Rp {dotted}", f"Rp{dotted}", f"rp {dotted}", f"Rp. {dotted}",
             f"{dotted},-", f"IDR {v}", f"Rp {v}"]
    if rest == 0:
        forms += [f"{k}rb", f"{k} rb", f"{k} ribu", f"{k}k", f"{k}K", f"{k}ribu", f"{k} rebu"]
    w = R.choice(forms)
    return w, v


def big():
    v, w = R.choice([(1_500_000, ["1,5jt", "1.5 juta", "1,5 juta", "1.500.000", "Rp 1.500.000"]),
                     (2_000_000, ["2jt", "2 juta", "2.000.000", "Rp2.000.000"]),
                     (1_250_000, ["1.250.000", "Rp 1.250.000", "1,25jt"]),
                     (3_500_000, ["3,5jt", "3.5jt", "3.500.000"])])
    return R.choice(w), v


def money():
    return big() if R.random() < 0.15 else amt()


def pick(xs):
    return R.choice(xs)


def code():
    c = pick(CODES)
    return c.lower() if R.random() < 0.6 else c


def qty():
    return pick(["1", "2", "3", "5", "10", "2x", "x2", "2 pcs", "3pcs", "dua", "1 buah"])


def order():
    n = R.choice([1, 1, 1, 2, 2, 3])
    items = [f"{code()} {qty()}" for _ in range(n)]
    sep = pick([" dan ", ", ", " sama ", " + ", " , "])
    its = sep.join(items)
    t = pick([
        "{hi}pesan {its}{end}", "{hi}mau pesan {its}{end}", "{hi}order {its}{end}",
        "{hi}mau order {its}{end}", "{hi}beli {its}{end}", "{hi}sy mau beli {its}{end}",
        "{hi}psn {its}{end}", "{hi}pesen {its}{end}", "I want to order {its} please",
        "{hi}tolong pesan {its}{end}", "{hi}order dong {its}", "ORDER {its}",
        "PESAN {its}", "{hi}mw order {its}{end}", "{hi}saya pesan {its} kirim ke toko{end}",
        "order#{c}#{q}", "pesan.{c}.{q}", "{hi}mau beli voucher {its}{end}",
        "{hi}pgn order {its}{end}", "{hi}aku mau pesen {its}{end}",
        "{hi}beli pulsa {its}{end}", "can I order {its}", "{hi}pesan {its} ya, antar sore",
        "{hi}mau order lagi {its}{end}", "{hi}minta {its}{end}",
    ])
    return t.format(hi=pick(HI), its=its, end=pick(END), c=code().replace(" ", ""),
                    q=pick(["1", "2", "3"])), "order", ""


def payment():
    w, v = money()
    b, nm, no = pick(BANKS), pick(NAMES), str(R.randint(1, 400))
    t = pick([
        "BAYAR {no} {w} {b} {nm}", "bayar {no} {w} {b} {nm}", "KONFIRMASI {no} {w} {b} a.n. {nm}",
        "bayar#{no}#{w}#{b}#{nm}", "{hi}sudah transfer {w} ke {b}{end}",
        "{hi}udh tf {w} ke {b}{end}", "{hi}sdh trf {w} via {b} a.n. {nm}{end}",
        "{hi}barusan tf {w}{end}", "{hi}sudah saya transfer {w} ya kak, sudah masuk?",
        "{hi}td sy udh tf {w} ke rek {b}, mohon dicek{end}",
        "{hi}sudah bayar {w} untuk order {no}{end}",
        "{hi}udah transfer {w} buat pesanan no {no}, tolong dicek ya",
        "I have transferred {w} to {b}, please check", "already paid {w} via {b}",
        "{hi}pembayaran {w} sudah sy kirim ke {b}{end}",
        "{hi}tf {w} sdh masuk blm?", "{hi}sudah sy transfer {w} ke {b} atas nama {nm}{end}",
        "{hi}konfirmasi pembayaran order {no} sebesar {w} via {b}{end}",
        "{hi}sy sdh tf {w} dr {b} a.n {nm}, sdh diterima blm ya?",
        "{hi}transfer {w} sudah ya{end}", "{hi}udah ditransfer {w}{end}",
        "{hi}bayar {w} sudah via {b}{end}", "just transferred {w}, order {no}",
        "{hi}baru aja tf {w} ke {b}{end}", "{hi}sudah lunas {w} ya{end}",
        "{hi}uang {w} udah sy tf ke {b}, cek ya", "payment {w} done via {b}",
        "{hi}tadi sudah transfer {w}, bisa dicek?",
        "{hi}sdh sy bayar {w} pak, sudah masuk belum?",
    ])
    return t.format(hi=pick(HI), end=pick(END), w=w, b=b, nm=nm, no=no), "payment", str(v)


def complaint():
    t = pick([
        "{hi}pulsa sy blm masuk dr td{end}", "{hi}paket data tidak aktif padahal sdh diisi",
        "{hi}kok pulsanya belum masuk juga?", "{hi}barang yg dikirim rusak{end}",
        "{hi}voucher nya error ga bisa dipakai{end}", "{hi}kecewa bgt, pesanan lama bgt",
        "{hi}flashdisk yg sy beli ga kebaca di laptop",
        "{hi}printer yg kemarin diservis masih macet",
        "the voucher code does not work", "my order has not arrived yet, very disappointed",
        "{hi}salah kirim barang kak, sy pesen tsel50 yg dtg xl25",
        "{hi}kuota hilang sendiri{end}", "{hi}saldo sy terpotong tp pulsa ga masuk",
        "{hi}laptop sy habis diservis malah mati total", "KOMPLAIN {x}", "komplen {x}",
        "keluhan: {x}", "{hi}mouse baru beli udh rusak", "{hi}sinyal lemot parah{end}",
        "{hi}kenapa pesanan saya belum dikirim juga?", "{hi}sudah 3 hari barang blm sampai",
        "{hi}kode voucher invalid{end}", "{hi}pulsa masuk cuma setengah, kurang",
        "{hi}tolong dong pulsa ga masuk2 dr pagi", "{hi}keyboard yg dikirim cacat tombolnya",
        "{hi}ini gimana sih, udah bayar tp barang ga dtg2", "wrong item sent, please fix",
        "{hi}charger nya ga berfungsi{end}", "{hi}paket internet gagal terus",
        "{hi}pelayanan lambat bgt", "{hi}hp yg diservis masih sama aja rusaknya",
    ])
    x = pick(["pulsa blm masuk", "paket ga aktif", "barang rusak", "kuota hilang",
              "monitor bergaris", "pengiriman lama"])
    return t.format(hi=pick(HI), end=pick(END), x=x), "complaint", ""


def status():
    no = str(R.randint(1, 500))
    t = pick([
        "STATUS {no}", "status {no}", "CEK {no}", "cek {no}", "cek tiket {no}",
        "cek pesanan {no}", "status order {no}", "{hi}pesanan no {no} sudah dikirim belum?",
        "{hi}order {no} gimana statusnya?", "{hi}mau tanya status pesanan {no}{end}",
        "{hi}orderan {no} udh diproses blm?", "what is the status of order {no}?",
        "status of my order {no}", "{hi}tiket {no} sampai mana ya?", "cek status {no}",
        "{hi}bisa cek pesanan nomor {no}?", "{hi}pesanan sy no {no} kapan dikirim?",
        "cek#{no}", "status.{no}", "{hi}gmn kabar order {no}{end}",
        "{hi}servis laptop tiket {no} sudah selesai belum?", "track order {no}",
        "{hi}order #{no} sdh jalan?", "{hi}nomor pesanan {no} statusnya apa ya",
    ])
    return t.format(hi=pick(HI), end=pick(END), no=no), "status", ""


def register():
    nm = pick(NAMES + ["Toko Maju Jaya", "CV Sumber Rejeki", "Warung Bu Sri"])
    t = pick(["REG {nm}", "reg {nm}", "DAFTAR {nm}", "daftar#{nm}", "reg#{nm}",
              "REG nama saya {nm}", "daftar {nm}", "Reg {nm}", "register {nm}",
              "REG.{nm}", "DAFTAR nama {nm}"])
    return t.format(nm=nm), "register", ""


def helpq():
    return pick(["HELP", "help", "INFO", "info", "Info", "bantuan", "BANTUAN", "help min",
                 "info kak", "help please", "Help!", "INFO ya", "info dong", "HELP min",
                 "Bantuan", "help kak", "INFO min", "info gan", "help?", "bantuan dong",
                 "HELP ya kak", "Info ya min"]), "help", ""


def stop():
    return pick(["STOP", "stop", "Stop", "UNREG", "unreg", "berhenti", "STOP sms",
                 "stop kirim promo", "unsubscribe", "stop ya", "STOP!", "UNREG promo",
                 "stop promo", "berhenti langganan", "stop min", "Stop sms nya",
                 "STOP kirim sms", "stop broadcast", "Unreg", "stop kak", "STOP ya min",
                 "please stop sending messages", "berhenti kirim sms promo"]), "stop", ""


def start():
    return pick(["START", "start", "REG", "reg", "Start", "REG INFO", "reg promo",
                 "START ya", "daftar", "Reg", "REG info", "start lagi", "START min",
                 "DAFTAR"]), "start", ""


def other():
    t = pick([
        "{hi}harga xl25 brp?", "{hi}tsel50 berapa kak?", "{hi}ada stok flashdisk 32gb?",
        "{hi}bisa bayar pakai ovo?", "{hi}bayar bisa via dana gak?", "{hi}toko buka jam brp?",
        "{hi}hari minggu buka?", "how much is xl50?", "do you accept gopay?",
        "{hi}rekening bca nya brp?", "{hi}nomor rekening utk transfer apa ya?",
        "{hi}kalau transfer 100rb dapat apa?", "{hi}kalau beli 10 ada diskon?",
        "{hi}ongkir ke bekasi brp?", "{hi}bisa cod?", "{hi}mau tanya harga ram 8gb",
        "{hi}terima servis printer?", "{hi}lokasi toko dmn?", "selamat pagi", "halo",
        "makasih kak", "ok", "oke siap", "terima kasih banyak", "{hi}nanti sore sy transfer",
        "{hi}besok mau bayar ya", "{hi}sy mau transfer tp ke rek mana?",
        "what time do you open?", "{hi}apa ada paket kuota murah?", "ping", "p",
        "{hi}harga laptop asus brp skrg?", "{hi}bisa kirim ke luar kota?",
        "{hi}bisa transfer pakai bri?", "{hi}kalo bayar 2jt bisa dicicil?",
        "{hi}pulsa 50rb harganya brp?", "{hi}cara pesan gimana?", "{hi}daftar harga dong",
        "{hi}ready stok mouse logitech?", "is the shop open today?", "siang",
        "{hi}sudah ya, makasih", "mantap", "{hi}ada promo apa bulan ini?",
        "{hi}bisa bayar di tempat?", "{hi}minimal order brp?",
    ])
    return t.format(hi=pick(HI)).strip(), "other", ""


MAKERS = [(order, 250), (payment, 270), (complaint, 170), (status, 130), (register, 40),
          (helpq, 22), (stop, 25), (start, 12), (other, 250)]


def typo(s: str) -> str:
    """Now and then a slip of the thumb: a doubled or dropped letter in a long word."""
    words = s.split(" ")
    if R.random() > 0.12 or len(words) < 3:
        return s
    i = R.randrange(len(words))
    w = words[i]
    if len(w) > 5 and w.isalpha() and w.lower() not in {"transfer", "pesan", "order", "bayar"}:
        j = R.randrange(1, len(w) - 1)
        words[i] = w[:j] + w[j] + w[j:] if R.random() < 0.5 else w[:j] + w[j + 1:]
    return " ".join(words)


def main() -> None:
    seen, rows = set(), []
    for maker, count in MAKERS:
        made = tries = 0
        while made < count and tries < count * 40:
            tries += 1
            text, intent, amount = maker()
            text = typo(" ".join(text.split()))
            if text.lower() in seen:
                continue
            seen.add(text.lower())
            rows.append((text, intent, amount))
            made += 1
    out = ["number\ttext\tintent\tamount\tsplit"]
    for i, (text, intent, amount) in enumerate(rows, 1):
        h = int(hashlib.sha1(text.encode()).hexdigest(), 16) % 3
        out.append(f"0813444{i:05d}\t{text}\t{intent}\t{amount}\t"
                   f"{'heldout' if h == 0 else 'dev'}")
    OUT.write_text("\n".join(out) + "\n", encoding="utf-8")
    print(len(rows), "rows")


if __name__ == "__main__":
    main()
