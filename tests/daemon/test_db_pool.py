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
