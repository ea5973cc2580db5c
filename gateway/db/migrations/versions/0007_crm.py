"""crm: contacts' organisation, type, notes and blocked; tags; orders and payments by contact

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

MYSQL = dict(mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
             mysql_engine="InnoDB")


def upgrade():
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("organisation", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("type", sa.String(length=16), nullable=False,
                                      server_default="customer"))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("blocked", sa.Boolean(), nullable=False,
                                      server_default="0"))
        batch_op.create_index(batch_op.f("ix_contacts_type"), ["type"], unique=False)

    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
        **MYSQL,
    )
    op.create_table(
        "contact_tags",
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_contact_tags_contact_id_contacts")),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"],
                                name=op.f("fk_contact_tags_tag_id_tags")),
        sa.PrimaryKeyConstraint("contact_id", "tag_id", name=op.f("pk_contact_tags")),
        **MYSQL,
    )
    with op.batch_alter_table("contact_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_tags_tag_id_contact_id"),
                              ["tag_id", "contact_id"], unique=False)

    # A contact's timeline reads its newest orders and payments by these.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_contact_id_id"), ["contact_id", "id"],
                              unique=False)
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_payments_contact_id_id"), ["contact_id", "id"],
                              unique=False)


def downgrade():
    mysql = op.get_bind().dialect.name == "mysql"
    for table in ("payments", "orders"):
        if mysql:
            # InnoDB dropped its own index of the contact_id foreign key when this one
            # came, and refuses to drop the last: one for the key alone first.
            op.create_index(f"ix_{table}_contact_id", table, ["contact_id"])
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_contact_id_id"))
    op.drop_table("contact_tags")
    op.drop_table("tags")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contacts_type"))
        batch_op.drop_column("blocked")
        batch_op.drop_column("notes")
        batch_op.drop_column("type")
        batch_op.drop_column("organisation")
