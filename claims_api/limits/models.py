from __future__ import annotations

from sqlalchemy import Boolean, Double, String
from sqlalchemy.orm import Mapped, mapped_column

from claims_api.db import Base


class RateBucket(Base):
    """One token bucket per key (``<action>:<credential kind>:<id>``).

    Times are seconds since the epoch as floats, not timestamps: the refill is computed in
    the upsert itself (``tokens + (now - updated_at) * rate``), and float arithmetic reads the
    same on SQLite and PostgreSQL where interval arithmetic does not. ``allowed`` is what the
    last take decided, returned by the same statement."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double, index=True)
    allowed: Mapped[bool] = mapped_column(Boolean)
