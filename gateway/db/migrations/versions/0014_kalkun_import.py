"""kalkun import: which Gammu SMSD rows are already in, so a second run adds nothing

One row per imported inbox, sentitems or outbox row (every part of a multipart text),
keyed by the source database and the row's table and ID, pointing at the text it became.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
         "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade():
    op.create_table(
        "kalkun_imported",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("source_table", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name=op.f("fk_kalkun_imported_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kalkun_imported")),
        sa.UniqueConstraint("source", "source_table", "source_id",
                            name=op.f("uq_kalkun_imported_source_source_table_source_id")),
        **MYSQL,
    )


def downgrade():
    op.drop_table("kalkun_imported")
