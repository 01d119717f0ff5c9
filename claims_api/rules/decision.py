"""The decision: a pure function of the signals, the photos' scores and the policy.

It never rejects: a claim is approved automatically when no signal fired, and otherwise
handed to a person with every reason that applied. Only a person says no.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from claims_api.inference.model import PhotoScores
from claims_api.rules.gate import certification
from claims_api.rules.policy import Policy
from claims_api.rules.signals import Signal

Route = Literal["auto", "manual"]


@dataclass(frozen=True)
class Decision:
    route: Route
    signals: list[Signal]
    model_version: str | None
    threshold_version: str | None
    policy_version: str
    decided_at: datetime
    # which certificate the model's judgement rested on, or that it was uncertified
    certification: dict[str, Any] | None = None

    @property
    def reasons(self) -> list[dict[str, str]]:
        return [{"code": s.code, "message": s.message} for s in self.signals if s.fired]

    def to_record(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "reasons": self.reasons,
            "model_version": self.model_version,
            "threshold_version": self.threshold_version,
            "policy_version": self.policy_version,
            "certification": self.certification,
            "decided_by": "policy",
            "decided_at": self.decided_at.isoformat(),
            "signals": [s.to_dict() for s in self.signals],
        }


def decide(
    signals: list[Signal],
    scores: list[PhotoScores],
    policy: Policy,
    now: datetime,
    kind: str | None = None,
) -> Decision:
    """``kind``: the ordered produce, whose certificate (in ``certified`` mode) is recorded."""
    route: Route = "manual" if any(s.fired for s in signals) else "auto"
    return Decision(
        route=route,
        signals=signals,
        model_version=scores[0].model_version if scores else None,
        threshold_version=scores[0].threshold_version if scores else None,
        policy_version=policy.version,
        decided_at=now,
        certification=_certification_record(scores, kind, policy),
    )


def _certification_record(
    scores: list[PhotoScores], kind: str | None, policy: Policy
) -> dict[str, Any]:
    if not scores:  # no model judgement: nothing was certified or validated
        return {
            "mode": policy.certification_mode,
            "kind": kind,
            "status": "unscored",
            "threshold": None,
            "certificate": None,
        }
    return certification(scores[0], kind, policy.certification_mode).to_record()
