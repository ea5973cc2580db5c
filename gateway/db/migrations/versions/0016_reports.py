"""reports: the days whose daily summary was queued (each one once); date indexes

A report reads a date range of texts or payments; without an index on created_at every
range, even one day, reads the whole table (1.4 s for a week of 1,000,000 texts).

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

INDEXED = ("messages", "payments")
MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
         "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade():
    op.create_table(
        "daily_summaries",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_daily_summaries")),
        **MYSQL,
    )
    for table in INDEXED:
        op.create_index(f"ix_{table}_created_at", table, ["created_at"])


def downgrade():
    for table in INDEXED:
        op.drop_index(f"ix_{table}_created_at", table_name=table)
    op.drop_table("daily_summaries")
