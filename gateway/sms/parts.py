"""One SMS as read from a SIM, as plain data, and the key that recognises it when read
again (after a crash or a failed delete)."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class RawPart:
    """One SMS as read from the SIM, already plain data (built on the modem thread)."""
    location: int
    sender: str
    text: str
    smsc_time: dt.datetime | None  # naive UTC
    coding: str = "Default_No_Compression"
    reference: int | None = None   # concatenation reference from the UDH
    part_number: int = 1
    part_count: int = 1
    status_report: bool = False    # a delivery report, never a customer text
    report_reference: int | None = None
    report_status: str | None = None
    unreadable: str | None = None  # why it is no text to file; kept for a person

    @property
    def dedupe_key(self) -> str:
        when = self.smsc_time.isoformat() if self.smsc_time else "-"
        text_hash = hashlib.sha256(self.text.encode("utf-16-be", "surrogatepass")).hexdigest()
        kind = f"sr{self.report_reference}" if self.status_report else "sms"
        fields = [self.sender, when, str(self.reference), str(self.part_number),
                  str(self.part_count), text_hash, kind]
        return hashlib.sha256("|".join(fields).encode()).hexdigest()

    @property
    def multipart(self) -> bool:
        return self.part_count > 1 and self.reference is not None
