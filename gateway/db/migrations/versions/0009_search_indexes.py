"""full-text search of texts, names and subjects; indexes that serve each list's order

SQLite: FTS5 tables over messages.text, contacts.name and tickets.subject (external
content: the words only, the text stays in its table), filled now and kept by triggers.
MariaDB: InnoDB FULLTEXT indexes on the same columns. PostgreSQL: GIN indexes on
to_tsvector('simple', column). gateway/desk/search.py is what reads them. Then the
statistics, so the planner knows the tables' sizes from the start.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
# Must stay after every migration that rebuilds contacts or tickets on SQLite
# (batch_alter_table copies a table and drops the old one, and with it the FTS triggers
# made here); a later one that must rebuild them makes the triggers again.
depends_on = None

SEARCHED = (("messages", "text"), ("contacts", "name"), ("tickets", "subject"))

# Composite indexes for the lists' orders: the queue by status and last change, a
# contact's texts and calls by id (orders and payments have theirs from 0007). InnoDB
# adds the primary key to each, SQLite its rowid.
INDEXES = (
    ("ix_tickets_status_updated_at", "tickets", ["status", "updated_at"]),
    ("ix_tickets_assignee_id_status", "tickets", ["assignee_id", "status"]),
    ("ix_messages_contact_id_id", "messages", ["contact_id", "id"]),
    ("ix_calls_contact_id_id", "calls", ["contact_id", "id"]),
)

# The few texts marked for a person (counted on every page), a partial index where the
# database has them: SQLite's statistics count the NULLs as one value, so a plain index
# on attention looked useless to its planner beside the direction index.
MARKED = "ix_messages_attention_marked"


def sqlite_fts(table: str, column: str) -> list[str]:
    """The FTS5 table of `table.column` and the triggers that keep it, as SQL.

    A later migration that rebuilds `table` with batch_alter_table drops these triggers
    with the old table: it must run these statements again (and a 'rebuild')."""
    fts = f"{table}_fts"
    insert = f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});"
    delete = (f"INSERT INTO {fts}({fts}, rowid, {column}) "
              f"VALUES ('delete', old.id, old.{column});")
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({column}, content='{table}', "
        f"content_rowid='id', columnsize=0, tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} BEGIN {insert} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN {delete} END",
        f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {column} ON {table} "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",  # the rows already there
    ]


def upgrade():
    dialect = op.get_bind().dialect.name
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    if dialect in ("sqlite", "postgresql"):  # MariaDB's ranges count NULLs as they are
        marked = sa.text("attention IS NOT NULL")
        op.create_index(MARKED, "messages", ["direction", "attention"], sqlite_where=marked,
                        postgresql_where=marked)
    for table, column in SEARCHED:
        if dialect == "sqlite":
            for statement in sqlite_fts(table, column):
                op.execute(statement)
        elif dialect in ("mysql", "mariadb"):
            op.execute(f"ALTER TABLE {table} ADD FULLTEXT INDEX ft_{table}_{column} ({column})")
        elif dialect == "postgresql":
            op.execute(f"CREATE INDEX ft_{table}_{column} ON {table} "
                       f"USING gin (to_tsvector('simple', {column}))")
    if dialect == "sqlite":
        op.execute("ANALYZE")
    elif dialect == "postgresql":
        op.execute("ANALYZE")


def downgrade():
    dialect = op.get_bind().dialect.name
    for table, column in SEARCHED:
        if dialect == "sqlite":
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
        elif dialect in ("mysql", "mariadb"):
            # A copy, not in place: MariaDB 10.11 keeps the hidden FTS_DOC_ID otherwise,
            # and an index added again later would miss every row written meanwhile.
            op.execute(f"ALTER TABLE {table} DROP INDEX ft_{table}_{column}, ALGORITHM=COPY")
        else:
            op.drop_index(f"ft_{table}_{column}", table_name=table)
    if dialect in ("sqlite", "postgresql"):
        op.drop_index(MARKED, table_name="messages")
    for name, table, columns in reversed(INDEXES):
        if dialect in ("mysql", "mariadb") and columns[0].endswith("_id"):
            # InnoDB dropped its own index of the foreign key when this one could serve
            # it, and refuses to drop the last: one for the key alone first.
            op.create_index(f"ix_{table}_{columns[0]}", table, [columns[0]])
        op.drop_index(name, table_name=table)
