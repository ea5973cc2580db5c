"""The SIM credit in an operator's USSD answer (*888#, *123#, *111#, *999#...), no I/O.

The big Indonesian operators answer in a handful of shapes: Telkomsel "Sisa Pulsa Anda
Rp 12.500. Aktif s.d 28-02-2027", Indosat "Pulsa Rp5000, aktif s/d 28/02/27", XL/Axis
"Pulsa Rp 12.500 s.d. 28 Feb 2027", Tri "Pulsa: 5000 Aktif s.d: 28/02/2027", Smartfren
"Saldo Rp 12.500, Masa Aktif 28-02-2027". The amount is read only where a word for
credit (pulsa, saldo, sisa, balance) comes before it, so a promotion's price is not taken
for the balance; an answer read no further gives (None, None) and is kept as text.
"""
from __future__ import annotations

import datetime as dt
import re

MAX_BALANCE = 100_000_000  # rupiah: no prepaid SIM holds more; past it the reading is wrong

_NUMBER = r"(\d{1,3}(?:[.,]\d{3})+|\d+)(?:,\d{1,2}|,-)?(?!\d)"
_AMOUNT = re.compile(
    r"\b(?:sisa\s+)?(?:pulsa|saldo|balance|credit|sisa)\b(?:\s*(?:utama|anda|reguler|"
    r"utama anda|kamu))?\s*(?:adalah|sebesar|is|:|=)?\s*[:=]?\s*(?:Rp\.?|IDR)?\s*" + _NUMBER,
    re.IGNORECASE)

_MONTHS = {
    "jan": 1, "feb": 2, "peb": 2, "mar": 3, "apr": 4, "mei": 5, "may": 5, "jun": 6,
    "jul": 7, "agu": 8, "agt": 8, "aug": 8, "sep": 9, "okt": 10, "oct": 10, "nov": 11,
    "nop": 11, "des": 12, "dec": 12,
}
_NUMERIC_DATE = re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?!\d)")
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_NAMED_DATE = re.compile(
    r"(?<!\d)(\d{1,2})[\s-]*([A-Za-z]{3})[A-Za-z]*\.?[\s-]*(\d{4}|\d{2})(?!\d)")


def read_balance(text: str | None) -> tuple[int | None, dt.date | None]:
    """(balance in rupiah, expiry date) from an operator's answer; None for what is not there."""
    if not text:
        return None, None
    balance = _amount(text)
    expiry = _expiry(text) if balance is not None or _mentions_expiry(text) else None
    return balance, expiry


def _amount(text: str) -> int | None:
    match = _AMOUNT.search(text)
    if match is None:
        return None
    digits = re.sub(r"[.,]", "", match.group(1))
    value = int(digits)
    return value if value <= MAX_BALANCE else None


def _mentions_expiry(text: str) -> bool:
    return re.search(r"aktif|berlaku|expir|valid|s\.?/?d", text, re.IGNORECASE) is not None


def _expiry(text: str) -> dt.date | None:
    candidates = []
    for match in _NUMERIC_DATE.finditer(text):
        day, month, year = (int(g) for g in match.groups())
        candidates.append((match.start(), _date(year, month, day)))
    for match in _ISO_DATE.finditer(text):
        year, month, day = (int(g) for g in match.groups())
        candidates.append((match.start(), _date(year, month, day)))
    for match in _NAMED_DATE.finditer(text):
        month = _MONTHS.get(match.group(2).lower())
        if month is not None:
            candidates.append((match.start(),
                               _date(int(match.group(3)), month, int(match.group(1)))))
    dates = [date for _, date in sorted(candidates, key=lambda c: c[0]) if date is not None]
    return dates[0] if dates else None


def _date(year: int, month: int, day: int) -> dt.date | None:
    if year < 100:
        year += 2000
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None
