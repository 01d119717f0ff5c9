"""partial index on claims (lease_holder, lease_expires_at) for lease-next and the sweeper

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LEASED = sa.text("lease_holder IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_claims_lease_holder",
        "claims",
        ["lease_holder", "lease_expires_at"],
        unique=False,
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )


def downgrade() -> None:
    op.drop_index("ix_claims_lease_holder", table_name="claims")
