"""bank statements (placeholder: filled in by the work on it; a no-op until then)

Revision ID: 0013
Revises: 0012
"""

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
