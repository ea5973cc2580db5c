"""broadcasts (placeholder: filled in by the work on it; a no-op until then)

Revision ID: 0012
Revises: 0011
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
