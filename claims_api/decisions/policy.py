"""The versioned auto-approval policy. Built-in defaults; a JSON file can replace them
(``FRESHCLAIM_POLICY_FILE``). Change ``version`` whenever a value changes: every decision
records the version it was made under."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = "2026.11-1"
    auto_sla_minutes: int = Field(default=10, gt=0)
    manual_review_sla_minutes: int = Field(default=240, gt=0)

    claim_window_hours: float = Field(default=72, gt=0)
    claim_window_hours_by_produce: dict[str, float] = Field(
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
        }
    )
    claim_window_hours_by_sku: dict[str, float] = Field(default_factory=dict)

    auto_approve_cap_cents: int = Field(default=5_000, ge=0)
    max_claims_30d: int = Field(
        default=3, ge=0, description="Earlier claims allowed before a person looks."
    )

    def claim_window_hours_for(self, produce: str, sku: str) -> float:
        if sku in self.claim_window_hours_by_sku:
            return self.claim_window_hours_by_sku[sku]
        return self.claim_window_hours_by_produce.get(produce, self.claim_window_hours)


def load_policy(path: Path | None) -> Policy:
    if path is None:
        return Policy()
    return Policy.model_validate_json(Path(path).read_text())
