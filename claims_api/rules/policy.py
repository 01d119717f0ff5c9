"""The versioned auto-approval policy. Built-in defaults; a JSON file can replace them
(``FRESHCLAIM_POLICY_FILE``). Change ``version`` whenever a value changes: every decision
records the version it was made under."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(
        default="2026.12-2",
        description="Recorded with every decision; change it whenever a value changes.",
    )
    auto_sla_minutes: int = Field(
        description="The answer promised for a claim the machine decides.", default=10, gt=0
    )
    manual_review_sla_minutes: int = Field(
        description="The answer promised for a claim a person decides (and an appeal).",
        default=240,
        gt=0,
    )

    claim_window_hours: float = Field(
        description="Hours after delivery within which a claim is on time (any produce).",
        default=72,
        gt=0,
    )
    claim_window_hours_by_produce: dict[str, float] = Field(
        description="The claim window per produce kind, replacing the default.",
        default_factory=lambda: {
            "leafy_greens": 24,
            "strawberry": 24,
            "grape": 48,
            "banana": 48,
            "tomato": 72,
            "guava": 72,
            "jujube": 72,
            "orange": 120,
            "apple": 120,
            "pomegranate": 120,
        },
    )
    claim_window_hours_by_sku: dict[str, float] = Field(
        description="The claim window per SKU, replacing the produce one.", default_factory=dict
    )

    appeal_window_hours: float = Field(
        default=168,
        gt=0,
        description="After a person rejects a claim, the customer may appeal it once within "
        "this many hours; meanwhile a new claim on the same order line is refused (409) and "
        "points to the appeal, and afterwards it always goes to a person.",
    )
    customer_timezone: str = Field(
        default="Asia/Shanghai", description="Times in sentences to customers are in this zone."
    )
    currency_symbol: str = Field(default="¥", description="Amounts in customer sentences.")

    auto_approve_cap_cents: int = Field(
        description="The largest amount paid without a person, before trust scales it.",
        default=5_000,
        ge=0,
    )
    max_claims_30d: int = Field(
        default=3, ge=0, description="Earlier claims allowed before a person looks."
    )

    # Velocity and amount. Every "30 days" is the 30 days before submission.
    max_paid_cents_30d: int = Field(
        default=15_000,
        ge=0,
        description="Compensation paid to the customer in 30 days, this claim included, above "
        "which a person looks (paid_amount_30d).",
    )
    claim_rate_window_days: int = Field(
        default=180, gt=0, description="Orders delivered in this many days count for claim rates."
    )
    claim_rate_min_orders: int = Field(
        default=10, ge=1, description="A claim rate is judged only from this many orders."
    )
    max_claim_rate: float = Field(
        default=0.3, gt=0, le=1, description="Share of a customer's orders with a claim."
    )
    pickup_point_min_orders: int = Field(
        default=30, ge=1, description="A pickup point's claim rate is judged from this many orders."
    )
    max_pickup_point_claim_rate: float = Field(
        description="Share of a pickup point's orders with a claim above which a person looks.",
        default=0.2,
        gt=0,
        le=1,
    )
    max_pickup_point_claims_30d: int = Field(
        default=20, ge=0, description="Earlier claims on the pickup point's orders in 30 days."
    )

    # Trust earned: the auto-approve cap follows the customer's reviewed claims.
    trust_lookback_days: int = Field(
        description="Reviewed claims from this many days count towards trust.", default=365, gt=0
    )
    trust_confirmed_min: int = Field(
        default=3, ge=1, description="Claims confirmed by reviewers to become 'trusted'."
    )
    trusted_cap_factor: float = Field(
        description="The cap's factor for a 'trusted' customer.", default=2.0, ge=1
    )
    trust_rejection_days: int = Field(
        description="Rejections from this many days lower trust.", default=90, gt=0
    )
    reduced_cap_factor: float = Field(
        default=0.5, ge=0, le=1, description="Cap factor after one rejected claim ('reduced')."
    )
    rejections_for_restricted: int = Field(
        default=2, ge=1, description="Rejected claims that set the cap to 0 ('restricted')."
    )

    # Which evidence the model's "rotten" is trusted on, and how its approvals keep being
    # labelled.
    certification_mode: Literal["certified", "validated"] = Field(
        default="validated",
        description="`certified` (production): a produce kind is auto-approved only at the "
        "threshold its certificate in the model metadata gives (Learn-then-Test, "
        "`training/certify.py`); a kind without one goes to a person (`kind_not_certified`). "
        "`validated` (the embedded demo): the model's global, validated threshold for every "
        "kind; every decision records that it was uncertified.",
    )
    audit_share: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="Random share of auto-approved claims on a certified kind that are paid "
        "and also queued for an audit review (never blocking the payout); the verdicts are "
        "labels that measure, and later re-certify, the auto-approve precision.",
    )
    audit_share_uncertified: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="The same share for a kind without a certificate (auto-approved only in "
        "`validated` mode): every such approval is audited by default.",
    )

    # Photo provenance.
    duplicate_max_distance: int = Field(
        default=12,
        ge=0,
        le=128,
        description="A hash match also needs pHash + dHash distance at most this (0..128).",
    )
    capture_tolerance_minutes: float = Field(
        default=30,
        ge=0,
        description="EXIF capture time may be this much before delivery (clock skew).",
    )
    capture_unknown_offset_hours: float = Field(
        default=20,
        ge=0,
        description="Added when EXIF has no UTC offset: the time was read as UTC+8, and a "
        "camera set to UTC-12 would read up to 20 hours too early.",
    )
    editing_software: tuple[str, ...] = Field(
        default=(
            "photoshop",
            "lightroom",
            "gimp",
            "snapseed",
            "meitu",
            "美图",
            "picsart",
            "xingtu",
            "醒图",
            "facetune",
            "pixlr",
            "fotor",
            "canva",
            "vsco",
            "affinity photo",
            "paint.net",
            "pixelmator",
            "polarr",
            "remini",
        ),
        description="Case-insensitive substrings of the EXIF Software tag that mean editing.",
    )

    def claim_window_hours_for(self, produce: str, sku: str) -> float:
        if sku in self.claim_window_hours_by_sku:
            return self.claim_window_hours_by_sku[sku]
        return self.claim_window_hours_by_produce.get(produce, self.claim_window_hours)


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    return Policy.model_validate_json(Path(path).read_text())
