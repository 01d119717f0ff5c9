"""rate_buckets: the abuse limits' token buckets, one row per credential and action

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 17:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_buckets")),
    )
    op.create_index(
        op.f("ix_rate_buckets_updated_at"), "rate_buckets", ["updated_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_buckets_updated_at"), table_name="rate_buckets")
    op.drop_table("rate_buckets")
