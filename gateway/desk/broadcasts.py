"""Broadcasts: one text (a template over the contact's fields) to a contact group, a tag
or a list of numbers, fed to the outbox a few at a time.

STOP holds here for every caller (UI, API, CLI): an opted-out or blocked contact is
skipped when the broadcast is made, and checked again just before its text is queued,
so a STOP that arrives mid-broadcast is honoured too. Each number is one recipient row
(unique per broadcast); `feed` marks it queued and queues its text in one transaction,
so a restart goes on where it was and never sends anyone the text twice.

The outbox holds at most WINDOW_PER_MODEM bulk texts per modem; they carry
PRIORITY_BULK, so an operator's reply queued meanwhile goes out first.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import string
import zoneinfo
from dataclasses import dataclass, field

from sqlalchemy import delete, func, insert, select, update

from gateway.config import WEEKDAYS, parse_window
from gateway.db.models import (
    PRIORITY_BULK,
    Broadcast,
    BroadcastRecipient,
    Contact,
    ContactGroup,
    ContactGroupMember,
    ContactTag,
    Message,
    Tag,
    utcnow,
)
from gateway.desk.outbox import MAX_TEXT, OutboxError, queue_message
from gateway.desk.users import audit
from gateway.sms.encoding import encode
from gateway.sms.phone import is_reachable, normalise

FIELDS = ("name", "phone", "organisation")
# Who may text many customers at once (UI and API): announcements and promotions are a
# manager's or a seller's call, never an operator's alone; a viewer only reads.
BROADCASTERS = ("admin", "supervisor", "sales")
WINDOW_PER_MODEM = 2  # bulk texts in the outbox per modem: enough to keep it busy
MAX_RECIPIENTS = 50_000
_FIELD = re.compile(r"\{([^{}]*)\}")
_CHUNK = 500  # numbers per IN (...) list


class BroadcastError(ValueError):
    """A broadcast that cannot be made or changed, with a sentence for the person."""


# --- the template ------------------------------------------------------------------------

def check_template(text: str) -> str:
    """The text, cleaned, if it can be a broadcast; else BroadcastError saying why."""
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise BroadcastError("the text is empty")
    unknown = sorted({m for m in _FIELD.findall(text) if m.strip().lower() not in FIELDS})
    if unknown:
        raise BroadcastError(
            f"the text names {', '.join('{' + u + '}' for u in unknown)}; the fields are "
            + ", ".join("{" + f + "}" for f in FIELDS))
    if len(text) > MAX_TEXT:
        raise BroadcastError(f"the text is {len(text)} characters; at most {MAX_TEXT} fit")
    return text


def render(text: str, contact: Contact | None, number: str) -> str:
    """The template for one recipient: {name} {phone} {organisation}; a field the contact
    lacks is left out, with the space before a comma it would leave."""
    values = {"name": (contact.name if contact else None) or "",
              "organisation": (contact.organisation if contact else None) or "",
              "phone": number}
    out = _FIELD.sub(lambda m: values[m[1].strip().lower()], text)
    out = re.sub(r"[ \t]+([,.!?])", r"\1", out)
    return re.sub(r"[ \t]{2,}", " ", out).strip()


@dataclass(frozen=True)
class Encoded:
    parts: int
    coding: str  # GSM-7 or UCS-2


def encoded(text: str) -> Encoded:
    """How the outbox sends this text (Gammu's encoder, gateway/sms/encoding.py)."""
    parts = encode(text)
    unicode = any(p.get("Coding", "").startswith("Unicode") for p in parts)
    return Encoded(len(parts), "UCS-2" if unicode else "GSM-7")


# Characters of GSM-7's basic table: one septet each, and one UTF-16 unit in UCS-2. Two
# texts alike but for which of these they hold at each place encode to the same parts,
# so the preview asks Gammu once per shape instead of once per recipient (about 0.3 ms).
_BASIC = string.ascii_letters + string.digits + " !\"#%&'()*+,-./:;<=>?@$_\n"
_SHAPE = str.maketrans(_BASIC, "a" * len(_BASIC))


def shape(text: str) -> str:
    return text.translate(_SHAPE)


# --- the audience ------------------------------------------------------------------------

def parse_numbers(data: bytes | str, country: str) -> list[str]:
    """Numbers from an uploaded file: one a line, or a CSV whose first column holds them
    (a header line is passed over). Every bad line is named; none is dropped silently."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BroadcastError("the file is not UTF-8 text; save it as CSV (UTF-8)") from None
    numbers, bad = [], []
    for line, row in enumerate(csv.reader(io.StringIO(data.replace(";", ","))), 1):
        cell = row[0].strip() if row else ""
        if not cell:
            continue
        number = normalise(cell, country)
        if number is None:
            if line == 1 and not any(c.isdigit() for c in cell):
                continue  # a header such as "phone"
            bad.append(f"line {line}: {cell[:40]!r}")
            continue
        numbers.append(number)
    if bad:
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise BroadcastError("these are not phone numbers: " + "; ".join(bad[:10]) + more)
    if not numbers:
        raise BroadcastError("the file holds no phone numbers")
    return list(dict.fromkeys(numbers))  # each once, in the file's order


@dataclass
class Audience:
    kind: str  # group, tag, numbers
    name: str
    members: list[tuple[str, Contact | None]] = field(default_factory=list)


def resolve(session, country: str, *, group: str | None = None, tag: str | None = None,
            numbers: list[str] | None = None) -> Audience:
    """Exactly one of a group's name, a tag or numbers, as (number, contact) pairs."""
    given = [k for k, v in (("group", group), ("tag", tag), ("numbers", numbers))
             if v not in (None, "", [])]
    if len(given) != 1:
        raise BroadcastError("choose exactly one audience: a group, a tag or a list of numbers")
    if group:
        found = session.scalar(select(ContactGroup).where(ContactGroup.name == group.strip()))
        if found is None:
            raise BroadcastError(f"there is no contact group {group.strip()[:100]!r}")
        contacts = session.execute(
            select(*_MEMBER).join(ContactGroupMember, ContactGroupMember.contact_id == Contact.id)
            .where(ContactGroupMember.group_id == found.id).order_by(Contact.id))
        audience = Audience("group", found.name, [(c.phone, c) for c in contacts])
    elif tag:
        name = tag.strip().lstrip("#").lower()
        found = session.scalar(select(Tag).where(Tag.name == name))
        if found is None:
            raise BroadcastError(f"there is no tag {name[:40]!r}")
        contacts = session.execute(
            select(*_MEMBER).join(ContactTag, ContactTag.contact_id == Contact.id)
            .where(ContactTag.tag_id == found.id).order_by(Contact.id))
        audience = Audience("tag", found.name, [(c.phone, c) for c in contacts])
    else:
        clean = []
        for raw in numbers:
            number = normalise(raw, country) if isinstance(raw, str) else None
            if number is None:
                raise BroadcastError(f"{str(raw)[:40]!r} is not a phone number")
            clean.append(number)
        clean = list(dict.fromkeys(clean))
        known = _contacts_by_phone(session, clean)
        audience = Audience("numbers", f"{len(clean)} numbers",
                            [(n, known.get(n)) for n in clean])
    if len(audience.members) > MAX_RECIPIENTS:
        raise BroadcastError(f"{len(audience.members)} recipients is too many for one "
                             f"broadcast; at most {MAX_RECIPIENTS}")
    return audience


# What a recipient needs of its contact, read as plain rows: 10,000 ORM objects would
# cost seconds.
_MEMBER = (Contact.id, Contact.phone, Contact.name, Contact.organisation, Contact.opted_out,
           Contact.blocked)


def _contacts_by_phone(session, numbers) -> dict[str, Contact]:
    found = {}
    for i in range(0, len(numbers), _CHUNK):
        for contact in session.execute(select(*_MEMBER).where(
                Contact.phone.in_(numbers[i:i + _CHUNK]))):
            found[contact.phone] = contact
    return found


def skip_reason(contact: Contact | None, number: str) -> str | None:
    """Why this number gets no broadcast: STOP, blocked, or not a phone at all."""
    if contact is not None and contact.opted_out:
        return "opted_out"
    if contact is not None and contact.blocked:
        return "blocked"
    if not is_reachable(number):
        return "not_a_phone"
    return None


# --- preview and create ------------------------------------------------------------------

@dataclass
class Preview:
    text: str
    audience: Audience
    recipients: int = 0         # texts that will go
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (number, reason)
    texts: int = 0              # SMS parts in all: the cost in texts
    max_parts: int = 0
    coding: str = "GSM-7"       # UCS-2 when any recipient's text needs it
    sample: str = ""            # the first recipient's text

    @property
    def total(self) -> int:
        return self.recipients + len(self.skipped)

    def skipped_count(self, reason: str) -> int:
        return sum(1 for _n, r in self.skipped if r == reason)


def preview(audience: Audience, text: str) -> Preview:
    """What sending would do: how many get it, who is skipped and why, and its cost in
    SMS parts as the outbox encodes each recipient's text."""
    text = check_template(text)
    result = Preview(text, audience)
    seen: dict[str, Encoded] = {}  # by shape()
    for number, contact in audience.members:
        reason = skip_reason(contact, number)
        if reason:
            result.skipped.append((number, reason))
            continue
        body = render(text, contact, number)
        if len(body) > MAX_TEXT:
            raise BroadcastError(f"the text for {number} would be {len(body)} characters; at "
                                 f"most {MAX_TEXT} fit")
        key = shape(body)
        if key not in seen:
            seen[key] = encoded(body)
        enc = seen[key]
        result.recipients += 1
        result.texts += enc.parts
        result.max_parts = max(result.max_parts, enc.parts)
        if enc.coding == "UCS-2":
            result.coding = "UCS-2"
        if not result.sample:
            result.sample = body
    if not result.sample:
        result.sample = render(text, None, "")
        enc = encoded(result.sample or " ")
        result.max_parts, result.coding = enc.parts, enc.coding
    return result


def create(session, plan: Preview, user_id: int | None, via: str = "web") -> Broadcast:
    """Make the broadcast of a preview and its recipient rows (skipped ones already
    marked); the daemon's feeder queues the texts. The caller commits."""
    audience = plan.audience
    if not plan.recipients:
        raise BroadcastError("nobody in this audience can be sent the text: "
                             f"{len(plan.skipped)} skipped (opted out, blocked or no phone)"
                             if plan.skipped else "the audience is empty")
    broadcast = Broadcast(text=plan.text, audience_kind=audience.kind,
                          audience=audience.name[:200], status="running", total=plan.total,
                          user_id=user_id, created_at=utcnow())
    session.add(broadcast)
    session.flush()
    skipped = dict(plan.skipped)
    session.execute(insert(BroadcastRecipient), [
        {"broadcast_id": broadcast.id, "number": number,
         "contact_id": contact.id if contact is not None else None,
         "status": "skipped" if number in skipped else "pending",
         "skip_reason": skipped.get(number)} for number, contact in audience.members])
    audit(session, user_id, "broadcast.create", "broadcast", broadcast.id,
          {"audience": f"{audience.kind}: {audience.name}", "recipients": plan.recipients,
           "skipped": len(plan.skipped), "texts": plan.texts, "via": via})
    return broadcast


# --- progress ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Progress:
    broadcast: Broadcast
    pending: int        # not yet in the outbox
    in_outbox: int      # queued or being sent
    sent: int           # sent or delivered
    failed: int         # failed, or unknown (may or may not have left)
    skipped: dict       # reason -> count
    cancelled: int

    @property
    def done_share(self) -> int:
        """Percent of the texts to send that are settled (sent or failed)."""
        to_send = self.pending + self.in_outbox + self.sent + self.failed
        return 100 if not to_send else round(100 * (self.sent + self.failed) / to_send)


def progress(session, broadcast: Broadcast) -> Progress:
    return progress_of(session, [broadcast])[0]


def progress_of(session, items: list[Broadcast]) -> list[Progress]:
    """Each broadcast's figures, from one grouped query for them all."""
    rows = session.execute(
        select(BroadcastRecipient.broadcast_id, BroadcastRecipient.status,
               BroadcastRecipient.skip_reason, Message.status, func.count())
        .outerjoin(Message, Message.id == BroadcastRecipient.message_id)
        .where(BroadcastRecipient.broadcast_id.in_([b.id for b in items]))
        .group_by(BroadcastRecipient.broadcast_id, BroadcastRecipient.status,
                  BroadcastRecipient.skip_reason, Message.status)).all()
    return [_progress(b, [r[1:] for r in rows if r[0] == b.id]) for b in items]


def _progress(broadcast: Broadcast, rows) -> Progress:
    counts = {"pending": 0, "in_outbox": 0, "sent": 0, "failed": 0, "cancelled": 0}
    skipped: dict[str, int] = {}
    for status, reason, message_status, n in rows:
        if status == "skipped":
            skipped[reason] = skipped.get(reason, 0) + n
        elif status in ("pending", "cancelled"):
            counts[status] += n
        elif message_status in ("sent", "delivered"):
            counts["sent"] += n
        elif message_status in ("failed", "unknown"):
            counts["failed"] += n
        else:
            counts["in_outbox"] += n
    return Progress(broadcast, skipped=skipped, **counts)


def skipped_numbers(session, broadcast_id: int, limit: int = 1000) -> list[tuple[str, str]]:
    return [(r.number, r.skip_reason) for r in session.execute(
        select(BroadcastRecipient.number, BroadcastRecipient.skip_reason)
        .where(BroadcastRecipient.broadcast_id == broadcast_id,
               BroadcastRecipient.status == "skipped")
        .order_by(BroadcastRecipient.id).limit(limit))]


# --- pause, resume, cancel ---------------------------------------------------------------

def find(session, broadcast_id: int) -> Broadcast | None:
    return session.get(Broadcast, broadcast_id)


def _get(session, broadcast_id: int) -> Broadcast:
    broadcast = find(session, broadcast_id)
    if broadcast is None:
        raise LookupError(f"there is no broadcast {broadcast_id}")
    return broadcast


def _change(session, broadcast: Broadcast, old: tuple[str, ...], new: str) -> None:
    """running -> paused and the like, conditional on the status read: a double click or
    two people at once change it once, and the second hears why not."""
    values = {"status": new}
    if new in ("cancelled", "done"):
        values["finished_at"] = utcnow()
    changed = session.execute(update(Broadcast).where(
        Broadcast.id == broadcast.id, Broadcast.status.in_(old)).values(**values)
        .execution_options(synchronize_session=False)).rowcount
    if changed != 1:
        session.refresh(broadcast)
        raise BroadcastError(f"broadcast {broadcast.id} is {broadcast.status}; it cannot be "
                             f"made {new}")
    session.refresh(broadcast)


def _take_back(session, broadcast_id: int, to: str) -> int:
    """Texts of this broadcast still waiting in the outbox, taken out again (their
    recipients back to `to`); a text a modem already claimed goes on. Locked first, so a
    claim on another host either has it (skipped here) or waits for this to commit."""
    ids = list(session.scalars(
        select(Message.id).join(BroadcastRecipient, BroadcastRecipient.message_id == Message.id)
        .where(BroadcastRecipient.broadcast_id == broadcast_id, Message.status == "queued")
        .with_for_update(skip_locked=True)))
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        session.execute(update(BroadcastRecipient).where(
            BroadcastRecipient.message_id.in_(chunk)).values(status=to, message_id=None)
            .execution_options(synchronize_session=False))
        session.execute(delete(Message).where(Message.id.in_(chunk), Message.status == "queued")
                        .execution_options(synchronize_session=False))
    return len(ids)


def pause(session, broadcast_id: int, user_id: int | None, via: str = "web") -> Broadcast:
    broadcast = _get(session, broadcast_id)
    _change(session, broadcast, ("running",), "paused")
    taken = _take_back(session, broadcast.id, "pending")
    audit(session, user_id, "broadcast.pause", "broadcast", broadcast.id,
          {"taken_back": taken, "via": via})
    return broadcast


def resume(session, broadcast_id: int, user_id: int | None, via: str = "web") -> Broadcast:
    broadcast = _get(session, broadcast_id)
    _change(session, broadcast, ("paused",), "running")
    audit(session, user_id, "broadcast.resume", "broadcast", broadcast.id, {"via": via})
    return broadcast


def cancel(session, broadcast_id: int, user_id: int | None, via: str = "web") -> Broadcast:
    broadcast = _get(session, broadcast_id)
    _change(session, broadcast, ("running", "paused"), "cancelled")
    taken = _take_back(session, broadcast.id, "cancelled")
    left = session.execute(update(BroadcastRecipient).where(
        BroadcastRecipient.broadcast_id == broadcast.id, BroadcastRecipient.status == "pending")
        .values(status="cancelled").execution_options(synchronize_session=False)).rowcount
    audit(session, user_id, "broadcast.cancel", "broadcast", broadcast.id,
          {"not_sent": taken + left, "via": via})
    return broadcast


def recent(session, limit: int = 30) -> list[Broadcast]:
    return list(session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)))


