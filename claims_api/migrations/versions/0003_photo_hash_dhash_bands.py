"""photo_hashes: 3 pHash + 3 dHash bands of 21 bits (was 4 pHash bands of 16 bits)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:05:00

At 1,000,000 photos the 16-bit pHash bands fetched ~11,000 candidate rows per lookup; this
layout fetches ~540 (bench/bench_duplicates.py --bands 3 --dhash-bands). Existing rows are
re-banded from the stored hashes.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BANDS = 3
WIDTH = 64 // BANDS
BATCH = 5000


def _bands(signed: int) -> list[int]:
    value = signed & (2**64 - 1)
    mask = (1 << WIDTH) - 1
    return [(value >> (WIDTH * (BANDS - 1 - i))) & mask for i in range(BANDS)]


def _reband(connection: sa.Connection) -> None:
    table = sa.table(
        "photo_hashes",
        *(sa.column(name) for name in ("photo_id", "window", "phash", "dhash")),
        *(sa.column(f"band{i}") for i in range(6)),
    )
    rows = connection.execute(
        sa.select(table.c.photo_id, table.c.window, table.c.phash, table.c.dhash)
    )
    batch = []
    for photo_id, window, phash, dhash in rows:
        values = _bands(phash) + _bands(dhash)
        batch.append({"p": photo_id, "w": window, **{f"b{i}": v for i, v in enumerate(values)}})
    update = (
        table.update()
        .where(table.c.photo_id == sa.bindparam("p"), table.c.window == sa.bindparam("w"))
        .values(**{f"band{i}": sa.bindparam(f"b{i}") for i in range(6)})
    )
    for start in range(0, len(batch), BATCH):
        connection.execute(update, batch[start : start + BATCH])


def upgrade() -> None:
    with op.batch_alter_table("photo_hashes") as batch_op:
        batch_op.add_column(sa.Column("band4", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("band5", sa.Integer(), nullable=True))
    _reband(op.get_bind())
    with op.batch_alter_table("photo_hashes") as batch_op:
        batch_op.alter_column("band4", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("band5", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index("ix_photo_hashes_band4", ["band4"], unique=False)
        batch_op.create_index("ix_photo_hashes_band5", ["band5"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("photo_hashes") as batch_op:
        batch_op.drop_index("ix_photo_hashes_band5")
        batch_op.drop_index("ix_photo_hashes_band4")
        batch_op.drop_column("band5")
        batch_op.drop_column("band4")
    # band0-3 keep the new layout's values; a downgraded service would mis-band old rows.
