"""Read one customer SMS: what it asks for, and the fields written in it.

`read(text, context)` is a pure function: no database, no reactor, no I/O but loading
the intent model's weights once. It never raises. The keyword forms of the README
("What customers can text") are read strictly; free text is read only where the intent
is plain, because a false "payment" or "order" costs more than an "other" that a
person reads anyway.

How it works, in order:
1. `_tokenise` cuts the text into words, plain numbers, money amounts and phone
   numbers with one precompiled regex, so that "Rp 55.000" and "1,5jt" stay whole
   although "." and "," are also field separators.
2. Words are mapped through ABBREVIATIONS ("blm" -> "belum", "tf" -> "transfer"), a
   word one slip from a word the reader knows is read as that word ("samppai"), and a
   canonical string of the words is searched with a few precompiled patterns.
3. A keyword as the first word (or after greetings such as "min, mau ...") picks a
   field reader; products with quantities after a greeting ("minta xl25 2") are an
   order; otherwise the free-text rules decide, conservatively, in this order: opting
   out, a complaint (a fault, a delay, a let-down; not a question about a rule), money
   sent (not asked about, planned or conditional), a status question (an order or
   ticket number with "statusnya", "sudah dikirim?", "sampai mana", ...).
4. Texts written by people who never saw the keywords: an order asked for in words
   whose products have no code ("mau pesan printer epson L3210 satu unit": an order
   with "unknown_product" for a person to resolve), signing up in a sentence ("nama
   saya Budi, mau daftar"), asking how the SMS service works ("cara pesan lewat sms
   gmn?" is help), and amounts written in words ("seratus lima puluh ribu").
5. Where no keyword and no product was read, gateway/desk/intent_model.py weighs in: a
   model trained on the labelled texts of tests/data, which decides the intent where it
   is sure (_GUESS_FLOOR). Its fields are read as the rules read them; an order it
   guesses has no items ("no_items"), so a person completes it. The weights are read
   from the package once, at first use.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from gateway.desk import intent_model

# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------

# Keyword (after ABBREVIATIONS) -> intent. REG/DAFTAR are "register"; a bare REG is
# read as "start" in _read_register.
KEYWORDS = {
    "pesan": "order", "order": "order", "beli": "order",
    "bayar": "payment", "konfirmasi": "payment", "pay": "payment",
    "komplain": "complaint", "keluhan": "complaint", "complaint": "complaint",
    "status": "status", "cek": "status",
    "reg": "register", "daftar": "register", "register": "register",
    "help": "help", "bantuan": "help", "info": "help", "menu": "help",
    "stop": "stop", "unreg": "stop", "berhenti": "stop", "unsubscribe": "stop",
    "start": "start", "mulai": "start", "langganan": "start",
    "garansi": "warranty", "warranty": "warranty",
}

# How Indonesians shorten or misspell words, mapped to one canonical word so that the
# patterns below are written once. Keys are lower case.
ABBREVIATIONS = {
    # pronouns and address
    "sy": "saya", "sya": "saya", "gw": "saya", "gue": "saya", "aq": "aku", "ak": "aku",
    "mimin": "min", "admin": "min", "kk": "kak", "ka": "kak", "kakak": "kak",
    "agan": "gan", "mba": "mbak", "bpk": "pak", "bapak": "pak", "ibu": "bu",
    # not yet / already / not
    "blm": "belum", "blom": "belum", "belom": "belum", "blum": "belum", "lom": "belum",
    "udh": "sudah", "udah": "sudah", "sdh": "sudah", "sudh": "sudah", "sdah": "sudah",
    "uda": "sudah", "dah": "sudah", "udach": "sudah", "tlh": "telah",
    "ga": "tidak", "gak": "tidak", "gk": "tidak", "nggak": "tidak", "ngga": "tidak",
    "nga": "tidak", "enggak": "tidak", "engga": "tidak", "ndak": "tidak", "tdk": "tidak",
    "tak": "tidak", "kagak": "tidak", "gag": "tidak", "kaga": "tidak",
    # transfer and pay
    "tf": "transfer", "trf": "transfer", "trnsf": "transfer", "trnsfr": "transfer",
    "transfr": "transfer", "tranfer": "transfer", "trasfer": "transfer",
    "transper": "transfer", "tfr": "transfer", "ditf": "ditransfer", "ditrf": "ditransfer",
    "byr": "bayar", "bayr": "bayar",
    # keywords people misspell
    "psn": "pesan", "pesen": "pesan", "mesen": "pesan", "komplen": "komplain",
    "komplin": "komplain", "complain": "komplain", "konf": "konfirmasi",
    "konfirm": "konfirmasi", "konfirmasikan": "konfirmasi", "check": "cek",
    "chek": "cek", "cekk": "cek",
    # everyday words
    "dr": "dari", "td": "tadi", "tdi": "tadi", "jg": "juga", "jga": "juga",
    "bgt": "banget", "sm": "sama", "yg": "yang", "dgn": "dengan", "dg": "dengan",
    "utk": "untuk", "untk": "untuk", "krn": "karena", "trs": "terus", "msh": "masih",
    "masi": "masih", "kpn": "kapan", "gmn": "bagaimana", "gimana": "bagaimana",
    "gmna": "bagaimana", "bgmn": "bagaimana", "brp": "berapa", "knp": "kenapa",
    "knapa": "kenapa", "napa": "kenapa", "bs": "bisa", "bsa": "bisa", "dtg": "datang",
    "smp": "sampai", "sampe": "sampai", "nyampe": "sampai", "nyampai": "sampai",
    "msk": "masuk", "lg": "lagi", "lgi": "lagi", "nmr": "nomor", "nomer": "nomor",
    "no": "nomor", "rek": "rekening", "hr": "hari", "mnt": "menit", "mo": "mau",
    "mw": "mau", "pgn": "pengen", "pengin": "pengen", "pingin": "pengen",
    "tlg": "tolong", "tolongin": "tolong", "mksh": "makasih", "makasi": "makasih",
    "thx": "makasih", "tks": "makasih", "trims": "makasih", "thanks": "makasih",
    "kalo": "kalau", "klo": "kalau", "klu": "kalau", "kl": "kalau", "ntar": "nanti",
    "nnti": "nanti", "skrg": "sekarang", "skrng": "sekarang", "tp": "tapi",
    "tpi": "tapi", "krm": "kirim", "dikrm": "dikirim", "brg": "barang", "pls": "please",
    "plz": "please", "ilang": "hilang", "kepake": "terpakai", "kepakai": "terpakai",
    "isiin": "isi", "isikan": "isi", "memesan": "pesan", "membeli": "beli",
    "orderan": "pesanan", "psnan": "pesanan", "pesenan": "pesanan",
    "ordr": "order", "oder": "order", "bli": "beli", "beliin": "beli", "dateng": "datang",
    "daftarin": "daftar", "didaftarin": "daftar", "daftarkan": "daftar", "ane": "saya",
    "dikirimin": "dikirim", "ve": "have", "mendaftar": "daftar", "registrasi": "daftar",
    "fungsi": "berfungsi", "cmn": "cuma", "cuman": "cuma", "cm": "cuma", "doang": "saja",
    "jgn": "jangan", "jngn": "jangan", "bayarkan": "bayar", "dibayarkan": "dibayar",
    "checkout": "order", "didaftarkan": "daftar", "garansikan": "garansiin",
    # Javanese and Sundanese, as shop customers in Java mix them in: "durung mlebu, piye
    # iki", "teu acan lebet", "sampun kulo transfer", "bade mesen", "tuku pulsa siji".
    "durung": "belum", "dereng": "belum", "acan": "belum",
    "wis": "sudah", "wes": "sudah", "sampun": "sudah", "parantos": "sudah", "atos": "sudah",
    "mpun": "sudah", "teu": "tidak", "ora": "tidak", "mboten": "tidak", "boten": "tidak",
    "henteu": "tidak", "mlebu": "masuk", "lebet": "masuk", "piye": "bagaimana",
    "pripun": "bagaimana", "kumaha": "bagaimana",
    "kulo": "saya", "kula": "saya", "abdi": "saya", "bade": "mau", "badé": "mau",
    "ajeng": "mau", "arep": "mau", "tuku": "beli", "meser": "beli", "tumbas": "beli",
    "ngirim": "kirim", "kirimno": "kirim", "siji": "satu", "hiji": "satu", "loro": "dua",
    "kalih": "dua", "telu": "tiga", "tilu": "tiga", "papat": "empat", "opat": "empat",
    "carane": "caranya", "asmanipun": "nama", "asmane": "nama", "nami": "nama",
    "jenengku": "nama", "jeneng": "nama", "meneh": "lagi", "maneh": "lagi", "deui": "lagi",
    "ojo": "jangan", "ampun": "jangan", "ulah": "jangan", "telat": "terlambat",
    "asup": "masuk", "hoyong": "mau", "tulung": "tolong", "nyuwun": "minta", "saged": "bisa",
    "tiasa": "bisa", "dugi": "sampai", "pundi": "mana", "endi": "mana", "iki": "ini",
    "niki": "ini", "ieu": "ini", "uwis": "sudah", "nuhun": "makasih", "suwun": "makasih",
    "peryogi": "butuh", "mundhut": "beli", "unsub": "unsubscribe", "unsubs": "unsubscribe",
    "ngehang": "hang", "ngeblank": "blank", "tong": "jangan", "isih": "masih",
    "garansine": "garansinya", "kubayar": "bayar", "kutransfer": "transfer",
    "dibayarin": "dibayar", "kedeteksi": "terdeteksi", "kebaca": "terbaca",
    "aktifin": "aktifkan", "nyalain": "aktifkan",
    "nyalakan": "aktifkan", "hidupkan": "aktifkan", "activate": "aktifkan",
    "berlangganan": "langganan", "subscribe": "langganan", "resubscribe": "langganan",
    "paketku": "paket", "pesananku": "pesanan", "orderanku": "pesanan", "kirimanku": "kiriman",
    "barangku": "barang", "gua": "saya", "gwa": "saya", "tos": "sudah",
}

# Words that may open a text before the keyword ("halo min, mau pesan ...").
LEADING_FILLERS = frozenset("""
    halo hallo hai hi hello helo hey dear good morning afternoon evening
    pagi siang sore malam selamat met assalamualaikum
    assalamu alaikum ass askum asw salam permisi misi p ping min kak gan sis bos boss bro pak bu mas
    mbak om saya aku kami mau pengen ingin minta tolong mohon please dong ya nih deh
    sekarang ini oke ok i we want wanna would like to need can could may d
    ambil isi kirim kirimin kirimkan pesankan orderkan beliin butuh perlu get buy take you
    send give me nitip titip punten sampurasun nuwun sewu kang akang teh aa a
""".split())

# Words with no content of their own; trimmed from notes, and a HELP/STOP followed only
# by these is still a bare HELP/STOP.
POLITE = frozenset("""
    min kak gan sis bos boss bro pak bu mas mbak om ya yah yaa dong donk deh nih please
    makasih terima kasih tq ty ok oke sip me saja aja segera cepat nggih njih atuh sih kan
""".split())

# Skipped before the first product of an order ("beli voucher xl25 2").
ORDER_FILLERS = frozenset("""
    voucher vocer paket pulsa kuota produk kode item barang nya yang untuk
    lagi dong donk deh dulu ya yaa nih kak min gan sis bos mas juga please
""".split())
QTY_PREFIX = frozenset("qty jumlah jml sebanyak sejumlah x".split())
QTY_UNITS = frozenset("pcs pc buah bh lembar lbr biji unit item ea kali".split())
ITEM_CONNECTORS = frozenset("dan sama and plus".split())
QTY_WORDS = {"satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6,
             "tujuh": 7, "delapan": 8, "sembilan": 9, "sepuluh": 10}

# Words that do not start a product after an order keyword: "pesan saya belum sampai"
# is about a message or an order, not a request to buy.
PRONOUNS = frozenset("saya aku kami kita nya anda kamu".split())

# Bank and e-wallet spellings -> the canonical names of the payments API.
BANK_ALIASES = {
    "bca": "BCA", "klikbca": "BCA", "mbca": "BCA",
    "bri": "BRI", "brimo": "BRI",
    "bni": "BNI",
    "mandiri": "Mandiri", "livin": "Mandiri",
    "bsi": "BSI", "bsm": "BSI",
    "cimb": "CIMB", "niaga": "CIMB", "octo": "CIMB",
    "permata": "Permata", "permatabank": "Permata",
    "dana": "DANA",
    "ovo": "OVO",
    "gopay": "GoPay",
    "shopeepay": "ShopeePay", "spay": "ShopeePay",
}
BANK_PAIRS = {
    ("cimb", "niaga"): "CIMB", ("mandiri", "syariah"): "BSI", ("syariah", "mandiri"): "BSI",
    ("shopee", "pay"): "ShopeePay", ("go", "pay"): "GoPay",
}
# "dana" is also the word for "funds"; it names the wallet only after these words (or
# in the bank slot of a BAYAR text).
DANA_PREPOSITIONS = frozenset("ke via pakai pake pk lewat lwt dari dengan melalui using by".split())

# Before a payer's name ("a.n. Tono", "atas nama Tono", "dari Tono").
NAME_MARKERS = frozenset("an atas nama dari pengirim name".split())
NAME_TITLES = frozenset("pak bu mas mbak sdr sdri ibu bapak".split())
# Words that end a payer's name: chat, not a name.
NAME_STOP = POLITE | LEADING_FILLERS | frozenset("""
    sudah telah transfer ditransfer bayar tolong dicek cek mohon via ke pakai pake lewat
    tgl tanggal jam hari untuk pesanan order sebesar total rp idr rekening bank tadi
    juga ini itu terima kasih tidak belum lunas yang
""".split())

# REG followed by one of these subscribes to broadcasts ("REG INFO"), it is not a name.
REG_SERVICES = frozenset("info promo sms broadcast bc on berita news".split())
# DAFTAR also means "list": "daftar harga" asks for the price list.
DAFTAR_LIST_WORDS = frozenset("""
    harga produk paket menu list pricelist price katalog perintah kode command commands
    format keyword
