"""modems: the SIM's prepaid credit (from USSD) and its storage

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = [
    sa.Column("balance", sa.BigInteger(), nullable=True),
    sa.Column("balance_expiry", sa.Date(), nullable=True),
    sa.Column("balance_text", sa.String(length=255), nullable=True),
    sa.Column("balance_at", sa.DateTime(), nullable=True),
    sa.Column("sim_used", sa.Integer(), nullable=True),
    sa.Column("sim_size", sa.Integer(), nullable=True),
]


def upgrade():
    with op.batch_alter_table("modems", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.add_column(column.copy())


def downgrade():
    with op.batch_alter_table("modems", schema=None) as batch_op:
        for column in reversed(COLUMNS):
            batch_op.drop_column(column.name)
