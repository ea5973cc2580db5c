"""Phone numbers: every way a customer's number is written becomes one E.164 string."""
from __future__ import annotations

import functools
import re

import phonenumbers

_JUNK = re.compile(r"[\s\-().]")


# A pure function of two strings, asked twice for every text filed (its batch's lookup,
# then its own row) and for every search: the parse is the costly part.
@functools.lru_cache(maxsize=8192)
def normalise(raw: str, region: str = "ID") -> str | None:
    """'0812-3456-7890', '62812...', '+62 812...', '0062812...' -> '+62812...'.

    Returns None for what cannot be a reachable phone number: an alphanumeric sender such
    as 'TELKOMSEL', a short code, an empty or withheld number.
    """
    if not raw:
        return None
    number = _JUNK.sub("", raw.strip())
    if number.startswith("00"):  # international prefix; phonenumbers misreads 0062 for ID
        number = "+" + number[2:]
    elif number[:1].isdigit() and number[0] != "0" and len(number) >= 10 and \
            number.startswith(str(phonenumbers.country_code_for_region(region))):
        number = "+" + number  # 62812... : the country code written without the plus
    if not re.fullmatch(r"\+?\d{5,16}", number):
        return None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_reachable(number: str) -> bool:
    """True for an E.164 number we can send a text to."""
    return number.startswith("+") and number[1:].isdigit()
