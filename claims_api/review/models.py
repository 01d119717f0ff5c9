from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from claims_api.db import Base, JsonDoc, UtcDateTime, utcnow


class ReviewDecision(Base):
    """A reviewer's decision with a snapshot of what they saw when they made it."""

    __tablename__ = "review_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("reviewers.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    amount_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    reason_code: Mapped[str] = mapped_column(String(60))
    message: Mapped[str | None] = mapped_column(Text, default=None)
    leased_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    model_version: Mapped[str | None] = mapped_column(String(100), default=None)
    model_p_rotten: Mapped[float | None] = mapped_column(default=None)
    seen: Mapped[dict] = mapped_column(JsonDoc, default=dict)


class PhotoLabel(Base):
    """A reviewer's label of one photo; these feed retraining."""

    __tablename__ = "photo_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), index=True)
    reviewer_id: Mapped[str] = mapped_column(ForeignKey("reviewers.id"))
    condition: Mapped[str] = mapped_column(String(20))  # rotten | fresh | not_produce | unclear
    produce: Mapped[str | None] = mapped_column(String(50), default=None)
    labelled_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