""".split())
# A CEK without a number is still a status query when it names one of these.
STATUS_WORDS = frozenset("status pesanan order tiket ticket tkt resi resinya pengiriman kiriman"
                         .split())
# Words that may stand before an order or ticket number.
REFERENCE_MARKERS = frozenset("order pesanan invoice inv nomor tiket ticket tkt id ord".split())
# A number before these is a time or a size, not money.
NOT_MONEY_AFTER = frozenset("jam menit detik hari minggu bulan tahun gb mb kali x".split())
NOT_MONEY_BEFORE = frozenset("nomor order pesanan rekening tgl tanggal tahun thn jam tiket ticket "
                              "tkt id invoice inv resi ord sn serial".split())

# Street names of sums, from Hokkien, as customers use them for money: "ceban" 10rb,
# "2 goceng" 10rb, "gocap" (strictly fifty) 50rb.
SLANG_SUMS = {"seceng": 1_000, "ceceng": 1_000, "goceng": 5_000, "ceban": 10_000,
              "goban": 50_000, "gocap": 50_000, "cetiao": 1_000_000}
# Multipliers of the amount units ("ebu" is Madurese for thousand).
UNITS = {"rb": 1_000, "ribu": 1_000, "rebu": 1_000, "rbu": 1_000, "ewu": 1_000, "ebu": 1_000,
         "k": 1_000, "jt": 1_000_000, "juta": 1_000_000, "jta": 1_000_000,
         "thousand": 1_000, "million": 1_000_000, "mio": 1_000_000, "mil": 1_000_000,
         **SLANG_SUMS}

# Patterns on the canonical word string (words joined by single spaces; numbers appear
# as NUM, money as AMT, phone numbers as PHONE).
_COMPLAINT_PHRASES = [
    r"(?:belum|tidak)(?: juga)? (?:masuk|sampai|datang|diterima|terima|aktif|dikirim"
    r"|terkirim|diproses|dibalas|dibales|direspon|berfungsi|nyala|jalan|konek|connect"
    r"|keluar|muncul|ada kabar|ada respon|ada balasan|bisa di[a-z]+"
    r"|bisa (?:masuk|login|pakai|isi|konek|connect|aktif|redeem))",
    r"masih belum", r"belum juga", r"padahal",
    r"kok (?:belum|tidak|lama|malah|masih|mahal|susah|ribet|jelek|beda|gitu|begitu|begini"
    r"|sedikit|cuma|hanya)",
    r"(?:beda|berbeda|lain) (?:sama|dengan|dari) (?:yang |foto|gambar|pesanan|iklan|deskripsi)",
    r"kecewa", r"mengecewakan", r"rusak", r"pecah", r"cacat", r"penipu[a-z]*", r"ditipu",
    r"nipu", r"tipu", r"lemot", r"lelet", r"lambat", r"error", r"eror", r"gagal",
    r"hilang", r"terpotong", r"kepotong", r"gangguan", r"tidak sesuai",
    # "maaf salah kirim": the sender's own slip, not the shop's.
    r"(?<!maaf )(?<!saya )(?<!aku )salah (?:kirim|barang|produk|item)",
    r"komplain", r"keluhan", r"complaint",
    r"refund", r"kembalikan uang", r"balikin", r"parah", r"kesal", r"kesel", r"kapok",
    r"lama (?:banget|sekali|amat)", r"invalid", r"expired", r"kadaluarsa", r"kadaluwarsa",
    r"kedaluwarsa", r"hangus", r"nyangkut", r"zonk",
    r"not (?:received|working|work|arrived|active|valid)",
    r"(?:didn t|doesn t|don t|isn t|wasn t|hasn t|haven t|did not|does not|never) "
    r"(?:arrive|arrived|receive|received|work|working|come|came|delivered|showed up)",
    r"broken", r"damaged", r"disappointed", r"scam", r"still not", r"wrong (?:item|product)",
    # A faulty thing, described without the word "rusak": "masih macet", "mati total",
    # "tidak kebaca", "masuk cuma setengah", "malah mati".
    r"macet", r"mati(?: total)?", r"hang", r"bergaris", r"retak", r"bocor", r"penyok",
    r"lecet", r"sobek", r"robek", r"basi", r"palsu", r"kw", r"putus", r"copot", r"baret",
    r"tergores", r"gosong", r"meledak", r"kembung",
    r"(?:belum|tidak|tak)(?: juga)? (?:kebaca|terbaca|terdeteksi|kedetect|detect|bunyi"
    r"|bisa dicas|ngecas|mengisi|lengkap|cocok|pas|jelas|nyambung|tersambung|terisi"
    r"|bertambah|nambah|berubah|berkurang|selesai|beres|diganti|diperbaiki|dikembalikan"
    r"|direfund)",
    r"(?:sudah|telah) (?:terpakai|dipakai orang)", r"buruk", r"jelek", r"payah", r"bohong",
    r"masih sama (?:saja|aja)", r"malah (?:mati|rusak|error|hang|tambah|makin|parah|jadi)",
    r"(?:cuma|hanya|cuman|cm) (?:masuk )?(?:setengah|sebagian|separuh)",
    r"kurang (?:satu|lengkap|NUM (?:pcs|pc|buah|bh|biji|item|unit|lembar))",
    r"(?:cepat|cepet|tiba|mendadak)(?: banget)? habis", r"habis sendiri",
    r"(?:masuk|dikirim|datang|diterima)(?:nya)? (?:cuma|hanya|kurang|malah)",
    r"(?:warna|ukuran|model|tipe|isi|jumlah|kembalian)(?:nya)? (?:beda|berbeda|salah|lain|kurang)",
    r"(?:ditagih|dipotong|terdebet|didebet) (?:dua kali|2x|double|dobel|lagi)",
    r"stopped working", r"dead", r"faulty", r"terrible", r"awful", r"worst",
    r"(?:bad|poor) (?:service|quality|product|experience)",
    r"defective", r"missing", r"not (?:charging|turning on|delivered|complete)",
    # The thing came wrong, dirty, used or noisy: "yg datang salah", "bekas pakai",
    # "bunyi sebelah", "suaranya kresek2", "gambarnya buram".
    r"(?:datang|dikirim|diterima|sampai|masuk)(?:nya)? (?:salah|rusak|beda|kurang)",
    r"salah (?:ukuran|warna|tipe|model|ukurannya|warnanya|kapasitas|ukuran)",
    r"(?:cuma|hanya) (?:[a-z]+ )?(?:sebelah|separuh|setengah|sebagian)",
    r"kotor", r"bekas (?:pakai|dipakai|orang)", r"kresek", r"buram", r"berisik", r"bau",
    r"kemahalan", r"overcharged", r"charged (?:twice|double|me twice)", r"cracked",
    r"scratched", r"leaking", r"too late", r"never (?:came|arrived|got)",
    r"(?:tidak|belum) (?:ada )?(?:terima|menerima|nerima|dapat|dapet)",
    r"tidak (?:nyala|hidup|menyala|connect|terhubung|bisa dipakai|bisa digunakan)",
    r"tidak mau (?:nyala|hidup|menyala|narik|masuk|connect|konek|jalan|keluar|ngecas|kebaca"
    r"|terbaca|berfungsi|nyambung|print|ngeprint|mencetak|baca|dibuka|terbuka)",
    r"(?:gerak|klik|mati|nyala|restart|geser|ngetik|kepencet) sendiri", r"double click",
    r"sember", r"(?<!sorry )(?<!maaf )wrong(?! number)", r"only (?:got|received|came|arrived)",
    r"sepihak", r"double charge", r"dobel charge", r"(?<!harga )miring",
    r"(?:ketarik|tertarik|terpotong|kepotong|terdebet|didebet|dipotong|ditagih) (?:2x|dua kali"
    r"|double|dobel)",
    r"(?:kurang|tidak) (?:ramah|sopan|responsif|memuaskan|profesional)", r"rude",
    r"jutek", r"judes", r"ketus", r"galak",
    r"still (?:nothing|waiting)", r"(?:no|nomor) (?:reply|response|answer) (?:yet|at all|since)",
    r"(?:nobody|no one) (?:answers|answered|replies|replied|picks up|responds)",
    r"humming", r"buzzing", r"flickering", r"blinking", r"leaks", r"(?:belum|tidak) ada jawaban",
    r"lag", r"ngelag", r"freeze", r"bluescreen", r"blue screen", r"ngadat", r"rewel", r"kendor",
    r"longgar", r"pudar", r"overheat", r"(?:cepat|cepet|gampang|mudah) panas", r"panas banget",
    r"(?:bunyi|suara)(?:nya)? (?:aneh|kasar|keras)",
    r"(?:baterai|batre|batere|battery|batrei)(?:nya)? (?:drop|boros|bocor|kembung)",
    r"dicuekin", r"dicuekkin", r"diabaikan", r"ignored", r"molor", r"ingkar janji",
    r"dioper(?: oper)?", r"dilempar(?: lempar)?",
    r"dead pixel", r"belang", r"layar(?:nya)? (?:ada )?garis", r"garis(?: garis)? di layar",
    r"tidak (?:ngisi|ngecas|mengisi|ngecharge|charge|charging)",
    r"different (?:from|than|to)", r"not (?:as|like) (?:described|pictured|advertised)",
    r"(?:tidak|belum) (?:ada )?(?:konfirmasi|kepastian|tanggapan)",
    # A fault or bad service described, not named: "mendengung", "tinta luber", "lampunya
    # kedip2 ga bisa print", "lama bales", "telpon ga diangkat2", "kurirnya nyasar".
    r"(?:men|ber)?dengung", r"luber", r"rembes", r"kedip", r"berkedip", r"nyasar",
    r"(?<!maaf )(?<!saya )(?<!aku )terlambat", r"dead on arrival", r"doa unit",
    r"(?:belum|tidak)(?: juga)? bisa (?:print|ngeprint|mencetak|cetak|scan|nyala|hidup|dicas"
    r"|dicharge|charge|dipakai|dipake|digunakan|dibuka|dibaca|baca|konek|tersambung|jalan)",
    r"lama (?:banget |sekali )?(?:bales|balas|dibales|dibalas|balesnya|balasnya|respon"
    r"|responnya|direspon|responsnya|ngerespon|nunggu|menunggu)",
    r"(?:tidak|belum)(?: juga)? (?:diangkat|angkat|dijawab|ditanggapi|digubris|diladeni"
    r"|dilayani|diurus|direspons|diproses juga)",
    r"(?:yang|yg) (?:datang|dikirim|diterima|sampai|masuk)(?: [a-z]+){0,3} (?:salah|beda|bukan)",
    r"bukan (?:yang|barang yang) (?:saya |aku )?(?:pesan|order|beli|minta)",
    r"(?:alamat|orang) (?:lain|yang salah)", r"kok (?:yang|malah|dikirim|datang|dapat|dapet)",
    r"(?:saya|aku) (?:pesan|order|mintanya|pesannya)(?: [a-z]+){1,3} (?:tapi|malah|kok|eh)"
    r" (?:yang )?(?:datang|dikirim|dapat|dapet|sampai)",
    # Not what was sold or due: "ternyata bukan i5 tapi i3", "240gb bukan 256 kaya di
    # pesanan", "beli 10gb cuma masuk 5gb", "sy keberatan, potongan bulan ini dobel".
    r"ternyata (?:bukan|cuma|hanya|palsu|rusak|beda|kosong)",
    r"bukan (?:[a-z0-9]+|NUM) (?:kaya|kayak|seperti|sesuai|yang) (?:di |yang di )?(?:pesanan|pesan"
    r"|order|iklan|foto|deskripsi)",
    r"(?:cuma|hanya|cuman|cm) (?:masuk|dapat|dapet|datang|terisi|keisi) (?:[0-9]+[a-z]*|NUM|AMT)",
    r"keberatan", r"(?:potongan|tagihan|cicilan|iuran)(?: [a-z]+){0,4} (?:dobel|double|2x"
    r"|dua kali)",
]
# "rusaknya", "errornya": the suffix -nya does not change what the word says.
_COMPLAINT_RE = re.compile(r"\b(?:" + "|".join(_COMPLAINT_PHRASES) + r")(?:nya)?\b")
_PAY_VERBS = (r"(?:ditransfer|transfer|transferan|bayar|dibayar|membayar|pembayaran|lunas"
              r"|dilunasi|melunasi|setor|paid|transferred|payment|dp)")
_PAY_VERB_RE = re.compile(r"\b" + _PAY_VERBS + r"\b")
# "sudah saya transfer", "barusan tf", "pembayaran sudah": the payment has happened.
_PAID_RE = re.compile(
    r"\b(?:sudah|telah|barusan|baru|tadi|already|just|have|has)"
    r"(?: (?!mau|akan|belum|tidak|nanti)[a-z]+){0,2} (?:di ?)?" + _PAY_VERBS + r"\b"
    r"|\b(?:transfer|pembayaran|bayar)(?:nya|an)?(?: AMT| NUM)? (?:sudah|telah)\b"
    # "payment 150rb done via bca", "transfer of 1,5jt completed"
    r"|\b(?:payment|transfer)(?: (?:[a-z]+|AMT|NUM)){0,3} (?:done|completed|complete|made"
    r"|sent|successful|berhasil|sukses)\b"
    r"|\b(?:ditransfer|dibayar|paid|transferred)\b")
_NOT_PAID_RE = re.compile(r"\b(?:belum|tidak)(?: (?!sudah|telah)[a-z]+)? (?:di ?)?"
                          r"(?:transfer|bayar|lunas)")
_CONDITIONAL_RE = re.compile(r"\b(?:kalau|jika|jikalau|apabila|seandainya|misal|misalnya|if)\b")
_QUESTION_RE = re.compile(r"\b(?:apakah|apa|bisa|bisakah|boleh|bolehkah|bagaimana|berapa"
                          r"|kapan|mana|dimana|kemana|kenapa|mengapa|can|could|how|where|what"
                          r"|when|why)\b")
_FUTURE_RE = re.compile(r"\b(?:mau|akan|nanti|besok|rencana|pengen|ingin|will|want)\b")
# Asking how far an order or a repair has got: "sudah dikirim belum?", "kapan selesai",
# "sampai mana", "gimana statusnya", "track order 5".
_PROGRESS = (r"(?:dikirim|terkirim|dikirimkan|kirim|diproses|proses|jalan|selesai|sampai"
             r"|datang|diterima|beres|jadi|siap|ready|shipped|sent|delivered|done|finished"
             r"|arrived|dispatched|dikerjakan|diservis|diperbaiki|processed|completed|packed"
             r"|dipacking|dikemas|diambil|bisa diambil|arrive|ship|deliver|delivered|dikonfirmasi"
             r"|konfirmasi|confirmed|ditangani|ditanggapi|dicek|dibalas|handled|nyampe|arrives"
             r"|repaired|fixed|on the way|otw|di jalan|diisi|terisi|diverifikasi|verifikasi"
             r"|divalidasi|diaktifkan|diaktifin|verified|activated)")
# Words that ask for a status by themselves ("statusnya", "track", "sampai mana") ...
_STATUS_WORD_RE = re.compile(
    r"\b(?:status|statusnya|kabar|kabarnya|track|tracking|trace|lacak|posisi|progress|progres"
    r"|estimasi|eta|resinya"
    r"|progresnya|update|updatenya|cek|dicek|check|cekin|resi|info|news|sampai mana)\b"
    r"|\b" + _PROGRESS + r"(?:nya)? (?:belum|apa belum|atau belum|yet|or not)\b")
# ... and "has it happened" forms, a status question only when asked ("sudah dikirim?";
# "pesanan 12 sudah diterima, makasih" is a thank-you).
_PROGRESS_RE = re.compile(
    r"\b(?:sudah|telah|kapan|when|has|have|is|was|been|already|apa|apakah|did|will|until|long"
    r"|lagi|sedang|masih)"
    r"(?: (?:[a-z]+|NUM)){0,5} "
    + _PROGRESS + r"(?:nya)?\b")
# "jangan kirim promo lagi", "please stop sending messages": opting out in a sentence.
_OPT_OUT_RE = re.compile(
    r"\b(?:jangan|usah|stop|berhenti|hentikan|don t|do not|dont)(?: [a-z]+)? "
    r"(?:kirim|kirimi|dikirimi|sms|send|sending|text|texting|message|messaging|spam)"
    r"(?: [a-z]+){0,2} (?:promo|broadcast|bc|iklan|sms|messages|texts|info|lagi|spam)\b"
    # "please stop texting me", "tidak mau terima sms lagi", "hapus nomor saya", "no more
    # messages"
    r"|\b(?:stop|berhenti|hentikan) (?:texting|messaging|spamming|sending me)\b"
    r"|\btidak (?:mau|ingin|perlu|usah) (?:di[a-z]+ |lagi )?(?:terima|menerima|dapat|dapet"
    r"|dikirimi|dikirim|dapat) (?:[a-z]+ )?(?:sms|promo|broadcast|bc|iklan|info|pesan promo)\b"
    r"|\bhapus (?:nomor|nomer|kontak) (?:saya|aku|ku|ini|sy)\b"
    r"|\b(?:no|nomor) more (?:messages|texts|sms|promos|promo)\b"
    # "opt out", "keluarkan saya dari grup", "hapus nomor 0812... dari daftar broadcast",
    # "stop sms blast nya", "jangan sms saya lagi"
    r"|\b(?:don t|do not|dont) want (?:these|this|any|your|more|the)(?: [a-z]+)? (?:messages|sms"
    r"|texts|promos|promo)\b"
    r"|\bopt ?out\b|\b(?:remove|delete) (?:me|my number)\b"
    r"|\b(?:keluarkan|hapus|hapuskan|remove|delete|coret) (?:saya|aku|nomor(?: saya| aku)?|PHONE"
    r"|nomor PHONE)(?: [a-z]+){0,2} (?:dari|from) (?:[a-z]+ ){0,2}(?:grup|group|daftar|list"
    r"|broadcast|bc|milis|pengumuman|promo|sms|langganan|mailing)\b"
    r"|\b(?:stop|berhenti|hentikan|jangan) (?:kirim )?(?:sms|pesan|message)(?: [a-z]+)?"
    r" (?:blast|broadcast|promo|bc|iklan|spam)\b"
    r"|\bjangan (?:sms|kirim|kirimi|spam|text|chat) (?:saya|aku|ke nomor|nomor|kesini) lagi\b"
    # "tiap hari sms promo, stop aja": the broadcasts named, then a stop to end the text
    r"|\b(?:sms|promo|promonya|broadcast|bc|iklan)(?: [a-z]+){0,3} (?:stop|berhenti|stopin"
    r"|setop)(?: (?:aja|saja|dong|deh|ya|please|min|kak))*$")
# Asking for the broadcasts again: "aktifkan lagi sms promonya", "mau langganan info
# promo lagi", "please resume sending me promos", "mau ikut broadcast".
_OPT_IN_RE = re.compile(
    r"\baktifkan (?:kembali |lagi )?(?:[a-z]+ ){0,2}(?:langganan|sms|promo|notif|notifikasi"
    r"|info|broadcast|bc)\b"
    r"|\blangganan(?: [a-z]+){0,3} (?:lagi|kembali|again)\b"
    r"|\b(?:mau|ingin|pengen|minta|want to|would like to) (?:ikut |gabung )?(?:langganan"
    r"|broadcast|bc)\b"
    r"|\b(?:ikut|gabung|join|masukkan|masukin)(?: saya| aku| me)? (?:ke |di |to )?(?:grup |group"
    r" |daftar |list )?(?:broadcast|bc|milis|langganan)\b"
    r"|\bresume (?:sending|the|your|sms|messages|texts|promos)\b"
    r"|\b(?:send|kirim|kirimi|kirimin)(?: saya| aku| me)? (?:promo|info|broadcast|bc)"
    r"(?: [a-z]+)? (?:lagi|again)\b"
    # "masukin nomor aku ke broadcast", "add me to your promo list", "kirimin lagi info
    # harga", "minta dikirimin info promo tiap bulan", "pengen dapet kabar diskon"
    r"|\b(?:masukin|masukkan|tambahkan|tambahin|daftarkan|daftarin|add|put)(?: [a-z]+){0,3}"
    r" (?:ke|di|to|in|on) (?:[a-z]+ )?(?:info promo|broadcast|bc|milis|daftar promo|promo list"
    r"|mailing list|list promo|grup promo|list broadcast)\b"
    r"|\b(?:kirim|kirimi|kirimin|dikirim|dikirimi)(?: [a-z]+)? lagi (?:info|promo|broadcast"
    r"|kabar)\b"
    r"|\b(?:minta|mau|pengen|ingin|boleh)(?: minta)? (?:dikirim|dikirimi|dapet|dapat|terima"
    r"|menerima) (?:info|kabar|sms)(?: [a-z]+)? (?:promo|diskon|broadcast)\b"
    r"|\b(?:dikirim|dikirimi|kirimin|kirimi|kirim)(?: saya| aku)? (?:info|kabar|promo)"
    r"(?: [a-z]+){0,2} (?:tiap|setiap|rutin)\b")
# When the thing will arrive, or where it is: "paket sy nyampe kapan?", "posisinya dimana?"
_ARRIVAL_RE = re.compile(r"\b(?:sampai|tiba|datang|diterima) kapan\b"
                         r"|\bkapan (?:sampai|tiba|datang|diterima|dikirim)\b"
                         r"|\bposisi(?:nya)? (?:dimana|di mana|sampai mana|where)\b")
# "... sudah dikirim belum": a question even without "?".
_PENDING_RE = re.compile(r"\b(?:" + _PROGRESS + r"|ada|keluar|terbit)(?:nya)? (?:apa |atau )?"
                         r"belum\b")
# Money handed over in other words ("sudah sy kirim"); a payment only with a bank named.
_SENT_RE = re.compile(r"\b(?:sudah|telah|barusan|already|just)(?: [a-z]+)? (?:di)?(?:kirim|sent)\b"
                      r"|\b(?:sudah|telah|done)(?: [a-z]+){0,2} AMT (?:via|ke|lewat|pakai|dari)\b"
                      r"|\bsent AMT\b")
# What a status question is about when it gives no number: "pesanan saya sudah dikirim?"
_STATUS_THING = (r"(?:pesanan|order|tiket|ticket|kiriman|pengiriman|paket|servis|servisan|service"
                 r"|perbaikan"
                 r"|repair|barang|package|parcel)")
_STATUS_SUBJECT_RE = re.compile(r"\b(?:" + _STATUS_THING + r"|kurir|resi|pesan|beli|dibeli"
                                r"|dipesan|diservis|diperbaiki|ordered|bought)(?:nya)?\b")
# "dimana pesanan saya?", "where is my order": where a thing is, not where to buy.
_WHERE_RE = re.compile(r"\b(?:dimana|di mana|where)\b(?: [a-z]+){0,2} (?:" + _STATUS_THING
                       + r"|kurir|kurirnya|courier)\b|\b" + _STATUS_THING
                       + r"(?: [a-z]+){0,2} (?:dimana|di mana)\b")
_MY_THING_RE = re.compile(r"\b(?:" + _STATUS_THING + r"|servisan|orderan)(?:nya)?(?: [a-z]+){0,2}"
                          r" (?:saya|aku|kami|ku|mine)\b|\bmy(?: [a-z]+)? (?:" + _STATUS_THING
                          + r"|laptop|phone|printer|computer)\b"
                          r"|\b(?:laptop|hp|handphone|printer|komputer|pc|notebook)(?:nya)?"
                          r" (?:saya|aku|kami)\b")
# "tolong cek pesanan saya", "track my order please", "minta nomor resi dong".
_ASK_TO_CHECK_RE = re.compile(r"\b(?:cek|dicek|cekin|check|track|tracking|lacak|status"
                              r"|statusnya|resi|resinya|update|kabar|kabarnya|progress|posisi)\b")
_PLEASE_RE = re.compile(r"\b(?:tolong|mohon|please|minta|dong|donk|plis|pls)\b")
_BARE_PROGRESS_RE = re.compile(r"(?:(?:apakah|apa|sudah|telah|already|kapan) ){0,2}" + _PROGRESS
                               + r"(?:nya)?(?: (?:belum|apa belum|atau belum|yet|or not))?")
_HOW_IS_RE = re.compile(r"\b(?:bagaimana|how is|how s|how about|any news|any update)\b")
_STATUS_REF_WORD_RE = re.compile(r"(?:tkt|tiket|ticket|ord|order|inv)([0-9]{1,12})")

# "bisa pesan ...", "can I order ...": a polite request, not a question about the shop.
_REQUEST_RE = re.compile(r"\b(?:bisa|bisakah|boleh|bolehkah|can|could|may)"
                         r"(?: (?:saya|aku|kami|i|we|you|minta|tolong|please))? "
                         r"(?:pesan|order|beli|minta|get|have|buy|send|kirim|kirimin|ambil)\b"
                         r"|\b(?:bisa|boleh)(?: tidak)?$")
_CANCEL_RE = re.compile(r"\b(?:batal|batalkan|dibatalkan|dibatalin|cancel|cancelled|canceled)\b")
# Words that ask about the offer (price, stock, discount), so an order-shaped text that
# names them is a question: "beli xl25 10 ada diskon?".
_OFFER_QUESTION_RE = re.compile(r"\b(?:harga|harganya|price|diskon|discount|promo|stok|stock"
                                r"|ready|ongkir|ada|tersedia|available)\b")

# --------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------

INTENTS = ("order", "complaint", "payment", "status", "register", "help", "stop", "start",
           "reply", "other", "warranty")


@dataclass(frozen=True, slots=True)
class Item:
    code: str          # upper case, e.g. "XL25"
    quantity: int


@dataclass(frozen=True, slots=True)
class Context:
    """What the caller knows about the sender and the shop, to read a text better."""
    has_open_ticket: bool = False
    open_order_numbers: tuple[str, ...] = ()
    product_codes: frozenset[str] = frozenset()   # upper case, e.g. "XL25"
    # The shop's product names, from product_names(): "beli flashdisk sandisk 32gb 2".
    product_names: ProductNames | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What one text says. `problems` lists why a person must look (machine-readable)."""
    intent: str
    body: str
    keyword: str | None = None
    items: tuple[Item, ...] = ()
    note: str | None = None
    order_number: str | None = None
    reference: str | None = None      # STATUS/CEK: a ticket or order number
    amount: int | None = None         # integer rupiah; set for payments only
    bank: str | None = None
    payer_name: str | None = None
    name: str | None = None           # REG/DAFTAR
    serial: str | None = None         # GARANSI: an item's serial number, upper case
    problems: tuple[str, ...] = ()


