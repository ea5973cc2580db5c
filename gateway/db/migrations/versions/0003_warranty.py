"""warranty: products' warranty periods, items sold by serial number, warranty claims

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MYSQL = dict(mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
             mysql_engine="InnoDB")


def upgrade():
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("warranty_days", sa.Integer(), nullable=True))

    op.create_table(
        "sold_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("order_item_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("sold_on", sa.Date(), nullable=False),
        sa.Column("warranty_until", sa.Date(), nullable=True),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("replaced_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["product_id"], ["products.id"],
                                name=op.f("fk_sold_items_product_id_products")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"],
                                name=op.f("fk_sold_items_order_id_orders")),
        sa.ForeignKeyConstraint(["order_item_id"], ["order_items.id"],
                                name=op.f("fk_sold_items_order_item_id_order_items")),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_sold_items_contact_id_contacts")),
        sa.ForeignKeyConstraint(["replaces_id"], ["sold_items.id"],
                                name=op.f("fk_sold_items_replaces_id_sold_items")),
        sa.ForeignKeyConstraint(["replaced_by_id"], ["sold_items.id"],
                                name=op.f("fk_sold_items_replaced_by_id_sold_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sold_items")),
        sa.UniqueConstraint("serial", name=op.f("uq_sold_items_serial")),
        **MYSQL,
    )
    with op.batch_alter_table("sold_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sold_items_order_id"), ["order_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sold_items_order_item_id"), ["order_item_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_sold_items_contact_id"), ["contact_id"],
                              unique=False)

    op.create_table(
        "warranty_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=True),
        sa.Column("in_repair_at", sa.DateTime(), nullable=True),
        sa.Column("replaced_at", sa.DateTime(), nullable=True),
        sa.Column("returned_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"],
                                name=op.f("fk_warranty_claims_ticket_id_tickets")),
        sa.ForeignKeyConstraint(["item_id"], ["sold_items.id"],
                                name=op.f("fk_warranty_claims_item_id_sold_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_claims")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_warranty_claims_ticket_id")),
        **MYSQL,
    )
    with op.batch_alter_table("warranty_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warranty_claims_item_id_id"), ["item_id", "id"],
                              unique=False)


def downgrade():
    # A table's indexes go with it (MariaDB refuses to drop one a foreign key uses first).
    op.drop_table("warranty_claims")
    op.drop_table("sold_items")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("warranty_days")
