from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["rotten", "fresh", "not_produce", "unclear"]


class AuditItem(BaseModel):
    claim_id: str
    customer_id: str
    produce: str
    paid_cents: int
    paid_at: datetime | None
    share: float = Field(description="The chance this claim had of being audited.")
    certification: str = Field(description="The decision's certification status.")
    lease_holder: str | None
    lease_expires_at: datetime | None


class AuditPage(BaseModel):
    total: int
    items: list[AuditItem]


class AuditLease(BaseModel):
    claim_id: str
    lease_expires_at: datetime
    claim: dict[str, Any]


class AuditVerdictIn(BaseModel):
    """What the photos show. ``rotten``: the auto-approval was right; ``fresh`` or
    ``not_produce``: it was a false approval; ``unclear``: no label (the photos cannot
    tell). The payout stands whatever the verdict: reversing it is an admin's act."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    produce: str | None = Field(default=None, max_length=50, description="The kind seen.")
    note: str | None = Field(default=None, max_length=2000)


class AuditVerdictOut(BaseModel):
    claim_id: str
    verdict: Verdict
    produce: str | None
    auto_approval_correct: bool | None
    reviewer: str
    at: datetime


class AuditKindSummary(BaseModel):
    produce: str
    certification: str = Field(description="The decisions' certification status.")
    audited: int = Field(description="Audit verdicts given (unclear included).")
    correct: int = Field(description="Verdict rotten: the auto-approval was right.")
    wrong: int = Field(description="Verdict fresh or not produce: a false approval.")
    unclear: int
    precision: float | None = Field(description="correct / (correct + wrong).")
    precision_lower_bound: float | None = Field(
        description="Exact one-sided (Clopper–Pearson) lower bound at 95 %."
    )


class AuditSummary(BaseModel):
    pending: int
    kinds: list[AuditKindSummary]
