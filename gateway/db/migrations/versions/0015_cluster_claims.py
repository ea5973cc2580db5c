"""cluster claims (placeholder: filled in by the work on it; a no-op until then)

Revision ID: 0015
Revises: 0014
"""

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
