"""The claim state machine. ``open_claim`` and ``transition`` are the only code that sets
``Claim.status``: they check the move, stamp the time, and write an audit row and an outbox
event in the caller's transaction. Every event carries what the customer is told
(:func:`claims_api.rules.outcome.customer_outcome`), so the shop can notify them without
calling back."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from claims_api.audit import service as audit
from claims_api.audit.models import AuditEntry
from claims_api.auth.principal import Principal
from claims_api.claims.errors import InvalidTransition
from claims_api.claims.models import Claim
from claims_api.db import utcnow
from claims_api.events import service as events
from claims_api.rules.outcome import customer_outcome
from claims_api.rules.policy import Policy


class Status(StrEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    PHOTOS_REQUESTED = "photos_requested"
    APPROVED = "approved"
    PARTIALLY_APPROVED = "partially_approved"
    REJECTED = "rejected"
    PAID = "paid"
    REVERSED = "reversed"


ALLOWED: dict[Status, set[Status]] = {
    Status.SUBMITTED: {Status.APPROVED, Status.IN_REVIEW},
    Status.IN_REVIEW: {
        Status.APPROVED,
        Status.PARTIALLY_APPROVED,
        Status.REJECTED,
        Status.PHOTOS_REQUESTED,
    },
    Status.PHOTOS_REQUESTED: {Status.IN_REVIEW},
    Status.APPROVED: {Status.PAID},
    Status.PARTIALLY_APPROVED: {Status.PAID},
    Status.REJECTED: {Status.IN_REVIEW},  # an appeal
    Status.PAID: {Status.REVERSED},
    Status.REVERSED: set(),
}
DECIDED = {Status.APPROVED, Status.PARTIALLY_APPROVED, Status.REJECTED}


def snapshot(claim: Claim) -> dict[str, Any]:
    return {
        "status": claim.status,
        "approved_cents": claim.approved_cents,
        "lease_holder": claim.lease_holder,
        "sla_deadline": claim.sla_deadline.isoformat() if claim.sla_deadline else None,
    }


def open_claim(session: Session, claim: Claim, actor: Principal, policy: Policy) -> AuditEntry:
    """A new claim enters the machine as ``submitted`` (its first timeline entry and its
    ``claim.submitted`` event). Call after the claim row is flushed."""
    claim.status = Status.SUBMITTED
    return _record(session, claim, None, Status.SUBMITTED, actor, policy, {}, utcnow())


def transition(
    session: Session,
    claim: Claim,
    to: Status,
    actor: Principal,
    policy: Policy,
    *,
    reason: str | None = None,
    **details: Any,
) -> AuditEntry:
    """Returns the audit row of the move (its ``at`` is the move's time)."""
    current = Status(claim.status)
    if to not in ALLOWED[current]:
        raise InvalidTransition(f"A claim that is {current} cannot become {to}.", status=current)
    before = snapshot(claim)
    now = utcnow()
    claim.status = to
    if to in DECIDED:
        claim.decided_at = now
    if to is Status.PAID:
        claim.paid_at = now
    if to is not Status.IN_REVIEW:
        claim.lease_holder = None
        claim.lease_expires_at = None
    return _record(
        session, claim, before, to, actor, policy, {"reason": reason, **details}, now, current
    )


def _record(
    session: Session,
    claim: Claim,
    before: dict[str, Any] | None,
    to: Status,
    actor: Principal,
    policy: Policy,
    details: dict[str, Any],
    now: datetime,
    previous: Status | None = None,
) -> AuditEntry:
    entry = audit.record(
        session,
        actor,
        "claim",
        claim.id,
        f"status:{to}",
        before=before,
        after=snapshot(claim),
        at=now,
        **details,
    )
    events.emit(
        session,
        f"claim.{to}",
        "claim",
        claim.id,
        {
            "claim_id": claim.id,
            "customer_id": claim.customer_id,
            "order_id": claim.order_id,
            "line_id": claim.line_id,
            "status": str(to),
            "previous_status": str(previous) if previous else None,
            "approved_cents": claim.approved_cents,
            "requested_cents": claim.requested_cents,
            "actor": {"kind": actor.kind, "id": actor.id},
            "reason": details.get("reason"),
            "at": now.isoformat(),
            "outcome": customer_outcome(claim, policy, None, now=now).to_event(policy),
        },
    )
    return entry
