"""Broadcasts in the domain: who gets the text (STOP and blocked never do), the template's
fields, the cost preview, pacing into the outbox, pause/cancel, and a restart that sends
nobody twice."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from gateway import cli
from gateway.db.models import (
    PRIORITY_BULK,
    AuditLog,
    Broadcast,
    BroadcastRecipient,
    Contact,
    ContactGroup,
    ContactGroupMember,
    Message,
)
from gateway.desk import broadcasts, crm
from gateway.desk.outbox import claim, queue_message

# 10:00 in Jakarta (UTC+7) on Wednesday 2026-12-02: inside the default 08:00-20:00 window.
NOON = dt.datetime(2026, 12, 2, 3, 0)


def contact(db, phone, name=None, group=None, tags="", **flags) -> Contact:
    row = Contact(phone=phone, name=name, **flags)
    db.add(row)
    db.flush()
    if tags:
        crm.update_contact(db, row, None, tags=tags)
    if group is not None:
        db.add(ContactGroupMember(group_id=group.id, contact_id=row.id))
    db.flush()
    return row


@pytest.fixture
def group(db):
    row = ContactGroup(name="Pelanggan Jakarta")
    db.add(row)
    db.flush()
    contact(db, "+6281100000001", "Budi", row, tags="vip")
    contact(db, "+6281100000002", "Sari", row, opted_out=True)
    contact(db, "+6281100000003", "Joko", row, blocked=True, tags="vip")
    contact(db, "+6281100000004", None, row)
    db.commit()
    return row


def make(db, config, text="Halo {name}, promo pulsa hari ini!", **audience):
    found = broadcasts.resolve(db, config.country, **audience)
    plan = broadcasts.preview(found, text)
    made = broadcasts.create(db, plan, None, via="test")
    db.commit()
    return made, plan


def outbox(db) -> list[Message]:
    db.expire_all()
    return list(db.scalars(select(Message).where(Message.direction == "out")
                           .order_by(Message.id)))


def test_a_group_skips_the_opted_out_and_the_blocked_and_says_which(db, config, group):
    made, plan = make(db, config, group="Pelanggan Jakarta")
    assert (plan.total, plan.recipients) == (4, 2)
    assert sorted(plan.skipped) == [("+6281100000002", "opted_out"),
                                    ("+6281100000003", "blocked")]
    progress = broadcasts.progress(db, made)
    assert progress.pending == 2 and progress.skipped == {"opted_out": 1, "blocked": 1}
    assert db.scalar(select(AuditLog.action).where(AuditLog.target_type == "broadcast",
                                                   AuditLog.target_id == made.id)) == \
        "broadcast.create"


def test_the_template_takes_the_contacts_fields_and_a_missing_name_leaves_no_gap(
        db, config, group):
    make(db, config, group="Pelanggan Jakarta")
    broadcasts.feed(db, config, NOON, modems=2)
    db.commit()
    texts = {m.number: m.text for m in outbox(db)}
    assert texts == {"+6281100000001": "Halo Budi, promo pulsa hari ini!",
                     "+6281100000004": "Halo, promo pulsa hari ini!"}
    assert {m.priority for m in outbox(db)} == {PRIORITY_BULK}


@pytest.mark.parametrize("text, words", [
    ("Halo {nama}", "{nama}"), ("", "empty"), ("x" * 1531, "1531 characters"),
    ("Halo {name.__class__}", "{name.__class__}")])
def test_a_bad_template_is_refused_with_words(db, config, group, text, words):
    with pytest.raises(broadcasts.BroadcastError, match=words.replace(".", r"\.")
                       .replace("{", r"\{").replace("}", r"\}")):
        make(db, config, text=text, group="Pelanggan Jakarta")
    assert db.scalar(select(func.count()).select_from(Broadcast)) == 0


def test_a_tag_and_numbers_are_audiences_too_and_an_unknown_number_is_still_sent(
        db, config, group):
    _made, plan = make(db, config, tag="#VIP")
    assert plan.recipients == 1 and plan.skipped == [("+6281100000003", "blocked")]
    numbers = broadcasts.parse_numbers(
        b"phone\n0811 0000 0002\n+62 811-0000-0009\n081100000009\n", "ID")
    assert numbers == ["+6281100000002", "+6281100000009"]
    _made, plan = make(db, config, numbers=numbers)
    assert plan.recipients == 1 and plan.skipped == [("+6281100000002", "opted_out")]


def test_a_file_with_bad_lines_names_every_one_and_makes_nothing(db, config):
    with pytest.raises(broadcasts.BroadcastError, match="line 2: 'abc'; line 4: '12'"):
        broadcasts.parse_numbers("081100000001\nabc\n081100000002\n12\n", "ID")
    with pytest.raises(broadcasts.BroadcastError, match="exactly one audience"):
        broadcasts.resolve(db, "ID", group="x", tag="y")
    with pytest.raises(broadcasts.BroadcastError, match="no contact group 'nope'"):
        broadcasts.resolve(db, "ID", group="nope")


def test_the_preview_counts_parts_as_the_outbox_encodes(db, config, group):
    found = broadcasts.resolve(db, "ID", group="Pelanggan Jakarta")
    plan = broadcasts.preview(found, "Halo {name}! " + "promo " * 30)
    assert (plan.coding, plan.max_parts, plan.texts) == ("GSM-7", 2, 4)
    plan = broadcasts.preview(found, "Halo {name} 🎉 diskon")
    assert (plan.coding, plan.max_parts, plan.texts) == ("UCS-2", 1, 2)


def test_the_outbox_holds_a_small_window_and_a_reply_goes_first(db, config):
    for i in range(10):
        contact(db, f"+62812000000{i:02d}", f"C{i}", tags="promo")
    db.commit()
    make(db, config, tag="promo")
    assert len(broadcasts.feed(db, config, NOON, modems=1)) == broadcasts.WINDOW_PER_MODEM
    assert broadcasts.feed(db, config, NOON, modems=1) == []  # full: nothing more
    reply = queue_message(db, "+6281999999999", "Pesanan Anda sudah dikirim")
    db.commit()
    taken = claim(db, "node", NOON, limit=1)
    assert [t.id for t in taken] == [reply.id]


def test_outside_the_window_or_the_days_nothing_is_queued(db, config, group):
    make(db, config, group="Pelanggan Jakarta")
    night = dt.datetime(2026, 12, 2, 14, 0)  # 21:00 in Jakarta
    assert broadcasts.feed(db, config, night) == []
    weekdays = dataclasses.replace(config, broadcast_days=("mon", "tue"))
    assert broadcasts.feed(db, weekdays, NOON) == []  # a Wednesday
    late = dataclasses.replace(config, broadcast_window="20:00-06:00")
    assert broadcasts.feed(db, late, night) != []


def test_the_rate_caps_bulk_texts_per_minute(db, config):
    for i in range(10):
        contact(db, f"+62812000000{i:02d}", tags="promo")
    db.commit()
    make(db, config, tag="promo")
    slow = dataclasses.replace(config, broadcast_rate=3)
    first = broadcasts.feed(db, slow, NOON, modems=2)  # window 4, rate 3 per modem
    db.execute(Message.__table__.update().values(status="sent"))
    db.commit()
    second = broadcasts.feed(db, slow, NOON + dt.timedelta(seconds=30), modems=2)
    db.execute(Message.__table__.update().values(status="sent"))
    db.commit()
    third = broadcasts.feed(db, slow, NOON + dt.timedelta(seconds=61), modems=2)
    assert (len(first), len(second), len(third)) == (4, 2, 4)


def test_a_stop_after_the_broadcast_was_made_is_honoured(db, config, group):
    made, _ = make(db, config, group="Pelanggan Jakarta")
    budi = db.scalar(select(Contact).where(Contact.name == "Budi"))
    budi.opted_out = True
    db.commit()
    broadcasts.feed(db, config, NOON)
    db.commit()
    assert [m.number for m in outbox(db)] == ["+6281100000004"]
    assert broadcasts.progress(db, made).skipped["opted_out"] == 2


def test_a_restart_sends_nobody_twice(sessionmaker, db, config):
    for i in range(7):
        contact(db, f"+62812000000{i:02d}", tags="promo")
    db.commit()
    made, _ = make(db, config, tag="promo")
    broadcasts.feed(db, config, NOON, modems=2)
    db.commit()
    db.execute(Message.__table__.update().values(status="sent"))
    db.commit()
    # A crash mid-feed: the transaction that queued texts is rolled back with its marks.
    with sessionmaker() as crashed:
        assert broadcasts.feed(crashed, config, NOON, modems=2)
        crashed.rollback()
    for _ in range(5):  # the restarted daemon goes on where the commit left it
        with sessionmaker() as session:
            broadcasts.feed(session, config, NOON, modems=2)
            session.commit()
        db.execute(Message.__table__.update().values(status="sent"))
        db.commit()
    numbers = [m.number for m in outbox(db)]
    assert sorted(numbers) == sorted(set(numbers)) and len(numbers) == 7
    recipients = db.scalars(select(BroadcastRecipient).where(
        BroadcastRecipient.broadcast_id == made.id)).all()
    assert all(r.message_id is not None and r.status == "queued" for r in recipients)
    db.expire_all()
    assert db.get(Broadcast, made.id).status == "done"
    assert broadcasts.progress(db, made).sent == 7


def test_pause_takes_back_what_waits_and_resume_and_cancel_follow(db, config):
    for i in range(6):
        contact(db, f"+62812000000{i:02d}", tags="promo")
    db.commit()
    made, _ = make(db, config, tag="promo")
    broadcasts.feed(db, config, NOON, modems=2)
    db.commit()
    sending = claim(db, "node", NOON, limit=1)  # one is with a modem already
    db.commit()
    broadcasts.pause(db, made.id, None)
    db.commit()
    assert [m.id for m in outbox(db)] == [sending[0].id]
    assert broadcasts.feed(db, config, NOON, modems=2) == []
    with pytest.raises(broadcasts.BroadcastError, match="is paused"):
        broadcasts.pause(db, made.id, None)
    broadcasts.resume(db, made.id, None)
    assert len(broadcasts.feed(db, config, NOON, modems=2)) == 3  # the window, minus one
    db.commit()
    broadcasts.cancel(db, made.id, None)
    db.commit()
    progress = broadcasts.progress(db, made)
    assert (progress.cancelled, progress.in_outbox, progress.pending) == (5, 1, 0)
    assert len(outbox(db)) == 1
    actions = db.scalars(select(AuditLog.action).where(AuditLog.target_type == "broadcast")
                         .order_by(AuditLog.id)).all()
    assert actions == ["broadcast.create", "broadcast.pause", "broadcast.resume",
                       "broadcast.cancel"]


@pytest.mark.parametrize("first", ["feeder", "pause"])
def test_a_pause_at_the_same_time_as_the_feeder_leaves_nothing_queued(
        engine, sessionmaker, db, config, first):
    for i in range(6):
        contact(db, f"+62812000000{i:02d}", tags="promo")
    db.commit()
    made, _ = make(db, config, tag="promo")
    fed = []

    def feed():
        with sessionmaker() as session:
            fed.extend(broadcasts.feed(session, config, NOON, modems=2))
            session.commit()

    def pause():
        with sessionmaker() as session:
            broadcasts.pause(session, made.id, None)
            session.commit()

    # One transaction is open (uncommitted) while the other runs in a second session.
    with sessionmaker() as held:
        if first == "feeder":
            fed.extend(broadcasts.feed(held, config, NOON, modems=2))
            assert fed  # queued, not yet committed
            other = threading.Thread(target=pause)
        else:
            broadcasts.pause(held, made.id, None)
            other = threading.Thread(target=feed)
        other.start()
        other.join(1.0)  # the pause waits for the feed's lock; the feed skips the pause's
        held.commit()
    other.join(60)
    assert not other.is_alive()
    db.expire_all()
    assert db.get(Broadcast, made.id).status == "paused"
    assert [m for m in outbox(db) if m.status == "queued"] == []
    recipients = db.scalars(select(BroadcastRecipient.status).where(
        BroadcastRecipient.broadcast_id == made.id)).all()
    assert recipients == ["pending"] * 6
    if first == "pause":
        assert fed == []


# --- the CLI -----------------------------------------------------------------------------

@pytest.fixture
def run(db_url, engine, tmp_path, capsys):
    path = tmp_path / "h.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n')

    def call(*argv):
        code = cli.main(["--config", str(path), *argv])
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def test_the_cli_sends_to_a_group_a_tag_or_a_file_and_skips_stop(run, db, group, tmp_path):
    code, out, _ = run("broadcast", "send", "--group", "Pelanggan Jakarta", "--preview",
                       "Halo {name}")
    assert code == 0 and "2 texts would go (2 SMS, GSM-7" in out
    assert "skipped +6281100000002: opted out" in out and "skipped +6281100000003: blocked" in out
    assert db.scalar(select(func.count()).select_from(Broadcast)) == 0
    code, out, _ = run("broadcast", "send", "--tag", "vip", "Halo {name}")
    assert code == 0 and "1 texts to send" in out and "broadcast 1 made" in out
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("phone\n0811 0000 0002\n0812 9999 0000\n")
    code, out, _ = run("broadcast", "send", "--numbers-file", str(numbers), "Promo")
    assert code == 0 and "skipped +6281100000002: opted out" in out
    code, out, _ = run("broadcast", "list")
    assert code == 0 and "\trunning\t2\t0\t1\tvip\n" in out
    assert run("broadcast", "pause", "1")[:2] == (0, "helpdesk: broadcast 1 paused\n")
    code, _, err = run("broadcast", "pause", "1")
    assert code == 2 and "broadcast 1 is paused" in err
    assert run("broadcast", "cancel", "1")[0] == 0
    code, _, err = run("broadcast", "resume", "99")
    assert code == 2 and "there is no broadcast 99" in err


def test_the_cli_says_what_is_wrong_and_makes_nothing(run, db, group, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0812 9999 0000\nbukan\n")
    code, _, err = run("broadcast", "send", "--numbers-file", str(bad), "Promo")
    assert code == 2 and "line 2: 'bukan'" in err
    code, _, err = run("broadcast", "send", "--numbers-file", str(tmp_path / "none"), "Promo")
    assert code == 2 and "No such file" in err
    code, _, err = run("broadcast", "send", "--group", "Pelanggan Jakarta", "Halo {nama}")
    assert code == 2 and "{nama}" in err
    assert db.scalar(select(func.count()).select_from(Broadcast)) == 0


@pytest.mark.parametrize("first, second", [
    ("Halo Budi, promo!", "Hxyz Sari; 12345?"),
    ("a" * 160, "Z" * 160),
    ("a" * 152 + "€" + "b" * 10, "q" * 152 + "€" + "r" * 10),  # an escape at a part's end
    ("Diskon 🎉 " + "x" * 60, "Promo! 🎉 " + "y" * 60),         # a surrogate pair, UCS-2
])
def test_texts_of_one_shape_are_encoded_alike_so_the_preview_asks_gammu_once(first, second):
    assert broadcasts.shape(first) == broadcasts.shape(second)
    assert broadcasts.encoded(first) == broadcasts.encoded(second)