_NO_CONTEXT = Context()

# --------------------------------------------------------------------------------------
# Amounts
# --------------------------------------------------------------------------------------



def _any_case(words: list[str]) -> str:
    """ "rb" -> "[Rr][Bb]": re.IGNORECASE makes the token regex twice as slow, and only
    these few words need it."""
    return "|".join("".join(f"[{c.upper()}{c}]" for c in w) for w in words)


# Longest first, so that "ribu" is not read as "rb" and a stray "u".
_UNIT_PATTERN = _any_case(sorted(UNITS, key=len, reverse=True))
# The pieces of an amount: currency, digits with separators, unit, a ",-" tail.
_AMOUNT_PARTS = (
    r"(?P<rp>(?:" + _any_case(["rp", "idr"]) + r")\.?[ \t]*)?"
    r"(?P<digits>[0-9](?:[0-9.,]*[0-9])?)"
    r"(?:[ \t]*(?P<unit>" + _UNIT_PATTERN + r")(?![^\W_])|(?P<mega>M)(?![^\W_])|(?![^\W_]))"
    r"(?P<tail>,-+|\.-+)?"
)
_AMOUNT_RE = re.compile(_AMOUNT_PARTS)
_PLAIN_RE = re.compile(r"0|[1-9][0-9]*")
_DECIMAL_RE = re.compile(r"(0|[1-9][0-9]*)[.,]([0-9]{1,3})")
# "150.000", "1.500.000,00", and "500,00" (cents after an ungrouped number).
# "150.000", "1.500.000,00", "50.000.00" (cents after groups of three are no group), and
# "500,00" (cents after an ungrouped number).
_GROUPED_DOT_RE = re.compile(
    r"([1-9][0-9]{0,2}(?:\.[0-9]{3})+|(?:[1-9][0-9]*|0)(?=,))(?:[,.]([0-9]{1,2}))?")
_GROUPED_COMMA_RE = re.compile(r"([1-9][0-9]{0,2}(?:,[0-9]{3})+)(?:\.([0-9]{1,2}))?")
_MIN_PLAIN_AMOUNT = 100   # a bare number below this in the amount slot is not a price
_MAX_DIGITS = 15   # longer runs are account or card numbers, and int() has a limit


