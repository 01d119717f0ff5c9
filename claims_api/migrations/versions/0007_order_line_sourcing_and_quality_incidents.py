"""order line sourcing (category, supplier, batch) and quality incidents

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 18:40:00
"""

import sqlalchemy as sa
from alembic import op

from claims_api.db import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("category", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("supplier_id", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("batch_id", sa.String(length=100), nullable=True))
        batch.create_index("ix_order_lines_sku_batch", ["sku", "batch_id"], unique=False)
        batch.create_index(op.f("ix_order_lines_supplier_id"), ["supplier_id"], unique=False)
    op.create_index(op.f("ix_orders_delivered_at"), "orders", ["delivered_at"], unique=False)
    op.create_table(
        "quality_incidents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("sku", sa.String(length=100), nullable=False),
        sa.Column("subject_id", sa.String(length=100), nullable=False),
        sa.Column("supplier_id", sa.String(length=100), nullable=True),
        sa.Column("live_key", sa.String(length=240), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("baseline_rate", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("opened_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("resolved_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.Column("resolution", sa.String(length=40), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quality_incidents")),
        sa.UniqueConstraint("live_key", name=op.f("uq_quality_incidents_live_key")),
    )
    op.create_index(
        "ix_quality_incidents_status_opened",
        "quality_incidents",
        ["status", "opened_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_quality_incidents_status_opened", table_name="quality_incidents")
    op.drop_table("quality_incidents")
    op.drop_index(op.f("ix_orders_delivered_at"), table_name="orders")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_index(op.f("ix_order_lines_supplier_id"))
        batch.drop_index("ix_order_lines_sku_batch")
        batch.drop_column("batch_id")
        batch.drop_column("supplier_id")
        batch.drop_column("category")
