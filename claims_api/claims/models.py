from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_api.db import Base, JsonDoc, UtcDateTime, utcnow


class Claim(Base):
    """A customer's claim on one order line. ``status`` changes only through
    :func:`claims_api.claims.states.transition`."""

    __tablename__ = "claims"
    __table_args__ = (
        ForeignKeyConstraint(
            ["order_id", "line_id"], ["order_lines.order_id", "order_lines.line_id"]
        ),
        Index("ix_claims_queue", "status", "sla_deadline"),
        # a reviewer's current lease (lease-next looks it up first) and the lease sweeper:
        # only leased rows, so it stays tiny however long the queue grows
        Index(
            "ix_claims_lease_holder",
            "lease_holder",
            "lease_expires_at",
            postgresql_where=text("lease_holder IS NOT NULL"),
            sqlite_where=text("lease_holder IS NOT NULL"),
        ),
        Index("ix_claims_customer_submitted", "customer_id", "submitted_at"),
        Index("ix_claims_line", "order_id", "line_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    order_id: Mapped[str] = mapped_column(String(100))
    line_id: Mapped[str] = mapped_column(String(100))
    issue: Mapped[str] = mapped_column(String(20))
    affected_quantity: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(24))
    requested_cents: Mapped[int] = mapped_column(Integer)
    approved_cents: Mapped[int | None] = mapped_column(Integer, default=None)
    decision: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    verification: Mapped[dict] = mapped_column(JsonDoc, default=dict)
    # ",code,code," of the fired reasons: lets the queue filter by reason in SQL on any backend
    reason_codes: Mapped[str] = mapped_column(String(1000), default="")
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    sla_deadline: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_holder: Mapped[str | None] = mapped_column(String(40), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    leased_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    appealed: Mapped[bool] = mapped_column(Boolean, default=False)
    appeal_message: Mapped[str | None] = mapped_column(Text, default=None)
    rejected_by: Mapped[str | None] = mapped_column(String(40), default=None)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    photos: Mapped[list[ClaimPhoto]] = relationship(
        cascade="all, delete-orphan", order_by="ClaimPhoto.position", lazy="selectin"
    )

    @property
    def photo_ids(self) -> list[str]:
        return [p.photo_id for p in self.photos]


class ClaimPhoto(Base):
    __tablename__ = "claim_photos"

    claim_id: Mapped[str] = mapped_column(
        ForeignKey("claims.id", ondelete="CASCADE"), primary_key=True
    )
    photo_id: Mapped[str] = mapped_column(ForeignKey("photos.id"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class IdempotencyRecord(Base):
    """One claim per Idempotency-Key per customer, enforced by the primary key."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("customer_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
