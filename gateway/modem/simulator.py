"""A simulated modem's side of the network: deliver a text as a phone would.

Gammu's dummy driver reads an inbound SMS from a Gammu SMS-backup file in
<device>/sms/1/<location>. Long texts become linked parts (GSM-7 or UCS-2, as Gammu
would encode them), one file each.
"""
from __future__ import annotations

import datetime as dt
import os
import tempfile

import gammu

from gateway.config import dummy_inbox
from gateway.sms.encoding import encode

SMSC = "+62816124"  # any service centre number; the dummy driver does not care


def inject(modem, number: str, text: str, when: dt.datetime | None = None) -> list[str]:
    """Write `text` from `number` into the simulated modem's inbox; the files written."""
    if not modem.is_dummy:
        raise ValueError(f"modem {modem.name!r} is not simulated (model = \"dummy\"); "
                         "only a simulated modem can be given texts")
    if not text:
        raise ValueError("the text is empty")
    inbox = dummy_inbox(modem)
    inbox.mkdir(parents=True, exist_ok=True)
    when = when or dt.datetime.now(dt.UTC)
    parts = encode(text)
    paths = []
    for part in parts:
        part.update(Number=number, DateTime=when, SMSCDateTime=when, State="UnRead",
                    SMSC={"Location": 0, "Number": SMSC, "Validity": "NA", "Format": "Text"},
                    Type="Deliver", Folder=1, InboxFolder=True)
        paths.append(_write_backup(inbox, part))
    return paths


def _write_backup(inbox, part) -> str:
    """Write the backup file beside the inbox, then link it in under a free location.

    os.link fails if the name exists, so two injectors never overwrite each other, and the
    gateway never sees a half-written file.
    """
    fd, tmp = tempfile.mkstemp(prefix=".inject-", dir=inbox.parent)
    os.close(fd)
    try:
        gammu.SaveSMSBackup(tmp, [part])
        location = max((int(n) for n in os.listdir(inbox) if n.isdigit()), default=0) + 1
        while True:
            target = inbox / str(location)
            try:
                os.link(tmp, target)
                return str(target)
            except FileExistsError:
                location += 1
    finally:
        os.unlink(tmp)
