"""an insert sentinel on the tables the SMS pipeline fills in batches

SQLite cannot return the ids of a multi-row INSERT in the order of its rows, so
SQLAlchemy's unit of work inserted the rows of a batch of texts one statement each. A
nullable `_sentinel` column (models.BatchInserted) carries a counter SQLAlchemy sorts the
returned ids by: a batch of 100 texts is a few INSERTs per table instead of 100. The
column is NULL in every row written one at a time and means nothing after the INSERT.

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLES = ("contacts", "tickets", "ticket_events", "messages", "message_parts", "orders",
          "order_items", "payments")


def upgrade():
    for table in TABLES:
        op.add_column(table, sa.Column("_sentinel", sa.Integer(), nullable=True))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("_sentinel")