def _number_value(digits: str, unit: str | None) -> int | None:
    """The rupiah value of `digits` (with "." and "," in them) times `unit`, or None."""
    if len(digits) > _MAX_DIGITS + 6:
        return None
    if _PLAIN_RE.fullmatch(digits):
        return int(digits) * UNITS[unit] if unit else int(digits)
    if unit:
        # With a unit one separator is a decimal mark either way: "1,5jt", "1.5 juta".
        m = _DECIMAL_RE.fullmatch(digits)
        if not m:
            return None
        whole, frac = m.groups()
        if len(frac) == 3 and UNITS[unit] == 1_000:
            return int(whole + frac) * 1_000    # "1.250rb": thousands grouped, not decimals
        scaled = int(whole + frac) * UNITS[unit]
        denominator = 10 ** len(frac)
        return scaled // denominator if scaled % denominator == 0 else None
    for pattern, group_sep in ((_GROUPED_DOT_RE, "."), (_GROUPED_COMMA_RE, ",")):
        m = pattern.fullmatch(digits)
        if m:
            cents = m.group(2)
            if cents and int(cents):
                return None   # rupiah have no cents worth keeping; let a person look
            return int(m.group(1).replace(group_sep, ""))
    return None


def parse_amount(text: str) -> int | None:
    """Integer rupiah for an amount written as customers do ("Rp 150.000", "1,5jt"), else None."""
    if not isinstance(text, str):
        return None
    m = _AMOUNT_RE.fullmatch(text.strip())
    if not m:
        return None
    unit = m.group("unit") or ("million" if m.group("mega") else None)
    return _number_value(m.group("digits"), unit.lower() if unit else None)


def format_rupiah(n: int) -> str:
    """Rupiah as written in replies: 51037 -> "Rp 51.037"."""
    sign = "-" if n < 0 else ""
    return f"{sign}Rp {abs(int(n)):,}".replace(",", ".")


# --------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------

WORD, NUM, MONEY, PHONE = "word", "num", "money", "phone"

_TOKEN_RE = re.compile(
    # Indonesian mobile numbers, with or without +62 and dashes: never money.
    r"(?P<phone>(?:\+62|62|0)[ -]?8[0-9]{2}(?:[ -]?[0-9]{3,4}){2}[0-9]{0,2}(?![0-9]))"
    r"|" + _AMOUNT_PARTS +
    r"|(?P<word>[^\W_]+)"
)


class _Tok:
    """One token; `low` is the canonical lower-case word (ABBREVIATIONS applied)."""
    __slots__ = ("kind", "raw", "low", "start", "end", "value", "digits")

    def __init__(self, kind, raw, low, start, end, value=None, digits=None):
        self.kind = kind
        self.raw = raw
        self.low = low
        self.start = start
        self.end = end
        self.value = value      # int for NUM and MONEY
        self.digits = digits    # the digits as written, for "xl 25" -> XL25

    def __repr__(self):  # for test failure messages
        return f"<{self.kind} {self.raw!r}>"


# "dikirim2", "barang2": a trailing 2 doubles the word (dikirim-dikirim).
_DOUBLED_RE = re.compile(r"([a-z]{3,})2")


@functools.lru_cache(maxsize=8192)   # customers reuse a small vocabulary; saves ~10%
def _canonical_word(low: str) -> str:
    doubled = _DOUBLED_RE.fullmatch(low)
    if doubled:
        low = doubled.group(1)
    low = ABBREVIATIONS.get(low, low)
    if low in _VOCABULARY or len(low) < _MIN_TYPO_LEN or not low.isalpha():
        return low
    respelled = _respelled(low)
    return ABBREVIATIONS.get(respelled, respelled) if respelled else low


# Typos: a word the reader does not know, one slip away from a word it does ("samppai",
# "berfunngsi", "hilag", "pesna"), is read as that word. The vocabulary is every word the
# tables and patterns of this module use; a word of ordinary chat that is one slip from
# one of them is listed in _NOT_TYPOS so it keeps its own meaning.
_MIN_TYPO_LEN = 5
_NOT_TYPOS = frozenset("""
    border orders ordered kirimi bayaran sampah datar kembalian kabari living making
    spending sample pantas kertas
""".split())


def _respelled(low: str) -> str | None:
    if low in _NOT_TYPOS:
        return None
    squeezed = _REPEATS_RE.sub(r"\1", low)     # "berhhenti", "mingggu"
    if squeezed in _TARGETS:
        return squeezed
    if low in _MISSING_LETTER:                  # "hilag" -> "hilang"
        return _MISSING_LETTER[low]
    for i in range(1, len(low)):   # a first letter is seldom mistyped: "tempat" is no "empat"
        extra = low[:i] + low[i + 1:]           # "samppai", "berfunngsi"
        if extra in _TARGETS and len(extra) >= _MIN_TYPO_LEN:
            return extra
        swapped = low[:i] + low[i + 1:i + 2] + low[i] + low[i + 2:]   # "pesna"
        if swapped != low and swapped in _TARGETS:
            return swapped
    return None


_REPEATS_RE = re.compile(r"([a-z])\1+")
_CODE_TIMES_RE = re.compile(r"([A-Za-z]{1,8}[0-9]{1,5})([xX][0-9]{1,3})")