# --- the feeder (the daemon runs it every few seconds) -----------------------------------

def in_window(config, now: dt.datetime) -> bool:
    """Whether `now` (naive UTC) is inside [broadcasts] window and days, in [web]
    timezone. A window such as 20:00-06:00 runs across midnight."""
    local = now.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(config.timezone))
    if WEEKDAYS[local.weekday()] not in {d.lower() for d in config.broadcast_days}:
        return False
    start, end = parse_window(config.broadcast_window)
    minute = local.hour * 60 + local.minute
    return start <= minute < end if start < end else (minute >= start or minute < end)


def _room(session, config, now: dt.datetime, modems: int) -> int:
    """How many more bulk texts the outbox may take now."""
    waiting = session.scalar(select(func.count()).select_from(Message).where(
        Message.direction == "out", Message.priority == PRIORITY_BULK,
        Message.status.in_(("queued", "sending"))))
    room = WINDOW_PER_MODEM * modems - waiting
    if config.broadcast_rate is not None:  # the last minute's bulk texts, on every host
        recent_count = session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "out", Message.priority == PRIORITY_BULK,
            Message.created_at > now - dt.timedelta(minutes=1)))
        room = min(room, int(config.broadcast_rate * modems) - recent_count)
    return room


def feed(session, config, now: dt.datetime, modems: int = 1) -> list[int]:
    """Queue the next texts of the running broadcasts, as many as the outbox has room
    for; the ids of the texts queued. A broadcast with nobody left pending is done."""
    modems = max(1, modems)
    # Locked, so a pause or cancel either waits for this feed to commit (and then takes
    # back what it queued) or holds the row and is skipped here: a paused broadcast never
    # gets texts queued after the pause (on SQLite, _queue_one's condition sees to it).
    running = list(session.scalars(select(Broadcast).where(Broadcast.status == "running")
                                   .order_by(Broadcast.id).with_for_update(skip_locked=True)))
    if not running or not in_window(config, now):
        return []
    room = _room(session, config, now, modems)
    queued: list[int] = []
    for broadcast in running:
        if room - len(queued) <= 0:
            break
        rows = list(session.scalars(
            select(BroadcastRecipient)
            .where(BroadcastRecipient.broadcast_id == broadcast.id,
                   BroadcastRecipient.status == "pending")
            .order_by(BroadcastRecipient.id).limit(room - len(queued))
            .with_for_update(skip_locked=True)))
        if not rows:
            _finish_if_done(session, broadcast)
            continue
        # Read now, not when the broadcast was made: a STOP since then holds.
        contacts = _contacts_by_phone(session, [r.number for r in rows])
        for row in rows:
            message_id = _queue_one(session, broadcast, row, contacts.get(row.number), now)
            if message_id is not None:
                queued.append(message_id)
    return queued


