"""indexes for the dashboard's counts and the message folders

Open tickets by kind and age are counted from (status, kind, created_at,
first_response_at) without reading a ticket row; the inbox and sent folders page by
(direction, id); today's orders by orders.created_at.

Revision ID: 0010
Revises: 0009
"""
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = [
    ("ix_tickets_status_kind_created_at_first_response_at", "tickets",
     ["status", "kind", "created_at", "first_response_at"]),
    ("ix_messages_direction_id", "messages", ["direction", "id"]),
    ("ix_orders_created_at", "orders", ["created_at"]),
]


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns, unique=False)
    if op.get_bind().dialect.name == "sqlite":
        # SQLite keeps no statistics of a new index until ANALYZE; without them its
        # planner may prefer an older index it has figures for (InnoDB samples by itself).
        for table in sorted({table for _name, table, _columns in INDEXES}):
            op.execute(f"ANALYZE {table}")


def downgrade():
    for name, table, _columns in reversed(INDEXES):
        op.drop_index(name, table_name=table)
