"""How a text becomes SMS parts: Gammu's own encoder, GSM-7 where it fits, else UCS-2."""
from __future__ import annotations

import gammu


def encode(text: str) -> list[dict]:
    """A text as the linked SMS parts Gammu sends: GSM-7 where it fits, else UCS-2."""
    return gammu.EncodeSMS({"Class": -1, "Entries": [{"ID": "ConcatenatedAutoTextLong",
                                                      "Buffer": text}]})


def part_count(text: str) -> int:
    """How many SMS the text takes as the outbox will send it."""
    return len(encode(text))
