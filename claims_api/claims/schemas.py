from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from claims_api.rules.signals import REASON_CODES

# The codes a decision can give, as an enum in the API schema. Not validated on the way out:
# a claim decided under an older policy keeps the reasons it was given, and reading it back
# must not fail because a code has since been retired.
ReasonCode = Annotated[
    str,
    Field(
        description="Why the claim went to a person (one per fired signal).",
        json_schema_extra={"enum": list(REASON_CODES)},
    ),
]


class ClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: str = Field(min_length=1, max_length=100)
    line_id: str = Field(min_length=1, max_length=100)
    issue: Literal["rotten", "damaged"]
    affected_quantity: int = Field(ge=1, le=100_000)
    photo_ids: list[str] = Field(min_length=1, max_length=20)
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("photo_ids")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("photo_ids must not repeat")
        return value


class Reason(BaseModel):
    code: ReasonCode
    message: str


class DecisionOut(BaseModel):
    route: Literal["auto", "manual"]
    reasons: list[Reason]
    model_version: str | None
    threshold_version: str | None = None
    policy_version: str
    decided_by: str = "policy"
    decided_by_name: str | None = Field(
        default=None, description="The reviewer's display name (staff views only)."
    )
    certification: dict[str, Any] | None = Field(
        default=None,
        description="The per-kind certificate the decision used, or that it was made in "
        "`validated` mode without one (docs/model.md).",
    )


class OutcomeOut(BaseModel):
    """What the customer is told: see docs/api.md, "What the customer is told"."""

    code: str = Field(description="What happened, for the mini-program to switch on.")
    message: str = Field(description="One plain sentence in the customer's language.")
    reviewer_message: str | None = Field(
        default=None, description="The reviewer's own words to the customer, verbatim."
    )
    review_reason: str | None = Field(
        default=None, description="The reviewer's reason code (see Review reasons)."
    )
    appeal_until: datetime | None = None
    respond_by: datetime | None = Field(
        default=None, description="While a claim is open: the answer is promised by then."
    )
    notes: list[str] = Field(
        default_factory=list, description="What the customer could fix, in their language."
    )


class CompensationOut(BaseModel):
    requested_cents: int
    amount_cents: int
    method: str | None = None
    status: Literal["pending", "paid", "none", "reversed"]


class TimelineEntry(BaseModel):
    status: str
    at: datetime
    actor: str


class CustomerClaimOut(BaseModel):
    """A claim as its customer sees it: the outcome in words, the amounts and the dates;
    none of the decision's internals."""

    id: str
    status: str
    order_id: str
    line_id: str
    issue: str
    affected_quantity: int
    note: str | None
    photo_ids: list[str]
    outcome: OutcomeOut
    compensation: CompensationOut
    submitted_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None
    appealed: bool
    timeline: list[TimelineEntry]


class ClaimOut(CustomerClaimOut):
    """A claim as the shop and staff see it: the customer's view plus the decision."""

    customer_id: str
    decision: DecisionOut
    sla_deadline: datetime


class ClaimPage(BaseModel):
    items: list[ClaimOut | CustomerClaimOut]
    next_cursor: str | None


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=2000)


class AddPhotosIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    photo_ids: list[str] = Field(min_length=1, max_length=20)


class VerificationOut(BaseModel):
    signals: list[dict[str, Any]]
    photos: list[dict[str, Any]]
