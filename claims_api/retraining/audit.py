"""Audit reviews: a random share of auto-approved claims is paid at once *and* queued for a
person to label. Without them the auto-approve region is never labelled, and its precision
can be neither measured nor (re-)certified per kind.

The audit lives beside the claim, in its decision record (``decision["audit"]``), never in
its status: the claim stays ``paid`` whatever the verdict (reversing a payout is an admin's
act), and the verdict is a label for retraining and certification. The share drawn for each
claim is recorded with it, so an estimate from the audited claims can be weighted back to
all auto-approvals.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, lazyload

from claims_api.audit import service as audit_log
from claims_api.auth.principal import Principal
from claims_api.claims.models import Claim
from claims_api.db import utcnow
from claims_api.orders.models import OrderLine
from claims_api.retraining.bounds import precision_lower_bound
from claims_api.retraining.errors import AuditAlreadyDone, AuditLeaseNotHeld, AuditNotFound
from claims_api.retraining.schemas import (
    AuditItem,
    AuditKindSummary,
    AuditPage,
    AuditSummary,
    AuditVerdictIn,
)
from claims_api.rules.policy import Policy

PENDING, DONE = "pending", "done"
# Unpredictable to customers: a fraudster must not learn which approvals get a second look.
_DRAW = random.SystemRandom()


def share_for(certification: dict[str, Any] | None, policy: Policy) -> float:
    """A certified kind's approvals are sampled at ``audit_share``; anything else (validated
    mode, no certificate) at ``audit_share_uncertified``."""
    certified = (certification or {}).get("status") == "certified"
    return policy.audit_share if certified else policy.audit_share_uncertified


def sample_auto_approval(claim: Claim, policy: Policy, draw: float | None = None) -> bool:
    """Called once an auto-approved claim is paid; records the draw in its decision."""
    decision = claim.decision or {}
    share = share_for(decision.get("certification"), policy)
    selected = (_DRAW.random() if draw is None else draw) < share
    record: dict[str, Any] = {"share": share, "selected": selected}
    if selected:
        record |= {"state": PENDING, "queued_at": utcnow().isoformat()}
    claim.decision = {**decision, "audit": record}
    return selected


def _state():
    return Claim.decision["audit"]["state"].as_string()


def _lease(claim: Claim) -> tuple[str | None, datetime | None]:
    record = (claim.decision or {}).get("audit") or {}
    expires = record.get("lease_expires_at")
    return record.get("lease_holder"), datetime.fromisoformat(expires) if expires else None


def _free(claim: Claim, now: datetime) -> bool:
    holder, expires = _lease(claim)
    return holder is None or expires is None or expires <= now


def queue(session: Session, limit: int, offset: int) -> AuditPage:
    """Pending audits, oldest payout first."""
    now = utcnow()
    line = and_(OrderLine.order_id == Claim.order_id, OrderLine.line_id == Claim.line_id)
    total = session.scalar(select(func.count()).select_from(Claim).where(_state() == PENDING))
    rows = session.execute(
        select(Claim, OrderLine.produce)
        .join(OrderLine, line)
        .where(_state() == PENDING)
        .order_by(Claim.paid_at, Claim.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return AuditPage(total=total or 0, items=[_item(c, p, now) for c, p in rows])


def _item(claim: Claim, produce: str, now: datetime) -> AuditItem:
    decision = claim.decision or {}
    holder, expires = _lease(claim)
    active = not _free(claim, now)
    return AuditItem(
        claim_id=claim.id,
        customer_id=claim.customer_id,
        produce=produce,
        paid_cents=claim.approved_cents or 0,
        paid_at=claim.paid_at,
        share=decision["audit"]["share"],
        certification=(decision.get("certification") or {}).get("status", "unknown"),
        lease_holder=holder if active else None,
        lease_expires_at=expires if active else None,
    )


def _pending(batch: int, offset: int = 0, holder: str | None = None):
    query = select(Claim).where(_state() == PENDING)
    if holder is not None:
        query = query.where(Claim.decision["audit"]["lease_holder"].as_string() == holder)
    return (
        query.order_by(Claim.paid_at, Claim.id)
        .limit(batch)
        .offset(offset)
        .with_for_update(skip_locked=True)
        .options(lazyload(Claim.photos))
    )


def _next_for(session: Session, reviewer: Principal, now: datetime) -> Claim | None:
    """The reviewer's own live lease first, then the oldest free audit. Rows are locked
    ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers), so two reviewers
    never take the same one; the lease's expiry lives in JSON, so it is judged here."""
    for claim in session.scalars(_pending(5, holder=reviewer.id)):
        if not _free(claim, now):
            return claim
    batch, offset = 50, 0
    while True:
        rows = session.scalars(_pending(batch, offset)).all()
        free = next((c for c in rows if _free(c, now)), None)
        if free is not None or len(rows) < batch:
            return free
        offset += batch


