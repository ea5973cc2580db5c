"""messages.attention: a text that could not be read or filed, marked for a person

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attention", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_attention"), ["attention"], unique=False)


def downgrade():
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_attention"))
        batch_op.drop_column("attention")
