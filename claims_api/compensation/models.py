from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from claims_api.db import Base, UtcDateTime, utcnow


class LedgerPosting(Base):
    """One money movement for a claim: at most one of each kind per claim (a unique
    constraint)."""

    __tablename__ = "ledger_postings"
    __table_args__ = (UniqueConstraint("claim_id", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    claim_id: Mapped[str] = mapped_column(ForeignKey("claims.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # payout | reversal
    method: Mapped[str] = mapped_column(String(32))  # store_credit | original_payment
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    created_by: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    entries: Mapped[list[LedgerEntry]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class LedgerEntry(Base):
    """Double entry: the entries of one posting sum to zero."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    posting_id: Mapped[str] = mapped_column(
        ForeignKey("ledger_postings.id", ondelete="CASCADE"), index=True
    )
    account: Mapped[str] = mapped_column(String(150), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