def lease_next(session: Session, reviewer: Principal, lease_seconds: int) -> Claim | None:
    """Leases (or extends) an audit review for ``reviewer``; None when none is free."""
    now = utcnow()
    claim = _next_for(session, reviewer, now)
    if claim is None:
        return None
    expires = now + timedelta(seconds=lease_seconds)
    record = {**claim.decision["audit"], "lease_holder": reviewer.id}
    record["lease_expires_at"] = expires.isoformat()
    claim.decision = {**claim.decision, "audit": record}
    audit_log.record(
        session, reviewer, "claim", claim.id, "audit_lease", expires_at=expires.isoformat()
    )
    return claim


def lease_expiry(claim: Claim) -> datetime:
    expires = _lease(claim)[1]
    assert expires is not None, "called on a leased audit"
    return expires


def record_verdict(
    session: Session, reviewer: Principal, claim_id: str, body: AuditVerdictIn
) -> dict[str, Any]:
    """Stores the verdict as the claim's audit label; the claim and its payout stay as they
    are."""
    claim = session.scalar(select(Claim).where(Claim.id == claim_id).with_for_update())
    record = ((claim.decision or {}).get("audit") or {}) if claim else {}
    if not record.get("selected"):
        raise AuditNotFound()
    if record.get("state") == DONE:
        raise AuditAlreadyDone()
    holder, expires = _lease(claim)
    if holder != reviewer.id or expires is None or expires <= utcnow():
        raise AuditLeaseNotHeld()
    # The reviewer's note goes to the audit log only, where an erasure redacts free text;
    # the label itself has none.
    verdict = {
        "verdict": body.verdict,
        "produce": body.produce,
        "auto_approval_correct": None if body.verdict == "unclear" else body.verdict == "rotten",
        "reviewer_id": reviewer.id,
        "reviewer": reviewer.name,
        "at": utcnow().isoformat(),
    }
    done = {k: v for k, v in record.items() if k not in ("lease_holder", "lease_expires_at")}
    claim.decision = {**claim.decision, "audit": {**done, "state": DONE, "verdict": verdict}}
    audit_log.record(
        session,
        reviewer,
        "claim",
        claim.id,
        "audit_verdict",
        verdict=body.verdict,
        produce=body.produce,
        note=body.note,
    )
    return {"claim_id": claim.id, **verdict}


SUMMARY_DELTA = 0.05


def summary(session: Session) -> AuditSummary:
    """The auto-approve precision measured by audits, per produce kind and certification
    status (each stratum was sampled at one share, so its audits estimate it unbiasedly)."""
    line = and_(OrderLine.order_id == Claim.order_id, OrderLine.line_id == Claim.line_id)
    rows = session.execute(
        select(Claim.decision, OrderLine.produce).join(OrderLine, line).where(_state() == DONE)
    ).all()
    counts: dict[tuple[str, str], Counter] = {}
    for decision, produce in rows:
        status = (decision.get("certification") or {}).get("status", "unknown")
        correct = decision["audit"]["verdict"]["auto_approval_correct"]
        key = "unclear" if correct is None else "correct" if correct else "wrong"
        counts.setdefault((produce, status), Counter())[key] += 1
    pending = session.scalar(select(func.count()).select_from(Claim).where(_state() == PENDING))
    return AuditSummary(
        pending=pending or 0,
        kinds=[_kind_summary(p, s, c) for (p, s), c in sorted(counts.items())],
    )


def _kind_summary(produce: str, status: str, count: Counter) -> AuditKindSummary:
    correct, wrong = count["correct"], count["wrong"]
    judged = correct + wrong
    return AuditKindSummary(
        produce=produce,
        certification=status,
        audited=judged + count["unclear"],
        correct=correct,
        wrong=wrong,
        unclear=count["unclear"],
        precision=round(correct / judged, 6) if judged else None,
        precision_lower_bound=(
            round(precision_lower_bound(judged, wrong, SUMMARY_DELTA), 6) if judged else None
        ),
    )
