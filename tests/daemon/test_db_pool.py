"""The database pool: transactions run again after a conflict, never half-applied."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from gateway.db.models import Contact
from gateway.db.transaction import in_transaction


def test_conflict_runs_the_whole_transaction_again(sessionmaker):
    calls = []

    def add_contact(session):
        calls.append(1)
        session.add(Contact(phone=f"+628120000000{len(calls)}"))
        session.flush()
        if len(calls) == 1:  # as SQLite reports a writer that lost the race
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        return len(calls)

    assert in_transaction(sessionmaker, add_contact) == 2
    with sessionmaker() as s:
        phones = s.scalars(select(Contact.phone)).all()
    assert phones == ["+6281200000002"]  # the first attempt was rolled back


def test_other_errors_are_not_retried(sessionmaker):
    calls = []

    def broken(session):
        calls.append(1)
        raise OperationalError("SELECT", {}, Exception("no such table: nope"))

    with pytest.raises(OperationalError):
        in_transaction(sessionmaker, broken)
    assert len(calls) == 1
    with sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(Contact)) == 0


def test_a_real_deadlock_is_run_again(sessionmaker):
    """Two transactions take the same two rows in opposite order: MariaDB (1213) and
    PostgreSQL (40P01) abort one, which runs again; SQLite makes the second writer wait.
    Either way both complete."""
    import threading

    with sessionmaker.begin() as s:
        s.add_all([Contact(phone="+6281200000001", name="a"),
                   Contact(phone="+6281200000002", name="b")])
    first_locked, second_locked = threading.Event(), threading.Event()
    attempts, errors = [], []

    def swap(session, mine, theirs, locked, other):
        attempts.append(mine)
        session.query(Contact).filter_by(phone=mine).update({"name": mine[-1]})
        session.flush()
        locked.set()
        other.wait(timeout=3)  # SQLite: the other writer waits for this one's commit
        session.query(Contact).filter_by(phone=theirs).update({"name": mine[-1]})

    def run(*args):
        try:
            in_transaction(sessionmaker, swap, *args)
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    one, two = "+6281200000001", "+6281200000002"
    threads = [threading.Thread(target=run, args=(one, two, first_locked, second_locked)),
               threading.Thread(target=run, args=(two, one, second_locked, first_locked))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with sessionmaker() as s:
        names = set(s.scalars(select(Contact.name)))
    assert names in ({"1"}, {"2"})  # one transaction's both updates, then the other's
    if sessionmaker.kw["bind"].dialect.name != "sqlite":
        assert len(attempts) == 3  # the one the server aborted ran again
