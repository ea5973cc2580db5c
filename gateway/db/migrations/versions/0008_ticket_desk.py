"""tickets: priority and merged_into_id; canned responses; SLA targets per ticket kind

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MYSQL = dict(mysql_charset="utf8mb4", mysql_collate="utf8mb4_unicode_ci",
             mysql_engine="InnoDB")


def upgrade():
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.String(length=8), nullable=False,
                                      server_default="normal"))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_tickets_merged_into_id_tickets"),
                                    "tickets", ["merged_into_id"], ["id"])

    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_responses")),
        **MYSQL,
    )
    op.create_table(
        "sla_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_targets")),
        sa.UniqueConstraint("kind", name=op.f("uq_sla_targets_kind")),
        **MYSQL,
    )


def downgrade():
    op.drop_table("sla_targets")
    op.drop_table("canned_responses")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tickets_merged_into_id_tickets"),
                                 type_="foreignkey")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("priority")
