from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from claims_api.claims.schemas import ReasonCode


class QueueItem(BaseModel):
    claim_id: str
    customer_id: str
    order_id: str
    line_id: str
    produce: str
    requested_cents: int
    sla_deadline: datetime
    seconds_left: int
    reasons: list[ReasonCode]
    appealed: bool
    status: str
    lease_holder: str | None
    lease_expires_at: datetime | None


class QueuePage(BaseModel):
    total: int
    leased: int
    items: list[QueueItem]


class Lease(BaseModel):
    claim_id: str
    lease_expires_at: datetime
    claim: dict[str, Any]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["approve", "reject", "request_photos"]
    amount_cents: int | None = Field(default=None, ge=1)
    reason_code: str = Field(min_length=1, max_length=60, pattern=r"^[a-z0-9_]+$")
    message: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _check(self) -> DecisionIn:
        if self.outcome != "approve" and self.amount_cents is not None:
            raise ValueError("amount_cents is only for approve")
        return self


class PhotoLabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    condition: Literal["rotten", "fresh", "not_produce", "unclear"]
    produce: str | None = Field(default=None, max_length=50)
