"""contact groups (Kalkun's phonebook groups, broadcast audiences); outbox priority

A contact belongs to any number of named groups. messages.priority orders the outbox:
0 for an operator's reply or an acknowledgement, higher for bulk texts (a broadcast), so
a person's answer never waits behind an announcement.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

MYSQL = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4",
         "mysql_collate": "utf8mb4_unicode_ci"}


def upgrade():
    op.create_table(
        "contact_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_contact_groups_name")),
        **MYSQL,
    )
    op.create_table(
        "contact_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["contact_groups.id"],
                                name=op.f("fk_contact_group_members_group_id_contact_groups")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_contact_group_members_contact_id_contacts")),
        sa.PrimaryKeyConstraint("group_id", "contact_id", name=op.f("pk_contact_group_members")),
        **MYSQL,
    )
    op.create_index("ix_contact_group_members_contact_id_group_id", "contact_group_members",
                    ["contact_id", "group_id"])
    # A plain ADD COLUMN on every database: SQLite keeps the table (and 0009's FTS
    # triggers on it), InnoDB adds it in place.
    op.add_column("messages", sa.Column("priority", sa.SmallInteger(), nullable=False,
                                        server_default="0"))


def downgrade():
    op.drop_column("messages", "priority")  # SQLite 3.35+ drops a plain column in place
    # The index goes with its table: InnoDB will not drop it alone (its foreign key uses it).
    op.drop_table("contact_group_members")
    op.drop_table("contact_groups")
