from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from claims_api.db import Base, JsonDoc, UtcDateTime, utcnow


class CustomerProfile(Base):
    """A customer's claim history as the profile, tagging and campaign modules see it; built
    only from outbox events, so it can be rebuilt by replaying them."""

    __tablename__ = "customer_profiles"

    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    claims_submitted: Mapped[int] = mapped_column(Integer, default=0)
    claims_paid: Mapped[int] = mapped_column(Integer, default=0)
    claims_rejected: Mapped[int] = mapped_column(Integer, default=0)
    compensation_cents: Mapped[int] = mapped_column(Integer, default=0)
    last_claim_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    last_bad_experience_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    tags: Mapped[list] = mapped_column(JsonDoc, default=list)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SkuQualityAlert(Base):
    """Raised when one SKU collects many claims in a short window: a bad batch, a cold-chain
    break at one warehouse."""

    __tablename__ = "sku_quality_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(100), index=True)
    claims_in_window: Mapped[int] = mapped_column(Integer)
    window_hours: Mapped[int] = mapped_column(Integer)
    claim_ids: Mapped[list] = mapped_column(JsonDoc, default=list)
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