def _queue_one(session, broadcast: Broadcast, row: BroadcastRecipient,
               contact: Contact | None, now: dt.datetime) -> int | None:
    reason = skip_reason(contact, row.number)
    body = render(broadcast.text, contact, row.number)
    if reason is None and len(body) > MAX_TEXT:
        reason = "too_long"
    # Conditional on `pending`: a second host that read the same row changes nothing;
    # and on the broadcast still running when this writes: on SQLite the reads above may
    # come before a pause another process committed since (its lock covers no row).
    taken = session.execute(update(BroadcastRecipient).where(
        BroadcastRecipient.id == row.id, BroadcastRecipient.status == "pending",
        select(Broadcast.id).where(Broadcast.id == broadcast.id,
                                   Broadcast.status == "running").exists())
        .values(status="skipped" if reason else "queued", skip_reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    if taken != 1 or reason:
        return None
    try:
        message = queue_message(session, row.number, body, user_id=broadcast.user_id,
                                contact_id=contact.id if contact else None, flush=False)
    except OutboxError:  # the template checks make this unreachable; kept as skipped
        session.execute(update(BroadcastRecipient).where(BroadcastRecipient.id == row.id)
                        .values(status="skipped", skip_reason="too_long"))
        return None
    message.priority = PRIORITY_BULK
    message.created_at = now  # the daemon's clock, which [broadcasts] rate counts by
    session.flush()
    session.execute(update(BroadcastRecipient).where(BroadcastRecipient.id == row.id)
                    .values(message_id=message.id)
                    .execution_options(synchronize_session=False))
    return message.id


def _finish_if_done(session, broadcast: Broadcast) -> None:
    left = session.scalar(select(func.count()).select_from(BroadcastRecipient).where(
        BroadcastRecipient.broadcast_id == broadcast.id, BroadcastRecipient.status == "pending"))
    if not left:
        session.execute(update(Broadcast).where(
            Broadcast.id == broadcast.id, Broadcast.status == "running")
            .values(status="done", finished_at=utcnow())
            .execution_options(synchronize_session=False))


# --- contact groups (the audiences; their pages are on /contacts) -------------------------

MAX_GROUP_NAME = 100


def clean_group_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise BroadcastError("a group needs a name")
    if len(name) > MAX_GROUP_NAME:
        raise BroadcastError(f"a group's name is at most {MAX_GROUP_NAME} characters")
    return name


def group_names(session) -> list[str]:
    return list(session.scalars(select(ContactGroup.name).order_by(ContactGroup.name)))


def all_groups(session) -> list[ContactGroup]:
    return list(session.scalars(select(ContactGroup).order_by(ContactGroup.name)))


def groups_of(session, contact_id: int) -> list[ContactGroup]:
    return list(session.scalars(
        select(ContactGroup).join(ContactGroupMember,
                                  ContactGroupMember.group_id == ContactGroup.id)
        .where(ContactGroupMember.contact_id == contact_id).order_by(ContactGroup.name)))


def create_group(session, name: str, user_id: int | None) -> ContactGroup:
    """A new group; BroadcastError if the name is taken (the unique index settles a race:
    the caller turns its IntegrityError into the same sentence)."""
    name = clean_group_name(name)
    if session.scalar(select(ContactGroup.id).where(ContactGroup.name == name)) is not None:
        raise BroadcastError(f"there is a group {name!r} already")
    group = ContactGroup(name=name, created_at=utcnow())
    session.add(group)
    session.flush()
    audit(session, user_id, "group.create", "contact_group", group.id, {"name": name})
    return group


def set_member(session, group_id: int, contact_id: int, member: bool,
               user_id: int | None) -> bool:
    """Put a contact into a group or take it out; whether anything changed."""
    group = session.get(ContactGroup, group_id)
    if group is None:
        raise BroadcastError(f"there is no contact group {group_id}")
    found = session.get(ContactGroupMember, (group_id, contact_id))
    if member == (found is not None):
        return False
    if member:
        session.add(ContactGroupMember(group_id=group_id, contact_id=contact_id))
    else:
        session.delete(found)
    session.flush()
    audit(session, user_id, "contact.group_add" if member else "contact.group_remove",
          "contact", contact_id, {"group": group.name})
    return True


def group_filter(name: str) -> list:
    """The contact list's `group` filter, as conditions on Contact."""
    return [Contact.id.in_(select(ContactGroupMember.contact_id)
                           .join(ContactGroup, ContactGroup.id == ContactGroupMember.group_id)
                           .where(ContactGroup.name == name))]
