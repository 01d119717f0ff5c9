from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from claims_api.db import Base, JsonDoc, UtcDateTime, utcnow


class OutboxEvent(Base):
    """Written in the same transaction as the state change it announces; the relay applies it
    to the in-process consumers and fans it out to webhook deliveries (``published_at``), and
    the stream relay publishes it to NATS (``streamed_at``)."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_pending", "published_at", "next_attempt_at"),
        Index("ix_outbox_unstreamed", "streamed_at", "id"),
        UniqueConstraint("aggregate_type", "aggregate_id", "sequence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(60))
    aggregate_type: Mapped[str] = mapped_column(String(40))
    aggregate_id: Mapped[str] = mapped_column(String(100), index=True)
    # 1, 2, 3 … per aggregate, in the order its changes committed: receivers see gaps and
    # reorderings, and webhook delivery keeps each aggregate's events in this order.
    sequence: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    streamed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class EventSequence(Base):
    """The last sequence number handed out per aggregate: an upsert on this row hands out the
    next one atomically, and serialises concurrent emitters of one aggregate on PostgreSQL."""

    __tablename__ = "event_sequences"

    aggregate_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    aggregate_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(Integer)


class ConsumedEvent(Base):
    """One row per (consumer, event) an in-process consumer has applied (``consumers``)."""

    __tablename__ = "consumed_events"

    consumer: Mapped[str] = mapped_column(String(40), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    consumed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
