"""The migrations build exactly the schema the models describe, and can be walked back.

Several people add columns and indexes at once; a column in the models that no migration
creates would only show on a user's upgraded database, so this compares the two on every
database the suite runs on.
"""
from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from gateway.db import schema
from gateway.db.models import Base, Contact, Message, User

# What the migrations make that the models do not describe, on purpose: the full-text
# indexes gateway/desk/search.py reads by name (SQLite's FTS5 tables and their shadow
# tables, MariaDB's FULLTEXT indexes) and the partial index only SQLite and PostgreSQL
# have; and LONGTEXT, the MariaDB variant of a long Text column.
FTS = ("messages_fts", "contacts_fts", "tickets_fts")
PARTIAL = "ix_messages_attention_marked"


def _ours(diff, dialect: str) -> bool:
    """A difference that is not one of the deliberate ones above."""
    if isinstance(diff, list):  # a column's changes
        [(op, *_, existing, new)] = diff
        return not (op == "modify_type" and type(existing).__name__ == "LONGTEXT"
                    and type(new).__name__ == "Text")
    op, thing = diff[0], diff[1]
    if op in ("remove_table", "add_table"):
        return not thing.name.startswith(FTS)
    if op == "remove_index":
        return not thing.name.startswith("ft_")
    if op == "add_index":
        return not (thing.name == PARTIAL and dialect == "mysql")
    return True


def test_the_migrations_make_the_models_schema(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = [d for d in compare_metadata(context, Base.metadata)
                       if _ours(d, engine.dialect.name)]
    assert differences == [], "a model and its migration disagree:\n" + "\n".join(
        map(str, differences))


def test_the_history_is_one_line_and_the_database_is_at_its_head(engine):
    config = schema._alembic_config(engine)
    # One head, and the one `helpdesk run` checks for without loading Alembic.
    assert ScriptDirectory.from_config(config).get_heads() == [schema.HEAD]
    schema.check_current(engine)  # raises unless the database is at that head


def test_every_migration_can_be_undone_and_done_again(engine):
    config = schema._alembic_config(engine)
    try:
        command.downgrade(config, "0001")
        with pytest.raises(schema.SchemaOutdated, match="is at schema 0001, this version "
                           f"needs {schema.HEAD}: run `helpdesk init`"):
            schema.check_current(engine)
        command.upgrade(config, "heads")
        schema.check_current(engine)
    finally:
        # The walk back leaves MariaDB an index for a foreign key that a fresh schema
        # lacks: no version, so the next test builds the schema anew (tests/conftest.py).
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM alembic_version"))


def test_0017_finds_who_waits_from_the_texts_of_an_upgraded_database(engine):
    """Tickets made before 0017: waiting since the first text after a person's answer
    (an acknowledgement is no answer), and the queue's key from that wait."""
    config = schema._alembic_config(engine)
    try:
        command.downgrade(config, "0016")
        with engine.begin() as conn:
            # contacts, users and messages are as 0016 left them: the models' defaults fit
            conn.execute(Contact.__table__.insert().values(id=1, phone="+6281200000001"))
            conn.execute(User.__table__.insert().values(id=1, name="ani", role="operator",
                                                        password_hash="x"))
            for ticket, status, priority in ((1, "open", "normal"), (2, "new", "urgent"),
                                             (3, "closed", "normal")):
                conn.execute(text(
                    "INSERT INTO tickets (id, kind, status, subject, contact_id, created_at, "
                    "updated_at, priority) VALUES (:t, 'question', :s, '', 1, "
                    "'2026-11-01 08:00:00', '2026-11-01 08:00:00', :p)"),
                    {"t": ticket, "s": status, "p": priority})
            texts = [  # ticket, direction, user, minute
                (1, "in", None, 0), (1, "out", None, 1), (1, "out", 1, 5), (1, "in", None, 7),
                (1, "in", None, 9),                      # 1 waits since 08:07
                (2, "in", None, 2), (2, "out", None, 3),  # 2 waits since 08:02 (an ack)
                (3, "in", None, 4)]                       # 3 is closed: nobody waits
            for ticket, direction, user, minute in texts:
                conn.execute(Message.__table__.insert().values(
                    direction=direction, number="+6281200000001", text="x", status="sent",
                    ticket_id=ticket, user_id=user,
                    created_at=dt.datetime(2026, 11, 1, 8, minute)))
        command.upgrade(config, "heads")
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, waiting_since, queue_rank, queue_since "
                                     "FROM tickets ORDER BY id")).all()
        found = [(i, str(w)[:16] if w else None, r, str(q)[:16]) for i, w, r, q in rows]
        assert found == [(1, "2026-11-01 08:07", 2, "2026-11-01 08:07"),
                         (2, "2026-11-01 08:02", 0, "2026-11-01 08:02"),
                         (3, None, 14, "2026-11-01 08:00")]  # closed: after the open
    finally:
        with engine.begin() as conn:  # as above: the next test builds the schema anew
            conn.execute(text("DELETE FROM alembic_version"))


def test_run_names_a_database_without_a_schema(engine):
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(schema.SchemaOutdated, match="has no helpdesk schema"):
        schema.check_current(engine)
