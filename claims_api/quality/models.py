from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from claims_api.db import Base, UtcDateTime, utcnow


class QualityIncident(Base):
    """A batch, or a pickup point, whose claim rate on one SKU is significantly above the
    SKU's baseline. Moves open → acknowledged → resolved (only through ``quality.service``)."""

    __tablename__ = "quality_incidents"
    __table_args__ = (Index("ix_quality_incidents_status_opened", "status", "opened_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    scope: Mapped[str] = mapped_column(String(20))  # batch | pickup_point
    sku: Mapped[str] = mapped_column(String(100))
    subject_id: Mapped[str] = mapped_column(String(100))  # the batch or pickup point id
    supplier_id: Mapped[str | None] = mapped_column(String(100), default=None)
    # Set while the incident is not resolved: the unique index keeps one live incident per
    # subject even when two relay replicas test the same batch at once.
    live_key: Mapped[str | None] = mapped_column(String(240), unique=True, default=None)
    status: Mapped[str] = mapped_column(String(20))
    claims: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    baseline_rate: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(100), default=None)
    resolution: Mapped[str | None] = mapped_column(String(40), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
