"""Claims shared by several gateway hosts (gateway.desk.outbox): spread over the queue,
a heartbeat, and a dead host's texts in flight made `unknown` after its lease. On SQLite,
MariaDB and PostgreSQL; tests/cluster/test_galera.py runs them on a real Galera cluster."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from gateway.db.models import GatewayNode, Message, utcnow
from gateway.desk import outbox


def queue(db, count, priority=0):
    rows = [Message(direction="out", number=f"+6281234{i:06d}", text=f"t{i}", status="queued",
                    priority=priority) for i in range(count)]
    db.add_all(rows)
    db.commit()
    return [r.id for r in rows]


def test_hosts_reading_the_same_queue_try_different_rows(db):
    queue(db, 30)
    now = utcnow()
    rows = db.execute(outbox._DUE, {"now": now, "limit": 30}).all()
    picks = [{r.id for r in outbox.spread(rows, slot, 3, 4)} for slot in range(3)]
    assert all(len(p) == 4 for p in picks)
    assert not (picks[0] & picks[1]) and not (picks[1] & picks[2]) and not (picks[0] & picks[2])
    # Rows of one host's share alone (it died, its lease not yet out): the others take
    # them each from a point of its own.
    orphans = [r for r in rows if r.id % 3 == 0]
    firsts = {outbox.spread(orphans, slot, 3, 1)[0].id for slot in range(3)}
    assert len(firsts) == 3


def test_a_lower_priority_comes_first_whoever_it_falls_to(db):
    bulk = queue(db, 12, priority=1)
    [reply] = queue(db, 1, priority=0)
    rows = db.execute(outbox._DUE, {"now": utcnow(), "limit": 13}).all()
    for slot in range(3):
        assert outbox.spread(rows, slot, 3, 1)[0].id == reply
    assert outbox.spread(rows, 0, 1, 2)[1].id == bulk[0]


def test_claims_of_three_hosts_are_disjoint_and_all_of_the_queue(db):
    ids = queue(db, 24)
    now = utcnow()
    taken = {}
    for round_ in range(4):
        for slot, node in enumerate(("a", "b", "c")):
            for item in outbox.claim(db, node, now, 2, slot, 3):
                assert item.id not in taken, (round_, node)
                taken[item.id] = node
            db.commit()
    assert sorted(taken) == ids
    assert set(taken.values()) == {"a", "b", "c"}
    claimed = db.scalars(select(Message).where(Message.id.in_(ids))).all()
    assert all(m.status == "sending" and m.claimed_at is not None for m in claimed)


def test_a_host_silent_past_its_lease_has_its_texts_in_flight_marked_unknown(db):
    start = utcnow().replace(microsecond=0)
    assert outbox.beat(db, "a", start, 10) == outbox.Beat(0, 1, {})
    assert outbox.beat(db, "b", start, 10) == outbox.Beat(1, 2, {})
    db.commit()
    queue(db, 4)
    in_hand = [item.id for item in outbox.claim(db, "a", start, 2, 0, 2)]
    assert len(in_hand) == 2
    assert len(outbox.claim(db, "b", start, 2, 1, 2)) == 2
    db.commit()
    # b beats no more; within its lease nothing happens to its texts
    soon = outbox.beat(db, "a", start + dt.timedelta(seconds=9), 10, in_hand)
    assert (soon.peers, soon.taken_over) == (2, {})
    later = outbox.beat(db, "a", start + dt.timedelta(seconds=11), 10, in_hand)
    db.commit()
    assert later == outbox.Beat(0, 1, {"b": 2})
    db.expire_all()
    rows = db.scalars(select(Message).order_by(Message.id)).all()
    mine = [m.status for m in rows if m.claimed_by == "a"]
    theirs = [m for m in rows if m.claimed_by == "b"]
    assert mine == ["sending", "sending"]  # a's own, still in flight
    assert [m.status for m in theirs] == ["unknown", "unknown"]  # never sent again
    assert all("host b stopped answering" in m.last_error for m in theirs)
    # b comes back: it is counted again, and nothing more is taken
    back = outbox.beat(db, "b", start + dt.timedelta(seconds=12), 10)
    assert (back.slot, back.peers, back.taken_over, back.released) == (1, 2, {}, 0)
    assert db.get(GatewayNode, "b").started_at == start


def test_a_claim_whose_answer_was_lost_is_queued_again_by_its_own_host(db):
    """The COMMIT of a claim went through but the connection broke before its answer:
    the host never had those texts, so after a lease its beat queues them again, and
    leaves alone what it has in hand and what it claimed just now."""
    start = utcnow().replace(microsecond=0)
    outbox.beat(db, "a", start, 10)
    queue(db, 3)
    lost = [item.id for item in outbox.claim(db, "a", start, 2)]
    db.commit()
    in_hand = lost[:1]  # the dispatcher got the first, the second's answer was lost
    young = [item.id for item in outbox.claim(db, "a", start + dt.timedelta(seconds=8), 1)]
    db.commit()
    result = outbox.beat(db, "a", start + dt.timedelta(seconds=11), 10, in_hand)
    db.commit()
    assert result.released == 1
    db.expire_all()
    rows = {m.id: m for m in db.scalars(select(Message))}
    assert rows[lost[0]].status == "sending" and rows[young[0]].status == "sending"
    again = rows[lost[1]]
    assert (again.status, again.claimed_by, again.attempts) == ("queued", None, 0)
    assert "queued again" in again.last_error
    # and it goes out as any queued text does, once
    assert [item.id for item in outbox.claim(db, "a", start + dt.timedelta(seconds=12), 5)] \
        == [lost[1]]
