from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_api.db import Base, UtcDateTime, utcnow


class Customer(Base):
    """A shop customer as FreshClaim knows them: created with their first order."""

    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    training_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    delivered_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    pickup_point_id: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.line_id"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (
        ForeignKeyConstraint(["order_id"], ["orders.id"], ondelete="CASCADE"),
        # the quality module's batch and SKU lookups
        Index("ix_order_lines_sku_batch", "sku", "batch_id"),
    )

    order_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    line_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    sku: Mapped[str] = mapped_column(String(100))
    produce: Mapped[str] = mapped_column(String(50))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(40), default=None)
    supplier_id: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    batch_id: Mapped[str | None] = mapped_column(String(100), default=None)

    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def value_cents(self) -> int:
        return self.quantity * self.unit_price_cents
