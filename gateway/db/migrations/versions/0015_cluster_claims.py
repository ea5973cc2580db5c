"""cluster claims: several gateway hosts on one database (MariaDB Galera, PostgreSQL)

gateway_nodes: each `helpdesk run` host and when it last beat, so the others can tell a
dead host (its `sending` texts become `unknown` after its lease) and share the outbox
among the living. messages.claimed_at: when a text was claimed. modems.host: the host
whose daemon has the modem and writes its health.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
         "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade():
    op.create_table(
        "gateway_nodes",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.Column("lease", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gateway_nodes")),
        **MYSQL,
    )
    # Plain ADD COLUMNs: SQLite keeps the tables (and 0009's FTS triggers on messages),
    # InnoDB adds them in place.
    op.add_column("messages", sa.Column("claimed_at", sa.DateTime(), nullable=True))
    op.add_column("modems", sa.Column("host", sa.String(length=128), nullable=True))


def downgrade():
    op.drop_column("modems", "host")  # SQLite 3.35+ drops a plain column in place
    op.drop_column("messages", "claimed_at")
    op.drop_table("gateway_nodes")
