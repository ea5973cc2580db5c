"""broadcasts: one text to a group, a tag or a list of numbers, fed to the outbox

A recipient row per number (unique per broadcast) with its status and the outbox
message that carries its text, so a restart goes on without sending anyone twice.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
         "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade():
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("audience_kind", sa.String(length=16), nullable=False),
        sa.Column("audience", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_broadcasts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
        **MYSQL,
    )
    op.create_index("ix_broadcasts_status_id", "broadcasts", ["status", "id"])
    op.create_table(
        "broadcast_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skip_reason", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"],
                                name=op.f("fk_broadcast_recipients_broadcast_id_broadcasts")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_broadcast_recipients_contact_id_contacts")),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name=op.f("fk_broadcast_recipients_message_id_messages")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_recipients")),
        sa.UniqueConstraint("broadcast_id", "number",
                            name=op.f("uq_broadcast_recipients_broadcast_id_number")),
        **MYSQL,
    )
    op.create_index("ix_broadcast_recipients_broadcast_id_status_id", "broadcast_recipients",
                    ["broadcast_id", "status", "id"])


def downgrade():
    # Each index goes with its table: InnoDB will not drop one a foreign key uses.
    op.drop_table("broadcast_recipients")
    op.drop_table("broadcasts")
