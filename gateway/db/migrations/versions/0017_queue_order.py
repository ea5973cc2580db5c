"""queue order: since when a customer waits for a person's answer, and the queue's key

tickets.waiting_since is the customer's first text after the last person's answer (an
acknowledgement is not an answer), None when nobody waits; queue_rank (waiting first,
then priority) and queue_since (that wait, else the ticket's age) are kept from it by the
models at every flush, so the queue is read in order from one index, page after page.
The open tickets' waits are found from their texts here.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs, as in 0015: SQLite keeps the table, InnoDB adds them in place.
    op.add_column("tickets", sa.Column("waiting_since", sa.DateTime(), nullable=True))
    op.add_column("tickets", sa.Column("queue_rank", sa.SmallInteger(), nullable=False,
                                       server_default="6"))
    op.add_column("tickets", sa.Column("queue_since", sa.DateTime(), nullable=True))
    op.execute("""
        UPDATE tickets SET waiting_since = (
            SELECT MIN(m.created_at) FROM messages m
            WHERE m.ticket_id = tickets.id AND m.direction = 'in'
              AND m.created_at > COALESCE((
                  SELECT MAX(o.created_at) FROM messages o
                  WHERE o.ticket_id = tickets.id AND o.direction = 'out'
                    AND o.user_id IS NOT NULL), '1900-01-01 00:00:00'))
        WHERE status IN ('new', 'open', 'pending')""")
    op.execute("""
        UPDATE tickets SET queue_since = COALESCE(waiting_since, created_at),
            queue_rank = (CASE WHEN waiting_since IS NULL THEN 4 ELSE 0 END)
                + (CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'low' THEN 3
                   ELSE 2 END)""")
    op.create_index("ix_tickets_status_queue_rank_queue_since_id", "tickets",
                    ["status", "queue_rank", "queue_since", "id"])


def downgrade():
    op.drop_index("ix_tickets_status_queue_rank_queue_since_id", table_name="tickets")
    for column in ("queue_since", "queue_rank", "waiting_since"):
        op.drop_column("tickets", column)
