"""Gammu's answers as plain data: its SMS dicts as RawParts, its errors as kinds and
readable lines, delivery reports' TP-Status as an outcome."""
from __future__ import annotations

import datetime as dt

import gammu

from gateway.sms.parts import RawPart

# Errors that mean the link to the modem is gone: drop the StateMachine and reconnect.
LINK_ERRORS = tuple(getattr(gammu, name) for name in (
    "ERR_TIMEOUT", "ERR_DEVICENOTEXIST", "ERR_DEVICEOPENERROR", "ERR_DEVICEREADERROR",
    "ERR_DEVICEWRITEERROR", "ERR_DEVICELOCKED", "ERR_DEVICEBUSY", "ERR_DEVICENOPERMISSION",
    "ERR_NOTCONNECTED", "ERR_DEVICECHANGESPEEDERROR", "ERR_DEVICEDTRRTSERROR",
    "ERR_DEVICENODRIVER", "ERR_ABORTED", "ERR_NOSIM") if hasattr(gammu, name))

# Errors in the middle of a send after which the text may or may not have left.
MAYBE_SENT_ERRORS = tuple(getattr(gammu, name) for name in (
    "ERR_TIMEOUT", "ERR_ABORTED", "ERR_DEVICEREADERROR", "ERR_DEVICEWRITEERROR")
    if hasattr(gammu, name))

# Send errors that will not pass by retrying the same text.
PERMANENT_SEND_ERRORS = tuple(getattr(gammu, name) for name in (
    "ERR_INVALIDDATA", "ERR_NOTSUPPORTED", "ERR_NOTIMPLEMENTED", "ERR_MOREMEMORY",
    "ERR_INVALIDLOCATION") if hasattr(gammu, name))


class ModemUnavailable(Exception):
    """The modem is not connected now; the caller retries later."""


class Unencodable(ValueError):
    """A text Gammu cannot turn into SMS parts; it was never tried, and never will go."""


class ModemHung(Exception):
    """The modem stopped answering in the middle of a call; the watchdog aborted it."""


class PartialSend(Exception):
    """Some parts of a long text left the modem and a later one failed."""

    def __init__(self, sent: int, total: int, error: Exception):
        super().__init__(f"part {sent + 1} of {total} failed after {sent} left: "
                         f"{error_text(error)}")
        self.error = error


def error_text(error: Exception) -> str:
    """A gammu error as one readable line."""
    if isinstance(error, ModemHung):
        return str(error)
    if isinstance(error, gammu.GSMError) and error.args and isinstance(error.args[0], dict):
        info = error.args[0]
        return f"{type(error).__name__}: {info.get('Text')} (in {info.get('Where')})"
    return f"{type(error).__name__}: {error}"


def to_utc(value) -> dt.datetime | None:
    if not isinstance(value, dt.datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def delivery_outcome(status) -> str:
    """TP-Status (3GPP TS 23.040 9.2.3.15): 0x00-0x1F done, 0x20-0x3F still trying,
    0x40 and up given up."""
    if not isinstance(status, int):
        return "unknown"
    if status < 0x20:
        return "delivered" if status <= 0x02 else "failed"  # 0x03-0x1F: replaced/reserved
    return "pending" if status < 0x40 else "failed"


def raw_part(sms: dict) -> RawPart:
    """python-gammu's SMS dict -> RawPart; one that cannot be read as a text (8-bit
    data, fields of the wrong type) is kept as it came, marked `unreadable`."""
    text = sms.get("Text")
    if isinstance(text, bytes):  # a data SMS (WAP push, SIM toolkit): no text to read
        return _unreadable(sms, f"8-bit data SMS, kept as hex: {text.hex()}",
                           "a data SMS (8-bit), not a text")
    try:
        return _raw_part(sms)
    except Exception as e:
        return _unreadable(sms, repr(text), f"Gammu's record could not be read: "
                           f"{type(e).__name__}: {e}")


def unreadable_location(location: int, error: Exception) -> RawPart:
    """A SIM location Gammu cannot read at all. What it held is out of reach; a note is
    stored for a person, and the location is then freed like any other (left there, it
    would fill the SIM and be tried again on every poll)."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return RawPart(location=location, sender="", smsc_time=None,
                   text=f"(Gammu could not read the SMS at SIM location {location}: "
                        f"{error_text(error)}; noted at {now:%Y-%m-%d %H:%M:%S} UTC)",
                   unreadable="unreadable on the SIM; its content is lost")


def _unreadable(sms: dict, text: str, why: str) -> RawPart:
    return RawPart(location=sms.get("Location", 0), sender=str(sms.get("Number") or ""),
                   text=text, smsc_time=to_utc(sms.get("DateTime")), unreadable=why)


def _raw_part(sms: dict) -> RawPart:
    udh = sms.get("UDH") or {}
    concatenated = udh.get("Type", "").startswith("Concatenated") and udh.get("AllParts", 0) > 1
    reference = None
    if concatenated:
        reference = udh["ID16bit"] if udh.get("ID16bit", -1) >= 0 else udh.get("ID8bit")
    if sms.get("PDU") == "Status_Report" or sms.get("Type") == "Status_Report":
        return RawPart(location=sms["Location"], sender=sms.get("Number") or "",
                       text=sms.get("Text") or "", smsc_time=to_utc(sms.get("DateTime")),
                       status_report=True, report_reference=sms.get("MessageReference"),
                       report_status=delivery_outcome(sms.get("DeliveryStatus")))
    return RawPart(
        location=sms["Location"], sender=sms.get("Number") or "", text=sms.get("Text") or "",
        smsc_time=to_utc(sms.get("DateTime")), coding=sms.get("Coding") or "",
        reference=reference,
        part_number=udh.get("PartNumber", 1) if concatenated else 1,
        part_count=udh.get("AllParts", 1) if concatenated else 1)
