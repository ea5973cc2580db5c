"""the open tickets' queue as one range of one index

The queue lists the open tickets (new, open, pending) in the order of (queue_rank,
queue_since, id). Read from (status, queue_rank, ...) that is three ranges, which
MariaDB merges by sorting all the open tickets for each page (EXPLAIN: Using filesort).
Resolved and closed tickets now rank 8 and up (models.CLOSED_RANK), the open ones below,
so one index on (queue_rank, queue_since, id) hands out a page of the open queue in order
and stops at its end.

Revision ID: 0018
Revises: 0017
"""
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("UPDATE tickets SET queue_rank = queue_rank + 8 "
               "WHERE status IN ('resolved', 'closed') AND queue_rank < 8")
    op.create_index("ix_tickets_queue_rank_queue_since_id", "tickets",
                    ["queue_rank", "queue_since", "id"])


def downgrade():
    op.drop_index("ix_tickets_queue_rank_queue_since_id", table_name="tickets")
    op.execute("UPDATE tickets SET queue_rank = queue_rank - 8 WHERE queue_rank >= 8")
