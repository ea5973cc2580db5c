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
    ("balance", sa.BigInteger),
    ("balance_expiry", sa.Date),
    ("balance_text", lambda: sa.String(length=255)),
    ("balance_at", sa.DateTime),
    ("sim_used", sa.Integer),
    ("sim_size", sa.Integer),
]


def upgrade():
    with op.batch_alter_table("modems", schema=None) as batch_op:
        for name, kind in COLUMNS:
            batch_op.add_column(sa.Column(name, kind(), nullable=True))


def downgrade():
    with op.batch_alter_table("modems", schema=None) as batch_op:
        for name, _kind in reversed(COLUMNS):
            batch_op.drop_column(name)