def _tokenise(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    in_words = False
    for m in _TOKEN_RE.finditer(text):
        group = m.lastgroup     # "word", "phone", or a part of an amount
        if group == "word":
            word = m.group()
            times = _CODE_TIMES_RE.fullmatch(word)
            if times:     # "xl25x3": the code, then "x3" (a quantity)
                cut = m.start() + times.end(1)
                toks.append(_Tok(WORD, times.group(1), _canonical_word(times.group(1).lower()),
                                 m.start(), cut))
                toks.append(_Tok(WORD, times.group(2), times.group(2).lower(), cut, m.end()))
                continue
            low = _canonical_word(word.lower())
            if low == "tidak" and toks and toks[-1].low == "sudah" and word.lower() == "tak":
                low = "saya"    # Javanese "wis tak transfer": "I have transferred"
            in_words = in_words or low in _SCALE_WORDS
            if toks and toks[-1].low == "di" and "di" + low in _VOCABULARY \
                    and toks[-1].end < m.start():
                # "sudah di kirim blm", "di proses": the passive prefix written apart.
                prev = toks.pop()
                low = "di" + low
                word = text[prev.start:m.end()]
                toks.append(_Tok(WORD, word, low, prev.start, m.end()))
                continue
            toks.append(_Tok(WORD, word, low, m.start(), m.end()))
        elif group == "phone":
            toks.append(_Tok(PHONE, m.group(), "PHONE", m.start(), m.end()))
        else:
            _number_tokens(text, m, toks)
            _join_compound_amount(text, toks)
    if in_words:
        _join_amount_in_words(text, toks)
    return toks


# Amounts written in words: "seratus lima puluh ribu", "dua juta lima ratus ribu", and
# in Javanese (ngoko and krama: "satus seket ewu", "kalih atus sekawan dasa ewu"),
# Sundanese and Minang ("limo ratuih ribu"). Javanese joins a digit to what follows it
# ("telung atus", "rongatus"), so those forms are digits too.
_DIGIT_WORDS = {
    "satu": 1, "dua": 2, "tiga": 3, "empat": 4, "lima": 5, "enam": 6, "tujuh": 7,
    "delapan": 8, "sembilan": 9, "sepuluh": 10, "sebelas": 11,
    "siji": 1, "setunggal": 1, "loro": 2, "rong": 2, "kalih": 2, "telu": 3, "telung": 3,
    "tigang": 3, "papat": 4, "patang": 4, "sekawan": 4, "limang": 5, "gangsal": 5,
    "enem": 6, "nem": 6, "pitu": 7, "pitung": 7, "wolu": 8, "wolung": 8, "sanga": 9,
    "sangang": 9, "sedasa": 10,
    "hiji": 1, "tilu": 3, "opat": 4, "genep": 6, "dalapan": 8, "salapan": 9, "sapuluh": 10,
    "duo": 2, "tigo": 3, "ampek": 4, "limo": 5, "anam": 6, "tujuah": 7, "sambilan": 9,
    "settong": 1, "tello": 3, "lema": 5, "ennem": 6, "petto": 7, "ballu": 8, "sapolo": 10}
_TENS_WORDS = {"puluh", "dasa", "polo"}
_HUNDREDS_WORDS = {"ratus", "atus", "ratuih", "ratos"}
# Words that are a whole group by themselves: a hundred, 25, 50, 60, 200.
_GROUP_WORDS = {"seratus": 100, "satus": 100, "saratus": 100, "saratuih": 100, "saratos": 100,
                "rongatus": 200, "selawe": 25, "selangkung": 25, "seket": 50, "sewidak": 60}
_SE_WORDS = {"seribu": 1_000, "sewu": 1_000, "sarebu": 1_000, "saribu": 1_000,
             "sejuta": 1_000_000, "sayuta": 1_000_000, **SLANG_SUMS}
_SCALE_WORDS = {"ribu": 1_000, "rebu": 1_000, "ewu": 1_000, "ebu": 1_000, "rb": 1_000,
                "juta": 1_000_000, "yuta": 1_000_000, "jt": 1_000_000, **_SE_WORDS}
_NUMBER_WORDS = (frozenset(_DIGIT_WORDS) | frozenset(_GROUP_WORDS) | frozenset(_SCALE_WORDS)
                 | _TENS_WORDS | _HUNDREDS_WORDS | {"belas", "setengah"})


def _words_value(words: list[str]) -> int | None:
    """The value of number words, or None when they make no number."""
    total = group = cur = 0
    half = False    # "setengah juta": half of the scale that follows
    for w in words:
        if w in _DIGIT_WORDS:
            if cur:
                return None
            cur = _DIGIT_WORDS[w]
        elif w == "belas" and 1 <= cur <= 9:
            cur += 10
        elif w in _TENS_WORDS and 1 <= cur <= 9:
            group, cur = group + cur * 10, 0
        elif w in _HUNDREDS_WORDS and 1 <= cur <= 9:
            group, cur = group + cur * 100, 0
        elif w in _GROUP_WORDS:
            group += _GROUP_WORDS[w]
        elif w == "setengah" and not (group or cur or half):
            half = True
        elif w in _SE_WORDS:
            if group or cur or half:
                return None
            total += _SE_WORDS[w]
        elif w in _SCALE_WORDS:
            if half and not (group or cur):
                total, half = total + _SCALE_WORDS[w] // 2, False
                continue
            if half or not (group or cur):
                return None
            total, group, cur = total + (group + cur) * _SCALE_WORDS[w], 0, 0
        else:
            return None
    return None if half else total + group + cur


def _number_word(t: _Tok) -> str | None:
    """The number word `t` is, as written where the typo reading took it for another
    ("satus" is Javanese 100 before "ewu", and a typo of "status" elsewhere)."""
    if t.low in _NUMBER_WORDS:
        return t.low
    raw = t.raw.lower()
    return raw if raw in _NUMBER_WORDS else None


def _join_amount_in_words(text: str, toks: list[_Tok]) -> None:
    """Runs of number words with "ribu" or "juta" in them become one money token."""
    i = 0
    while i < len(toks):
        j = i
        while j < len(toks) and toks[j].kind == WORD and _number_word(toks[j]) is not None:
            j += 1
        words = [_number_word(t) for t in toks[i:j]]
        if j > i and any(w in _SCALE_WORDS for w in words):
            value = _words_value(words)
            if value:
                a, b = toks[i], toks[j - 1]
                toks[i:j] = [_Tok(MONEY, text[a.start:b.end], "AMT", a.start, b.end, value,
                                  str(value))]
        i += 1


_MILLIONS_RE = re.compile(r"(?:jt|juta|jta|million|mio|mil)$", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"(?:rb|ribu|rebu|rbu|ewu|ebu|k|thousand)$", re.IGNORECASE)


def _join_compound_amount(text: str, toks: list[_Tok]) -> None:
    """"1 juta 250 ribu" is one amount: the millions and the thousands after them."""
    if len(toks) < 2:
        return
    a, b = toks[-2], toks[-1]
    if (a.kind == MONEY and b.kind == MONEY and _MILLIONS_RE.search(a.raw)
            and _THOUSANDS_RE.search(b.raw) and not b.raw[:1].isalpha()
            and 0 < b.value < 1_000_000 and a.value % 1_000_000 == 0
            and not text[a.end:b.start].strip()):
        toks[-2:] = [_Tok(MONEY, text[a.start:b.end], "AMT", a.start, b.end,
                          a.value + b.value, a.digits)]
    elif (a.kind == MONEY and b.kind == NUM and _MILLIONS_RE.search(a.raw)
            and b.value is not None and 100 <= b.value < 1_000
            and a.value % 1_000_000 == 0 and not text[a.end:b.start].strip()):
        # "2 jt 500": the thousands after the millions, without their unit.
        toks[-2:] = [_Tok(MONEY, text[a.start:b.end], "AMT", a.start, b.end,
                          a.value + b.value * 1_000, a.digits)]


def _plain_value(digits: str) -> int | None:
    return int(digits) if len(digits) <= _MAX_DIGITS else None


def _number_tokens(text: str, m: re.Match, toks: list[_Tok]) -> None:
    """One money or number token; or, when the separators make no amount ("7.200000",
    "bayar.8.55.000"), cut at the first separator, which then was a field separator."""
    rp, unit, tail = m.group("rp"), m.group("unit"), m.group("tail")
    unit = unit.lower() if unit else ("million" if m.group("mega") else None)
    digits, pos, start, end = m.group("digits"), m.start("digits"), m.start(), m.end()
    while True:
        value = _number_value(digits, unit)
        if value is not None:
            money = bool(rp or unit or tail) or not digits.isdigit()
            toks.append(_Tok(MONEY if money else NUM, text[start:end], "AMT" if money else "NUM",
                             start, end, value, digits))
            return
        cut = min((i for i in (digits.find("."), digits.find(",")) if i >= 0), default=-1)
        if cut < 0:
            # Digits that make no amount: a leading zero or too long.
            toks.append(_Tok(NUM, digits, "NUM", pos, pos + len(digits),
                             _plain_value(digits), digits))
            return
        head = digits[:cut]
        toks.append(_Tok(NUM, head, "NUM", pos, pos + cut, _plain_value(head), head))
        # Past every separator ("1.,5"); the regex ends `digits` with a digit, so the
        # rest is never empty and starts with one.
        nxt = cut + 1
        while digits[nxt] in ".,":
            nxt += 1
        digits, pos, rp = digits[nxt:], pos + nxt, None
        start = pos


def _canonical(toks: list[_Tok]) -> str:
    return " ".join([t.low for t in toks])


def _raw_between(text: str, first: _Tok, last: _Tok) -> str:
    return text[first.start:last.end]


_NAME_GAP_RE = re.compile(r"[\s#,;:_]+")


def _tidy(raw: str) -> str:
    """Field separators inside a name or note become single spaces."""
    return _NAME_GAP_RE.sub(" ", raw).strip(" .,-#:;")


# --------------------------------------------------------------------------------------
# Small predicates
# --------------------------------------------------------------------------------------

def _is_question(text: str, canon: str) -> bool:
    return "?" in text or _QUESTION_RE.search(canon) is not None


# Words in an order that ask nothing of the offer: "buat stok warung", "total berapa
# nanti kabarin".
_ORDER_ASIDE_RE = re.compile(r"\b(?:untuk|buat) (?:stok|stock)\b|\btotal(?:nya)? berapa\b"
                             r"|\bberapa total(?:nya)?\b")


def _asks(text: str, canon: str) -> bool:
    """A question other than a polite request to order ("can I order xl25 2?")."""
    canon = _ORDER_ASIDE_RE.sub(" ", canon)
    if _OFFER_QUESTION_RE.search(canon):
        return True
    rest = _REQUEST_RE.sub(" ", canon)
    if rest != canon:
        return _QUESTION_RE.search(rest) is not None
    return _is_question(text, canon)


def _is_dashed(text: str, t: _Tok) -> bool:
    """Part of a number written with dashes or slashes (021-555-1234, 12/05)."""
    before = text[t.start - 2:t.start] if t.start >= 2 else ""
    after = text[t.end:t.end + 2]
    return ((len(before) == 2 and before[1] in "-/" and before[0].isdigit())
            or (len(after) == 2 and after[0] in "-/" and after[1].isdigit()))


def _is_prefixed(text: str, t: _Tok) -> bool:
    """A number glued to letters by "-" or "#": "ORD-5521", "T-9001", "INV#12"."""
    return t.start >= 2 and text[t.start - 1] in "-#" and text[t.start - 2].isalpha()


_TOTAL_WORDS = frozenset("total totalnya sebesar senilai nominal jumlahnya semua".split())


def _free_amount(text: str, toks: list[_Tok]) -> _Tok | None:
    """The money in free text: an amount after "total"/"sebesar" ("tf 2x 50rb, total
    100rb"), else the first written amount, or a bare number that can only be money."""
    for i in range(1, len(toks)):
        if toks[i].kind == MONEY and toks[i - 1].low in _TOTAL_WORDS:
            return toks[i]
    money = [t for t in toks if t.kind == MONEY]
    if money:
        return _plus_joined(text, money)
    for i in range(len(toks)):
        t = toks[i]
        if (t.kind == NUM and t.raw[0] != "0" and 4 <= len(t.raw) <= 9
                and not _is_dashed(text, t) and not _is_prefixed(text, t)
                and not (i + 1 < len(toks) and toks[i + 1].low in NOT_MONEY_AFTER)
                and not (i > 0 and toks[i - 1].low in NOT_MONEY_BEFORE)):
            return t
    return None


# "ovo 200rb + dana 300rb": one payment in parts; a "+" before a digit is a phone's.
_PLUS_RE = re.compile(r"\+(?!\d)")


def _after(toks: list[_Tok], tok: _Tok) -> int:
    """The index of the first token after `tok` (which may span several, see below)."""
    return next((i for i, t in enumerate(toks) if t.start >= tok.end), len(toks))


def _plus_joined(text: str, money: list[_Tok]) -> _Tok:
    """The first amount, or the sum of it and the amounts "+" joins to it."""
    last, total = money[0], money[0].value
    for t in money[1:]:
        gap = text[last.end:t.start]
        if len(gap) > 30 or not _PLUS_RE.search(gap):
            break
        last, total = t, total + t.value
    if last is money[0]:
        return last
    return _Tok(MONEY, text[money[0].start:last.end], "AMT", money[0].start, last.end, total)


def _find_bank(toks: list[_Tok], start: int, amount: _Tok | None = None):
    """(canonical bank, index, tokens used) of the first bank named from `start`."""
    for i in range(start, len(toks)):
        t = toks[i]
        if t.kind != WORD:
            continue
        if i + 1 < len(toks):
            pair = BANK_PAIRS.get((t.low, toks[i + 1].low))
            if pair:
                return pair, i, 2
        bank = BANK_ALIASES.get(t.low)
        if bank is None:
            continue
        if bank == "DANA" and not _names_dana_wallet(toks, i, amount):
            continue
        return bank, i, 1
    return None, -1, 0


def _names_dana_wallet(toks: list[_Tok], i: int, amount: _Tok | None) -> bool:
    """Whether "dana" at i is the wallet: "ke dana", "DANA", next to a wallet's phone
    number, or in the bank slot right after the amount."""
    t = toks[i]
    prev = toks[i - 1] if i > 0 else None
    nxt = toks[i + 1] if i + 1 < len(toks) else None
    return (t.raw == "DANA"
            or (prev is not None and (prev.low in DANA_PREPOSITIONS or prev is amount
                                      or prev.kind == PHONE))
            or (nxt is not None and nxt.kind == PHONE))


# Sundanese "abdi" is "I", and also a man's name: capitalised after "nama", a name.
_PRONOUN_NAMES = frozenset({"abdi"})


def _is_name_word(t: _Tok, first: bool) -> bool:
    if first and t.low in NAME_TITLES:
        return True     # "a.n. Pak Budi"
    if t.raw[:1].isupper() and t.raw.lower() in _PRONOUN_NAMES:
        return True
    return (t.kind == WORD and t.raw.isalpha() and t.low not in NAME_STOP
            and t.low not in BANK_ALIASES)


def _read_name(text: str, toks: list[_Tok], i: int) -> str | None:
    """A person's name starting at token i (after "a.n.", "atas nama", "dari"), or None."""
    n = len(toks)
    while i < n and toks[i].kind == WORD:
        if toks[i].low == "a" and i + 1 < n and toks[i + 1].low == "n":
            i += 2          # "a.n." tokenises as "a", "n"
        elif toks[i].low in NAME_MARKERS:
            i += 1
        else:
            break
    words = []
    while i < n and len(words) < 5 and _is_name_word(toks[i], first=not words):
        words.append(toks[i])
        i += 1
    if not words or all(w.low in NAME_TITLES for w in words):
        return None
    return _tidy(_raw_between(text, words[0], words[-1]))


def _marked_name(text: str, toks: list[_Tok]) -> str | None:
    """A payer's name after "a.n." or "atas nama" anywhere in the text."""
    for i, t in enumerate(toks):
        if t.kind != WORD:
            continue
        if (t.low == "an" or (t.low == "a" and i + 1 < len(toks) and toks[i + 1].low == "n")
                or (t.low == "atas" and i + 1 < len(toks) and toks[i + 1].low == "nama")):
            return _read_name(text, toks, i)
    return None


def _marked_reference(text: str, toks: list[_Tok]) -> str | None:
    """An order number in free text: "order 12", "no. 12", "#12"."""
    for i, t in enumerate(toks):
        if t.kind != NUM or len(t.raw) > 12:
            continue
        if ((i > 0 and toks[i - 1].low in REFERENCE_MARKERS) or text[t.start - 1:t.start] == "#"
                or (_is_prefixed(text, t) and i > 0 and len(toks[i - 1].raw) <= 4)):
            return t.raw
    return None


# --------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------

_CODE_SHAPE_RE = re.compile(r"[A-Z]{1,8}[0-9]{1,5}[A-Z]{0,2}")
_QTY_WORD_RE = re.compile(r"x?([0-9]{1,4})(?:x|pcs|pc|bh|buah|lbr|lembar|biji)?")

_UNKNOWN = "?"   # _product_at's marker for a code-shaped token the catalogue lacks


class ProductNames:
    """The shop's product names as the reader matches them, made by product_names():
    first word -> [(all words, code)], longest name first."""
    __slots__ = ("by_first_word",)

    def __init__(self, by_first_word: dict[str, list[tuple[tuple[str, ...], str]]]):
        self.by_first_word = by_first_word

    def __bool__(self) -> bool:
        return bool(self.by_first_word)

    def __repr__(self) -> str:
        return f"<ProductNames of {len(self.by_first_word)} first words>"


def product_names(products) -> ProductNames:
    """Context.product_names for (code, name) pairs: each name as its lower-case words,
    also without a generic first word ("Voucher XL 25K" is also "xl 25k"), and the first
    words of a name that no other product shares ("mouse logitech" for "Mouse Logitech
    M170"; one word only if it is no word the reader knows). Done once per catalogue by
    the caller, not per text."""
    full: dict[tuple[str, ...], str] = {}
    for code, name in products:
        words = tuple(t.raw.lower() for t in _tokenise(name or ""))
        while words:
            if not (len(words) == 1 and words[0] in _VOCABULARY):
                full.setdefault(words, code.upper())
            if words[0] not in ORDER_FILLERS:
                break
            words = words[1:]
    prefixes: dict[tuple[str, ...], set[str]] = {}
    for words, code in full.items():
        for n in range(1, len(words)):
            prefixes.setdefault(words[:n], set()).add(code)
    names = dict(full)
    for words, codes in prefixes.items():
        if (len(codes) == 1 and words not in names and words[0] not in ORDER_FILLERS
                and (len(words) > 1 or (len(words[0]) >= 4 and words[0].isalpha()
                                        and words[0] not in _VOCABULARY))):
            names[words] = next(iter(codes))
    by_first_word: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for words, code in sorted(names.items(), key=lambda item: (-len(item[0]), item[0])):
        by_first_word.setdefault(words[0], []).append((words, code))
    return ProductNames(by_first_word)


def _named_product(toks: list[_Tok], i: int, names: ProductNames) -> tuple[str | None, int]:
    """(code, tokens used) of a product named by its name at token i, longest name first."""
    for words, code in names.by_first_word.get(toks[i].raw.lower(), ()):
        n = len(words)
        if all(i + j < len(toks) and toks[i + j].raw.lower() == words[j] for j in range(1, n)):
            return code, n
    return None, 0


def _product_at(toks: list[_Tok], i: int, ctx: Context) -> tuple[str | None, int]:
    """(code, tokens used) of a product named at token i; code is _UNKNOWN for a
    code-looking word missing from the catalogue, None when nothing looks like one."""
    t = toks[i]
    if ctx.product_names and t.kind == WORD:
        code, used = _named_product(toks, i, ctx.product_names)
        if code:
            return code, used
    if t.kind != WORD:
        return None, 0
    up = t.raw.upper()
    codes = ctx.product_codes
    if codes:
        if up in codes:
            return up, 1
        # Brand and denomination written apart: "xl 25", "xl 25rb", "XL-25".
        if i + 1 < len(toks) and toks[i + 1].kind in (NUM, MONEY):
            digits = toks[i + 1].digits
            if digits and digits.isdigit() and up + digits in codes:
                return up + digits, 2
        return (_UNKNOWN, 1) if _CODE_SHAPE_RE.fullmatch(up) else (None, 0)
    # Without a catalogue, anything shaped like XL25 or TSEL50 is taken as a code.
    return (up, 1) if _CODE_SHAPE_RE.fullmatch(up) else (None, 0)


def _quantity(t: _Tok) -> int | None:
    if t.kind == NUM:
        return t.value if len(t.raw) <= 4 else None
    if t.kind == WORD:
        if t.low in QTY_WORDS:
            return QTY_WORDS[t.low]
        m = _QTY_WORD_RE.fullmatch(t.low)
        if m:
            return int(m.group(1))
    return None


def _trimmed_note(text: str, toks: list[_Tok], i: int, j: int) -> str | None:
    """The raw text of tokens i..j-1 without polite words at either end."""
    while i < j and toks[i].low in POLITE:
        i += 1
    while j > i and toks[j - 1].low in POLITE:
        j -= 1
    if i >= j:
        return None
    return text[toks[i].start:toks[j - 1].end].strip() or None


def _read_items(text: str, toks: list[_Tok], i: int, ctx: Context):
    """(items, note, problems) from the tokens after an order keyword."""
    n = len(toks)
    items: list[Item] = []
    problems: list[str] = []
    while i < n and toks[i].low in ORDER_FILLERS:
        i += 1
    note_from = i
    while i < n:
        # A quantity first: "2 xl25", "2x tsel50".
        q = _quantity(toks[i])
        if q is not None and i + 1 < n:
            code, used = _product_at(toks, i + 1, ctx)
            if code:
                _add_item(items, problems, code, q)
                i += 1 + used
                note_from = i = _skip_connector(toks, i, ctx)
                continue
        code, used = _product_at(toks, i, ctx)
        if not code:
            break
        i += used
        k = i
        while k < n and toks[k].kind == WORD and toks[k].low in QTY_PREFIX:
            k += 1
        q = _quantity(toks[k]) if k < n else None
        if q is None:
            problems.append("no_quantity")
            q = 1   # the item is kept so that a person sees what was asked for
        else:
            i = k + 1
            if i < n and toks[i].low in QTY_UNITS:
                i += 1
        _add_item(items, problems, code, q)
        note_from = i = _skip_connector(toks, i, ctx)
    if not items and not problems:
        problems.append("unknown_product")
    return tuple(items), _trimmed_note(text, toks, note_from, n), problems


def _add_item(items: list[Item], problems: list[str], code: str, quantity: int) -> None:
    if code == _UNKNOWN:
        problems.append("unknown_product")
    elif not 1 <= quantity <= 999:
        problems.append("bad_quantity")
    else:
        items.append(Item(code, quantity))


def _skip_connector(toks: list[_Tok], i: int, ctx: Context) -> int:
    """Past a "dan"/"," joining two items, when another item follows."""
    if i + 1 < len(toks) and toks[i].low in ITEM_CONNECTORS:
        if _product_at(toks, i + 1, ctx)[0] or _quantity(toks[i + 1]) is not None:
            return i + 1
    return i


# --------------------------------------------------------------------------------------
# Keyword readers. Each returns a Reading, or None when the text only starts with the
# word and is better read as free text ("pesan saya belum sampai").
# --------------------------------------------------------------------------------------

def _read_order(text, toks, canon, k, ctx, hard):
    rest = toks[k + 1:]
    if not rest or rest[0].low in PRONOUNS:
        return None
    items, note, problems = _read_items(text, toks, k + 1, ctx)
    if not items:
        free = _read_free(text, toks, canon, ctx)
        if free.intent in ("complaint", "payment", "status"):
            return free
        # An order keyword with a number in it is an order a person must resolve;
        # with no number at all it is chat ("beli dimana kak?").
        if (not hard or not any(t.kind in (NUM, MONEY) for t in rest)
                or _CANCEL_RE.search(canon)):
            return None     # "order 20 bisa dibatalkan?" is for a person, not a new order
    elif not hard and (_asks(text, canon) or _COMPLAINT_RE.search(canon)):
        return None
    return Reading("order", text, keyword=toks[k].raw.upper(), items=items, note=note,
                   problems=tuple(dict.fromkeys(problems)))


def _read_bare_order(text, toks, canon, k, ctx):
    """An order without its keyword, products first: "minta xl25 2 + tsel50 1 ya"."""
    while k + 1 < len(toks) and toks[k].low in ORDER_FILLERS and not _product_at(toks, k, ctx)[0]:
        k += 1      # "pulsa xl25 2"
    code, _ = _product_at(toks, k, ctx)
    if (code is None or code == _UNKNOWN) and k + 1 < len(toks) and _quantity(toks[k]):
        code, _ = _product_at(toks, k + 1, ctx)    # "minta 2 xl25"
    if code is None or code == _UNKNOWN:
        return None
    items, note, problems = _read_items(text, toks, k, ctx)
    if not items or problems or _asks(text, canon) or _COMPLAINT_RE.search(canon):
        return None
    return Reading("order", text, items=items, note=note)


def _read_payment(text, toks, canon, k, ctx, hard):
    kw = toks[k]
    money = [t for t in toks[k + 1:] if t.kind == MONEY]
    plain = [t for t in toks[k + 1:] if t.kind == NUM and not _is_dashed(text, t)]
    amount_tok = _plus_joined(text, money) if money else None
    order_tok = None
    if amount_tok is not None:
        # The order number comes before the amount, or after it with a marker
        # ("bayar 150rb order 7"); other numbers after it are dates and times.
        before = [t for t in plain if t.start < amount_tok.start]
        marked = [t for j, t in enumerate(toks) if t.kind == NUM and j > k + 1
                  and t.start > amount_tok.start and toks[j - 1].low in REFERENCE_MARKERS]
        order_tok = (before or marked or [None])[0]
    elif len(plain) >= 2:
        # "BAYAR 7 200000"; a second number under Rp 100 is no price ("BAYAR 7 50").
        order_tok = plain[0]
        amount_tok = plain[1] if (plain[1].value or 0) >= _MIN_PLAIN_AMOUNT else None
    elif plain:
        only = plain[0]
        # One bare number: an order number if the sender has that order, it is too
        # small to be money or it follows a marker ("BAYAR INV-3321 BCA"), else money.
        if (only.raw in ctx.open_order_numbers or only.raw[0] == "0"
                or only.value is None or only.value < 1000
                or toks[toks.index(only) - 1].low in REFERENCE_MARKERS):
            order_tok = only
        else:
            amount_tok = only
    amount = amount_tok.value if amount_tok is not None else None
    order_number = order_tok.raw if order_tok is not None else None
    if order_number is None and amount_tok is not None and amount_tok.kind == MONEY:
        order_number, amount = _split_field_separator(text, kw, amount_tok) or (None, amount)
    question = _is_question(text, canon)
    if amount is None and (order_number is None or question):
        return None     # "bayar pakai ovo bisa?" is a question, not a confirmation
    # After a greeting the keyword may be a plain verb ("min, bayar pakai apa?"): only a
    # text with an amount that is no plan, condition or complaint is a confirmation.
    if not hard and (amount is None or (question and order_number is None)
                     or _CONDITIONAL_RE.search(canon) or _COMPLAINT_RE.search(canon)):
        return None
    bank, bank_at, bank_len = _find_bank(toks, k + 1, amount_tok)
    payer = _marked_name(text, toks)
    if payer is None:
        if bank is not None:
            payer = _read_name(text, toks, bank_at + bank_len)
        elif amount_tok is not None:
            payer = _read_name(text, toks, _after(toks, amount_tok))
    problems = []
    if amount is None:
        problems.append("no_amount")
    if order_number is None:
        problems.append("no_reference")
    return Reading("payment", text, keyword=kw.raw.upper(), order_number=order_number,
                   amount=amount, bank=bank, payer_name=payer, problems=tuple(problems))


def _split_field_separator(text, kw, amount_tok):
    """(order number, amount) for "BAYAR.8.150rb" or "BAYAR,8,200,000", read as one
    amount: the sender puts "." or "," between fields, so the amount's first group is
    the order number. None when the text does not look like that."""
    sep = text[kw.end:].lstrip(" ")[:1]
    digits = amount_tok.digits or ""
    if sep not in (".", ",") or sep not in digits or not amount_tok.raw[:1].isdigit():
        return None
    cut = digits.index(sep)
    rest = parse_amount(text[amount_tok.start + cut + 1:amount_tok.end])
    return (digits[:cut], rest) if rest is not None else None


_REF_WORD_RE = re.compile(r"(?:t|tk|tkt|tiket|ticket|ord|order|inv)([0-9]{1,12})")


def _reference(toks: list[_Tok], start: int) -> str | None:
    for t in toks[start:]:
        if t.kind == NUM and len(t.raw) <= 12:
            return t.raw
        if t.kind == WORD:
            m = _REF_WORD_RE.fullmatch(t.low)
            if m:
                return m.group(1)
    return None


def _read_status(text, toks, canon, k, ctx, hard):
    kw = toks[k]
    reference = _reference(toks, k + 1)
    if reference is not None:
        return Reading("status", text, keyword=kw.raw.upper(), reference=reference)
    if not hard:
        return None
    if kw.low == "status":
        return Reading("status", text, keyword="STATUS", problems=("no_reference",))
    # CEK without a number: "cek pulsa saya blm masuk" is a complaint, "cek ongkir" a
    # question; "cek status pesanan" still asks for a status.
    free = _read_free(text, toks, canon, ctx)
    if free.intent in ("other", "reply") and any(t.low in STATUS_WORDS for t in toks[k + 1:]):
        return Reading("status", text, keyword=kw.raw.upper(), problems=("no_reference",))
    return free


_NAME_PREFIX_RE = re.compile(r"^(?:(?:nama|name)(?:\s+saya)?|saya)\b[\s:#.,=-]*", re.IGNORECASE)


def _read_register(text, toks, canon, k, ctx, hard):
    if not hard:
        return None     # "mau daftar jadi reseller" is a question for a person
    kw = toks[k]
    rest = toks[k + 1:]
    keyword = kw.raw.upper()
    if not rest or (len(rest) == 1 and rest[0].low in REG_SERVICES):
        return Reading("start", text, keyword=keyword)
    if kw.low == "daftar" and rest[0].low in DAFTAR_LIST_WORDS:
        return None     # "daftar harga": the price list
    name = _NAME_PREFIX_RE.sub("", _tidy(text[kw.end:]))
    name = _tidy(name)
    if not any(c.isalpha() for c in name):
        return Reading("register", text, keyword=keyword, problems=("no_name",))
    return Reading("register", text, keyword=keyword, name=name)


def _only_polite(toks: list[_Tok], start: int) -> bool:
    return all(t.kind == WORD and t.low in POLITE for t in toks[start:])


# What a HELP may name and still ask for the help text: "HELP ORDER", "bantuan cara bayar".
_HELP_TOPICS = POLITE | frozenset("""
    order pesan beli bayar payment pay status cek daftar register reg stop komplain
    complaint cara caranya sms format perintah kode command commands menu saya please
""".split())


def _read_help(text, toks, canon, k, ctx, hard):
    # "INFO" alone asks for the help text; "info harga xl25?" is a question for a person.
    if _only_polite(toks, k + 1) or (hard and toks[k].low != "info" and all(
            t.kind == WORD and t.low in _HELP_TOPICS for t in toks[k + 1:])):
        return Reading("help", text, keyword=toks[k].raw.upper())
    return None


_BROADCAST_WORDS = frozenset("sms promo pesan broadcast bc iklan kirim kirimi langganan "
                             "sending messages texts".split())


def _read_stop(text, toks, canon, k, ctx, hard):
    # Opting out is honoured whatever follows the keyword at the start of a text; after
    # a greeting only when the rest is about the messages.
    if (hard or toks[k].low in ("unsubscribe", "unreg") or _only_polite(toks, k + 1)
            or any(t.low in _BROADCAST_WORDS for t in toks[k + 1:])):
        return Reading("stop", text, keyword=toks[k].raw.upper())
    return None


def _read_start(text, toks, canon, k, ctx, hard):
    # START opens a text as a keyword; MULAI and LANGGANAN ("subscribe") are also words
    # of sentences ("mulai besok saya transfer"), so they count alone only.
    if (hard and toks[k].low == "start") or _only_polite(toks, k + 1):
        return Reading("start", text, keyword=toks[k].raw.upper())
    return None


def _read_complaint(text, toks, canon, k, ctx, hard):
    body = text[toks[k].end:].lstrip(" \t\r\n#:.,;-=>")
    body = body.strip()
    return Reading("complaint", body, keyword=toks[k].raw.upper(),
                   problems=() if body else ("no_text",))


# GARANSI <serial> [text]: a serial is 4..40 letters, digits, "-" and "/" (the field
# separators " ", "#", "," and "." end it).
_SERIAL_RE = re.compile(r"[A-Za-z0-9/-]{4,40}")
_SERIAL_FIELD_RE = re.compile(r"[\s#,.:;]*([^\s#,.:;]*)")


def _read_warranty(text, toks, canon, k, ctx, hard):
    kw = toks[k]
    m = _SERIAL_FIELD_RE.match(text, kw.end)
    field = m.group(1)
    rest = text[m.end():].lstrip(" \t\r\n#:.,;-=>").strip() or None
    if not hard and not (field and any(c.isdigit() for c in field)):
        return None     # "min, garansinya berapa lama?" is a question for a person
    if field and not any(c.isdigit() for c in field) and _QUESTION_RE.fullmatch(
            _canonical_word(field.lower())):
        return None     # "garansi berapa bulan?" asks about the terms: no serial in it
    if not field:
        return Reading("warranty", text, keyword=kw.raw.upper(), problems=("no_serial",))
    if not _SERIAL_RE.fullmatch(field) or not any(c.isalnum() for c in field):
        return Reading("warranty", text, keyword=kw.raw.upper(), note=rest,
                       problems=("bad_serial",))
    return Reading("warranty", text, keyword=kw.raw.upper(), serial=field.upper(), note=rest)


_KEYWORD_READERS = {
    "order": _read_order, "payment": _read_payment, "status": _read_status,
    "register": _read_register, "help": _read_help, "stop": _read_stop,
    "start": _read_start, "complaint": _read_complaint, "warranty": _read_warranty,
}

# --------------------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------------------


def _fallback(text: str, ctx: Context, problems: tuple[str, ...] = ()) -> Reading:
    return Reading("reply" if ctx.has_open_ticket else "other", text, problems=problems)


def _looks_paid(text: str, canon: str, has_amount: bool) -> bool:
    """A statement that money was sent; questions, plans and conditions are not."""
    if not _PAY_VERB_RE.search(canon):
        return False
    if _NOT_PAID_RE.search(canon) or _CONDITIONAL_RE.search(canon):
        return False
    question = _is_question(text, canon)
    if _PAID_RE.search(canon):
        return has_amount or not question
    return has_amount and not question and not _FUTURE_RE.search(canon)


# "berapa biaya ganti layar retak?", "bisa servis hp mati total?": asking what the shop
# does about a fault, unless the sender blames ("kok", "kenapa", "masih", "padahal").
_OFFER_FOR_FAULT_RE = re.compile(
    r"\b(?:harga|harganya|biaya|biayanya|ongkos|tarif|price|cost|berapa"
    r"|(?:bisa|terima|menerima|ada) (?:servis|service|perbaikan|diperbaiki|dibetulkan|ganti"
    r"|diganti|repair))\b")
_BLAME_RE = re.compile(r"\b(?:kok|kenapa|mengapa|why|padahal|masih|belum|sudah|lagi|tapi)\b")


# Asking how the SMS service itself works: "cara pesan lewat sms gmn?", "kode2
# perintahnya apa aja?", "how do I order by sms?"; "cara pesan gimana?" alone may be about
# the shop, and a person answers it.
_HOW_TO_RE = re.compile(r"\b(?:cara|caranya|how|format|formatnya|contoh|contohnya)\b")
_BY_SMS_RE = re.compile(r"\b(?:sms|smsnya|text|texting|perintah|perintahnya|command|commands"
                        r"|keyword|keywords|kata kunci|layanan|layanannya|this service)\b")
_COMMANDS_RE = re.compile(r"\b(?:perintah|perintahnya|command|commands|keyword|keywords"
                          r"|kata kunci|kode sms|kode perintah|format (?:sms|pesan|order"
                          r"|pemesanan|bayar|konfirmasi|daftar|cek|status)|formatnya|petunjuk|panduan|tutorial"
                          r"|cara pakai|cara penggunaan|cara menggunakan)\b")


# "cara daftar gmn min?", "cara komplain gimana", "how do I use this number to order",
# "bantuan dong, baru pertama kali pakai": how to use the service's own features. "cara
# pesan gimana?" alone may be about the shop (a person answers it) unless it opens with
# INFO/HELP ("Info cara order").
_HOW_TO_DO_RE = re.compile(
    r"\b(?:cara|caranya)(?: untuk| buat)? (?:daftar|komplain|konfirmasi|cek|klaim|berhenti"
    r"|stop|register|registrasi|unreg)\b"
    r"|\b(?:daftar|komplain|klaim)(?:nya)? (?:caranya|bagaimana caranya)\b"
    r"|\bhow (?:do|can|to|should) (?:i |we )?(?:use|register|sign up|complain|cek|track"
    r"|confirm|unsubscribe|claim)\b"
    r"|\bformat(?:nya)? (?:sms )?(?:reg|daftar|register|komplain|keluhan|cek|status|stop"
    r"|unreg|garansi|warranty|bayar|konfirmasi|pesan|order|beli)\b"
    r"|\b(?:pertama kali|baru pertama|first time|bingung cara|bingung pakai)\b")
_HOW_TO_ORDER_RE = re.compile(r"\b(?:cara|caranya)(?: untuk| buat)? (?:pesan|order|beli|bayar)\b")


def _asks_how_to_do(text: str, canon: str) -> bool:
    opens_with_help = canon.split(" ", 1)[0] in ("info", "help", "bantuan")
    if opens_with_help and _HOW_TO_ORDER_RE.search(canon):
        return True
    if not _HOW_TO_DO_RE.search(canon):
        return False
    if _FIRST_TIME_RE.search(canon):
        # "pertama kali dinyalain, kertas nyangkut": a fault met the first time, unless
        # the text also asks how
        return not _COMPLAINT_RE.search(canon) or bool(_HOW_TO_RE.search(canon))
    return _is_question(text, canon) or opens_with_help


_FIRST_TIME_RE = re.compile(r"\b(?:pertama kali|baru pertama|first time|bingung cara"
                            r"|bingung pakai)\b")


def _asks_how_to_text(text: str, canon: str) -> bool:
    return bool((_HOW_TO_RE.search(canon) and _BY_SMS_RE.search(canon))
                or _COMMANDS_RE.search(canon))


# What was due, set against what came: a complaint when it is no question.
_SHOULD_HAVE_RE = re.compile(r"\b(?:harusnya|seharusnya|mestinya|should have been|should be"
                             r"|supposed to be)\b")


def _asks_about_a_fault(text: str, canon: str) -> bool:
    """A question about what happens to faulty things, not a report of one:
    "kalau barang rusak bisa diganti?", "harga servis lcd pecah brp?"."""
    if not _is_question(text, canon):
        return False
    return _CONDITIONAL_RE.search(canon) is not None or (
        _OFFER_FOR_FAULT_RE.search(canon) is not None and _BLAME_RE.search(canon) is None)


def _sent_money(text: str, toks: list[_Tok], canon: str, amount_tok: _Tok | None) -> bool:
    """Money sent to a bank or wallet, in other words: "500rb sudah sy kirim via dana",
    "uangnya sudah saya kirim 300rb"."""
    return (amount_tok is not None and _SENT_RE.search(canon) is not None
            and (_find_bank(toks, 0, amount_tok)[0] is not None
                 or _MONEY_NOUN_RE.search(canon) is not None)
            and not _is_question(text, canon) and not _CONDITIONAL_RE.search(canon))


_MONEY_NOUN_RE = re.compile(r"\b(?:uang|uangnya|duit|duitnya|dananya|money|the money)\b")


# Asking how a complaint, claim or ticket is getting on: "gimana komplain sy kemarin, udh
# ada solusi?", "mau tanya perkembangan klaim garansi saya no G-1120".
_FOLLOW_UP_RE = re.compile(
    r"\b(?:bagaimana|perkembangan|progress|progres|kabar|status|update|tindak lanjut)(?:nya)?"
    r"(?: [a-z]+){0,2} (?:komplain|keluhan|klaim|claim|laporan|pengaduan|tiket)\b"
    r"|\b(?:komplain|keluhan|klaim|laporan|pengaduan)(?:nya)? (?:saya|aku)(?: (?:[a-z]+|NUM)){0,3}"
    r" (?:bagaimana|sudah|apa kabar|sampai mana)\b"
    r"|\b(?:komplain|keluhan|klaim|laporan|pengaduan)(?:nya)?(?: (?:[a-z]+|NUM)){0,4}"
    r" (?:sampai mana|ada kabar|kabarnya|sudah diproses|progress|progresnya)\b")
# Claiming or checking a warranty in a sentence: "klaim garansi", "mau garansiin SSD",
# "masih garansi kan?", "still under warranty?", "cek masa garansi ... SN: KMX889120".
_WARRANTY_RE = re.compile(
    r"\b(?:klaim|claim|minta|pakai|pake|ajukan|mengajukan|use|make a|cek|check|urus)(?: masa)?"
    r" (?:garansi|garansinya|warranty)\b|\bgaransiin\b|\bdigaransi\b"
    r"|\bmasih (?:ada |dalam |dalam masa |masuk |bisa )?(?:garansi|bergaransi|warranty)\b"
    r"|\b(?:still )?(?:under|in) warranty\b"
    r"|\bgaransi(?:nya)? (?:masih|apa masih|apakah masih|sudah habis|masih bisa)"
    r"(?: [a-z]+)?\b"
    # "bisa garansi?", "garansinya masih berlaku?", "kartu garansinya hilang, bisa klaim?"
    r"|\bbisa (?:di)?(?:garansi|garansikan)\b|\bgaransi.*\bbisa (?:di)?(?:klaim|claim)\b"
    r"|\bbisa (?:di)?(?:klaim|claim)\b.*\bgaransi"
    r"|\bgaransi(?:nya)?(?: [a-z]+){0,3} (?:berlaku|valid|aktif)\b")
# The warranty named with a serial beside it ("masa garansi flashdisk sy sampai kapan? sn
# FD99812") asks about that item's warranty.
_GARANSI_WORD_RE = re.compile(r"\b(?:garansi|garansinya|warranty)\b")
# A forwarded notice or scam ("Anda menerima transfer Rp 2.500.000 ... bit.ly/..."): a
# link is no customer's own payment.
_LINK_RE = re.compile(r"https?://|\bwww\.|\bbit\.ly/|\b[a-z0-9-]+\.(?:com|id|xyz|net|org|co)/",
                      re.IGNORECASE)
# A serial after its marker ("SN: KMX889120", "serial nya 50026B77"), or a word mixing
# letters and digits long enough to be no product code ("5CD1234XYZ").
_SERIAL_MARKERS = frozenset("sn serial seri imei s/n nya number nomor".split())
_SERIAL_SHAPE_RE = re.compile(r"(?=[A-Za-z0-9-]*[0-9])(?=[A-Za-z0-9-]*[A-Za-z])"
                              r"[A-Za-z0-9][A-Za-z0-9-]{5,39}")


def _free_serial(toks: list[_Tok], ctx: Context) -> str | None:
    for i, t in enumerate(toks):
        if i and toks[i - 1].low in _SERIAL_MARKERS and t.kind in (WORD, NUM) \
                and len(t.raw) >= 4 and any(c.isdigit() for c in t.raw):
            return t.raw.upper()
    for t in toks:
        if (t.kind == WORD and _SERIAL_SHAPE_RE.fullmatch(t.raw) and t.raw.upper()
                not in ctx.product_codes and sum(c.isdigit() for c in t.raw) >= 3
                and not _CODE_SHAPE_RE.fullmatch(t.raw.upper())):
            return t.raw.upper()
    return None


# "DOA" in capitals is "dead on arrival"; "doa" is also a prayer.
_DOA_RE = re.compile(r"\bDOA\b")
# "sudah tf, tp blm ada konfirmasi. 500rb BCA": a payment sent, waiting to be seen.
_NO_CONFIRMATION_RE = re.compile(
    r"\b(?:belum|tidak)(?: ada)? (?:konfirmasi|dikonfirmasi)(?:nya)?\b")


def _paid_awaiting_confirmation(text: str, toks: list[_Tok], canon: str) -> bool:
    if not _NO_CONFIRMATION_RE.search(canon):
        return False
    rest = _NO_CONFIRMATION_RE.sub(" ", canon)
    amount_tok = _free_amount(text, toks)
    return (not _COMPLAINT_RE.search(rest) and amount_tok is not None
            and _PAID_RE.search(canon) is not None
            and _find_bank(toks, 0, amount_tok)[0] is not None)


def _read_free(text: str, toks: list[_Tok], canon: str, ctx: Context) -> Reading:
    if _OPT_OUT_RE.search(canon):
        return Reading("stop", text)
    if _OPT_IN_RE.search(canon) and not re.search(r"\b(?:tidak|jangan|stop|berhenti)\b", canon):
        return Reading("start", text)
    if _FOLLOW_UP_RE.search(canon) and _is_question(text, canon) or (
            _FOLLOW_UP_RE.search(canon) and "tanya" in canon):
        return _free_status(text, toks)
    # The warranty named beside a serial, or beside a fault asked about ("powerbank yg sy
    # beli rusak, garansinya brp lama?").
    warranty = _WARRANTY_RE.search(canon) or (_GARANSI_WORD_RE.search(canon) and (
        _free_serial(toks, ctx) is not None
        or (_COMPLAINT_RE.search(canon) and _is_question(text, canon))))
    if warranty and not _CONDITIONAL_RE.search(canon):
        serial = _free_serial(toks, ctx)
        return Reading("warranty", text, serial=serial,
                       problems=() if serial else ("no_serial",))
    if _asks_how_to_do(text, canon):
        return Reading("help", text)
    if ((_COMPLAINT_RE.search(canon) or _DOA_RE.search(text))
            and not _asks_about_a_fault(text, canon)
            and not _paid_awaiting_confirmation(text, toks, canon)):
        return Reading("complaint", text)
    if _SHOULD_HAVE_RE.search(canon) and not _is_question(text, canon):
        return Reading("complaint", text)    # "masuk 20rb, harusnya 25rb": not what was due
    if _asks_how_to_text(text, canon):
        return Reading("help", text)
    amount_tok = _free_amount(text, toks)
    # "transfer masuk blm min? 175rb via gopay": money sent, asked whether it arrived.
    asked_arrived = (amount_tok is not None and _PAY_VERB_RE.search(canon) is not None
                     and _SEEN_YET_RE.search(canon) is not None
                     and not _CONDITIONAL_RE.search(canon) and not _FUTURE_RE.search(canon))
    if not _LINK_RE.search(text) and (
            _looks_paid(text, canon, amount_tok is not None) or asked_arrived
            or _sent_money(text, toks, canon, amount_tok)):
        return _free_payment(text, toks, amount_tok)
    if amount_tok is None and not _CONDITIONAL_RE.search(canon):
        asked = _is_question(text, canon)
        cue = (_STATUS_WORD_RE.search(canon) or _WHERE_RE.search(canon)
               or (asked and _PROGRESS_RE.search(canon)))
        # "order 12 gimana?" asks for a status; "mau order, gimana caranya?" does not.
        if cue or (asked and "bagaimana" in canon):
            reference = _status_reference(text, toks)
            if reference is not None:
                return Reading("status", text, reference=reference)
        subject = _STATUS_SUBJECT_RE.search(canon) or _MY_THING_RE.search(canon)
        if cue and subject and (asked or _PENDING_RE.search(canon)
                                or (_ASK_TO_CHECK_RE.search(canon) and _PLEASE_RE.search(canon)
                                    and not _OFFER_QUESTION_RE.search(canon))):
            return Reading("status", text, problems=("no_reference",))
        # "paket sy nyampe kapan?", "paketku posisinya dimana?": when it comes, where it is.
        if _ARRIVAL_RE.search(canon) and subject and (asked or "kira" in canon):
            return _free_status(text, toks)
        # "kapan pulsa saya diisi?": credit not yet topped up, asked after.
        if asked and _TOPUP_WHEN_RE.search(canon):
            return Reading("status", text, problems=("no_reference",))
        # "udah diverifikasi blm? sy udh tf kmrn": asking whether money sent was seen.
        if asked and _PAY_VERB_RE.search(canon) and _SEEN_YET_RE.search(canon):
            return Reading("status", text, problems=("no_reference",))
        # "sudah dikirim belum kak?", "udah dikirim?": nothing but the progress asked about.
        if (asked or _PENDING_RE.search(canon)) and _BARE_PROGRESS_RE.fullmatch(
                " ".join(t.low for t in toks if t.low not in POLITE)):
            return Reading("status", text, problems=("no_reference",))
        # "servisan laptop saya gimana?", "how is my repair going?": the sender's own
        # order or repair, asked about; "pesan gimana caranya?" asks how to order.
        if (asked and _MY_THING_RE.search(canon) and "cara" not in canon
                and _HOW_IS_RE.search(canon)):
            return Reading("status", text, problems=("no_reference",))
    return _fallback(text, ctx)


def _free_payment(text: str, toks: list[_Tok], amount_tok: _Tok | None) -> Reading:
    bank, _, _ = _find_bank(toks, 0, amount_tok)
    order_number = _marked_reference(text, toks)
    problems = []
    if amount_tok is None:
        problems.append("no_amount")
    if order_number is None:
        problems.append("no_reference")
    return Reading("payment", text, order_number=order_number,
                   amount=amount_tok.value if amount_tok is not None else None,
                   bank=bank, payer_name=_marked_name(text, toks), problems=tuple(problems))


def _free_status(text: str, toks: list[_Tok]) -> Reading:
    reference = _status_reference(text, toks)
    return Reading("status", text, reference=reference,
                   problems=() if reference else ("no_reference",))


# The rules decide where they read a keyword or products. Elsewhere the model decides
# when it is at least this sure. On the texts of writers neither had seen (sms_train6/7,
# then sms_train8/9, held out of a model of 3,974 texts) the rules alone read 72-73 %
# of intents, asking the model only where the rules read nothing 88-90 %, this 90.6 and
# 92.1 %. With an open ticket an unread text is already a reply a person sees there; it
# moves only when the model is surer.
_GUESS_FLOOR = 0.5
_GUESS_FLOOR_WITH_TICKET = 0.9


def model_features(text: str, toks: list[_Tok] | None = None) -> list[str]:
    """The features intent_model reads, from this module's tokens (also for training)."""
    if toks is None:
        toks = _tokenise(text.strip())
    words = [t.low if t.kind == WORD else "<" + t.kind + ">" for t in toks]
    return intent_model.features(words, "?" in text)


def _weighed(text: str, toks: list[_Tok], ctx: Context, reading: Reading) -> Reading:
    """The rules' free-text reading, or the model's where it is sure of another intent."""
    intent, p = intent_model.shipped().guess(model_features(text, toks))
    unread = reading.intent in ("other", "reply")
    if intent == ("other" if unread else reading.intent) or p < (
            _GUESS_FLOOR_WITH_TICKET if unread and ctx.has_open_ticket else _GUESS_FLOOR):
        return reading
    return _guessed(intent, text, toks, ctx)


def _guessed(intent: str, text: str, toks: list[_Tok], ctx: Context) -> Reading:
    """A reading of `intent`, its fields read as the rules read them ("no_items": an
    order a person completes)."""
    if intent == "other":
        return _fallback(text, ctx)
    if intent == "payment":
        return _free_payment(text, toks, _free_amount(text, toks))
    if intent == "status":
        return _free_status(text, toks)
    if intent == "order":
        return Reading("order", text, problems=("no_items",))
    if intent == "register":
        name = _marked_name(text, toks)
        return Reading("register", text, name=name, problems=() if name else ("no_name",))
    if intent == "warranty":
        serial = _free_serial(toks, ctx)
        return Reading("warranty", text, serial=serial, problems=() if serial else ("no_serial",))
    return Reading(intent, text)    # complaint, help, stop, start: the words are the text


_TOPUP_WHEN_RE = re.compile(
    r"\bkapan(?: [a-z]+){0,3} (?:diisi|terisi|diisikan|diproses)\b"
    r"|\b(?:pulsa|voucher|saldo|kuota|token|topup)(?:nya)?(?: [a-z]+){0,3}"
    r" (?:diisi|terisi|diisikan|diproses|dikirim|terkirim)\b")
_SEEN_YET_RE = re.compile(r"\b(?:diverifikasi|verifikasi|dikonfirmasi|dicek|diterima|masuk)"
                          r"(?:nya)? (?:apa |atau )?belum\b"
                          r"|\b(?:payment|transfer|pembayaran|transferan)(?:nya)?(?: [a-z]+){0,3}"
                          r" (?:received|confirmed|verified|diterima|dikonfirmasi|diverifikasi)\b")


def _status_reference(text: str, toks: list[_Tok]) -> str | None:
    """The order or ticket number a free-text status question names: "pesanan no 12",
    "order #12", "tiket12"."""
    marked = _marked_reference(text, toks)
    if marked is not None:
        return marked
    for t in toks:
        if t.kind == WORD:
            m = _STATUS_REF_WORD_RE.fullmatch(t.low)
            if m:
                return m.group(1)
    return None


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

# Bounds of what a text can mean, so a number no database column holds is read as out
# of range (and a person looks) instead of failing the transaction that files it.
MAX_AMOUNT = 999_999_999_999   # Rp 999 billion: far above any shop's transfer
MAX_ID = 2_147_483_647          # ticket and order numbers are 32-bit ids


def as_id(reference: str | None) -> int | None:
    """A ticket or order number written in a text, if it can be one."""
    if reference is None or not (reference.isascii() and reference.isdigit()) \
            or len(reference) > 10:
        return None
    value = int(reference)
    return value if 1 <= value <= MAX_ID else None


def _bounded(reading: Reading) -> Reading:
    problems = list(reading.problems)
    amount = reading.amount
    if amount is not None and not 0 <= amount <= MAX_AMOUNT:
        amount = None
        problems.append("amount_out_of_range")
    for reference in (reading.reference, reading.order_number):
        if reference is not None and as_id(reference) is None:
            problems.append("reference_out_of_range")
    if amount == reading.amount and len(problems) == len(reading.problems):
        return reading
    return replace(reading, amount=amount,
                               problems=tuple(dict.fromkeys(problems)))


def read(text: str, context: Context | None = None) -> Reading:
    """Read one customer text; never raises. Amounts and numbers are within MAX_AMOUNT
    and MAX_ID, or named in `problems`."""
    return _bounded(_read(text, context))


def _read(text: str, context: Context | None) -> Reading:
    ctx = context if context is not None else _NO_CONTEXT
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    text = text.strip()
    toks = _tokenise(text)
    if not toks:
        return _fallback(text, ctx, () if text else ("empty",))
    reading = _read_by_rules(text, toks, ctx)
    if reading.keyword is not None or reading.items:
        return reading
    return _weighed(text, toks, ctx, reading)


def _read_by_rules(text: str, toks: list[_Tok], ctx: Context) -> Reading:
    canon = _canonical(toks)
    k, hard = 0, True
    if toks[0].low not in KEYWORDS:
        hard = False
        while k < len(toks) and toks[k].kind == WORD and toks[k].low in LEADING_FILLERS:
            k += 1
    if k < len(toks) and toks[k].kind == WORD and toks[k].low in KEYWORDS:
        reader = _KEYWORD_READERS[KEYWORDS[toks[k].low]]
        reading = reader(text, toks, canon, k, ctx, hard)
        if reading is not None:
            return reading
    elif k < len(toks) and not hard:
        reading = _read_bare_order(text, toks, canon, k, ctx)
        if reading is not None:
            return reading
    if not hard:
        reading = (_order_in_a_sentence(text, toks, canon, ctx)
                   or _order_in_words(text, toks, canon, ctx)
                   or _register_in_a_sentence(text, toks, canon)
                   or _named_thing_and_count(text, toks))
        if reading is not None:
            return reading
    elif KEYWORDS[toks[0].low] == "order":
        # "Order: 2x SSD 512GB, 1x RAM 8GB": products in words, no number to resolve.
        reading = _order_in_words(text, toks, canon, ctx)
        if reading is not None:
            return reading
    return _read_free(text, toks, canon, ctx)


# An order asked for later in a sentence: "Selamat siang, saya Budi. Saya ingin memesan
# XL25 sebanyak 3 buah"; not one that was made before ("kemarin beli xl25 2, makasih").
_ORDER_VERBS = frozenset("pesan order beli minta ambil want buy".split())
_PAST_WORDS = frozenset("kemarin tadi sudah telah pernah yesterday already last".split())


# Words that may stand before the verb of an order asked for in words, and words after
# it that name no thing to buy ("mau order dulu ya", "mau pesan tapi ...").
_WANT_WORDS = frozenset("""
    mau ingin pengen minta tolong please saya aku kami i we want wanna like would need
    butuh perlu sekalian rencana jadi aja bisa boleh bisakah bolehkah can could may nitip titip
    proses prosesin
""".split())
_IN_WORDS_VERBS = frozenset("""
    pesan order beli buy purchase ambil minta isi get take pesankan orderkan pesenin
    need butuh perlu kirim kirimkan kirimin siapkan siapin sediakan
""".split())
# "minta nomor rekening", "ambil barang jam 5": these verbs order only with a quantity
# or right before "pulsa", "paket", ... ("ambil mouse yg merah 1", "isi pulsa xl").
_WEAK_ORDER_VERBS = frozenset("minta ambil isi get take need butuh perlu kirim kirimkan kirimin "
                              "siapkan siapin sediakan".split())
_TOPUP_WORDS = frozenset("pulsa kuota paket voucher vocer saldo token data".split())
_OPERATOR_WORDS = frozenset("""
    xl axis tsel telkomsel simpati as im3 indosat tri three smartfren by.u byu
""".split())
_TIME_WORDS = frozenset("jam pukul tgl tanggal hari".split())
_NOT_A_THING = PRONOUNS | frozenset("""
    tapi dulu lagi bisa boleh bagaimana cara caranya dimana di mana apa ya dong sekarang
    nanti besok aja saja dari ke sama yang minggu bulan tahun depan kapan kapan2 kemarin
    tadi sudah telah yesterday already
""".split())


def _order_in_words(text, toks, canon, ctx):
    """An order whose products are named in words the reader cannot resolve to codes:
    "mau pesan printer epson L3210 satu unit", "I'd like to order one wireless mouse".
    The verb must open the request (after greetings and "mau", "saya", "I'd like to");
    a question, condition, complaint, cancellation or money already sent is no order."""
    j = 0
    while j < len(toks) and toks[j].kind == WORD and toks[j].low not in _IN_WORDS_VERBS and (
            toks[j].low in LEADING_FILLERS or toks[j].low in _WANT_WORDS
            or toks[j].low in POLITE):
        j += 1
    if j >= len(toks) - 1:
        return None
    if toks[j].low not in _IN_WORDS_VERBS:
        # "kak aku mau xl 50 satu ya", "minta pulsa tsel 20rb": wanting credit by name.
        if not (toks[j].low in _OPERATOR_WORDS or toks[j].low in _TOPUP_WORDS) or not any(
                t.low in _WANT_WORDS for t in toks[:j]) or toks[j + 1].kind not in (NUM, MONEY):
            return None
        j -= 1
    k = j + 1
    while k < len(toks) and toks[k].low in ORDER_FILLERS:
        k += 1
    if k >= len(toks) or toks[k].low in _NOT_A_THING or toks[k].kind == PHONE:
        return None
    if toks[j].low in _WEAK_ORDER_VERBS and toks[j + 1].low not in _TOPUP_WORDS and not any(
            _quantity(toks[i]) is not None and toks[i - 1].low not in _TIME_WORDS
            and toks[i - 1].low not in NOT_MONEY_BEFORE
            and (i + 1 == len(toks) or toks[i + 1].low not in NOT_MONEY_AFTER)
            for i in range(j + 1, len(toks))):
        return None
    # "Boleh pesan 2 roll kabel LAN?" is a polite request; "bisa pesan mouse putih?" may
    # ask whether the shop has one.
    polite_request = _REQUEST_RE.search(canon) is not None and any(
        t.kind == NUM for t in toks[j + 1:])
    if (("?" in text and not polite_request) or _asks(text, canon)
            or _CONDITIONAL_RE.search(canon)
            or _CANCEL_RE.search(canon) or _COMPLAINT_RE.search(canon)
            or _looks_paid(text, canon, _free_amount(text, toks) is not None)):
        return None
    items, note, problems = _read_items(text, toks, j + 1, ctx)
    if not items and "unknown_product" not in problems:
        problems.append("unknown_product")
    return Reading("order", text, items=items, note=note,
                   problems=tuple(dict.fromkeys(problems)))


_ADDRESS_WORDS = frozenset("min kak gan sis bos boss bro pak bu mas mbak om".split())
_PLACE_WORDS = frozenset("lantai lt blok gang gg rt rw kamar meja loket pintu jalan jl no".split())
_PACK_UNITS = QTY_UNITS | frozenset("rim dus box pack pak roll lusin set botol".split())


def _named_thing_and_count(text, toks):
    """ "min toner 2", "kak kertas hvs 5 rim": the shop addressed, then one to three
    words the reader does not know (a product's name) and a count, nothing else. An
    order for a person to resolve; any known word ("jam 2", "lantai 2 ya?") makes it no
    order."""
    if "?" in text:
        return None
    i = 0
    while i < len(toks) and toks[i].kind == WORD and toks[i].low in LEADING_FILLERS:
        i += 1
    if i == 0 or not any(t.low in _ADDRESS_WORDS for t in toks[:i]):
        return None
    j = i
    while j < len(toks) and toks[j].kind == WORD and toks[j].raw.isalpha() \
            and toks[j].low not in _VOCABULARY and toks[j].low not in NOT_MONEY_AFTER \
            and toks[j].low not in NOT_MONEY_BEFORE and toks[j].low not in _TIME_WORDS \
            and toks[j].low not in _PLACE_WORDS:
        j += 1
    if not 1 <= j - i <= 3 or j >= len(toks) or toks[j].kind != NUM or len(toks[j].raw) > 3 \
            or not toks[j].value:
        return None
    rest = toks[j + 1:]
    if rest and rest[0].low in _PACK_UNITS:
        rest = rest[1:]
    if not all(t.kind == WORD and t.low in POLITE for t in rest):
        return None
    return Reading("order", text, note=_tidy(text[toks[i].start:toks[j].end]),
                   problems=("unknown_product",))


def _order_in_a_sentence(text, toks, canon, ctx):
    for j in range(len(toks) - 1):
        low = toks[j].low
        if low in _PAST_WORDS:
            return None
        if low in _ORDER_VERBS:
            return _read_bare_order(text, toks, canon, j + 1, ctx)
    return None


# "nama saya Budi, mau daftar", "min daftarin sy dong, nama Putri Ayu": signing up in a
# sentence, with the name after "nama".
_NAME_OPENERS = frozenset("nama name".split())
# "mau jadi member", "gabung jadi anggota", "sign up": joining in other words.
_JOIN_RE = re.compile(r"\b(?:jadi|menjadi|gabung|bergabung|ikut|join|become|as)(?: a| an)?"
                      r" (?:member|anggota|pelanggan|langganan|membership)\b|\bsign (?:me )?up\b")
_NAME_PRONOUNS = frozenset("saya aku sy my is adalah".split())


def _register_in_a_sentence(text, toks, canon):
    if not (any(t.low in ("daftar", "register", "signup") for t in toks)
            or _JOIN_RE.search(canon)) or _CONDITIONAL_RE.search(canon):
        return None
    if any(t.low in DAFTAR_LIST_WORDS for t in toks) or "?" in text:
        return None
    for i, t in enumerate(toks):
        if t.low in _NAME_OPENERS:
            k = i + 1
            while k < len(toks) and toks[k].low in _NAME_PRONOUNS and not (
                    toks[k].raw[:1].isupper() and toks[k].raw.lower() in _PRONOUN_NAMES):
                k += 1
            words = []
            while k < len(toks) and len(words) < 5 and _is_name_word(toks[k], first=not words):
                words.append(toks[k])
                k += 1
            if words and toks[k - 1].low != "daftar":
                return Reading("register", text, name=_tidy(_raw_between(text, words[0],
                                                                        words[-1])))
    name = _marked_name(text, toks)  # "daftarin nomor ini a.n. Fajar"
    return Reading("register", text, name=name) if name else None


# --------------------------------------------------------------------------------------
# The vocabulary the typo reader corrects towards (see _respelled)
# --------------------------------------------------------------------------------------

def _vocabulary() -> frozenset[str]:
    words = set(KEYWORDS) | set(ABBREVIATIONS.values()) | set(BANK_ALIASES) | set(QTY_WORDS)
    for table in (LEADING_FILLERS, POLITE, ORDER_FILLERS, QTY_PREFIX, QTY_UNITS,
                  ITEM_CONNECTORS, PRONOUNS, DANA_PREPOSITIONS, NAME_STOP, REG_SERVICES,
                  DAFTAR_LIST_WORDS, STATUS_WORDS, REFERENCE_MARKERS, _BROADCAST_WORDS):
        words |= table
    for pattern in (_COMPLAINT_RE, _PAY_VERB_RE, _PAID_RE, _NOT_PAID_RE, _CONDITIONAL_RE,
                    _QUESTION_RE, _FUTURE_RE, _STATUS_WORD_RE, _PROGRESS_RE, _STATUS_SUBJECT_RE,
                    _WHERE_RE, _REQUEST_RE, _OFFER_QUESTION_RE, _OPT_OUT_RE, _SENT_RE, _CANCEL_RE,
                    _OFFER_FOR_FAULT_RE, _BLAME_RE):
        words.update(re.findall(r"[a-z]{2,}", pattern.pattern))
    return frozenset(w for w in words if w.isalpha())


# Short forms are known words but never the reading of a typo ("sample" is no "sampe").
_TARGETS = _vocabulary()
_VOCABULARY = _TARGETS | frozenset(ABBREVIATIONS)
_MISSING_LETTER = {}
for _word in sorted(_TARGETS):
    if len(_word) > _MIN_TYPO_LEN:
        for _i in range(1, len(_word)):
            _MISSING_LETTER.setdefault(_word[:_i] + _word[_i + 1:], _word)
_MISSING_LETTER = {k: v for k, v in _MISSING_LETTER.items() if k not in _VOCABULARY}
