"""The manual-review queue. A lease has one holder: leasing takes the most
urgent free claim under ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite serialises writers),
and a decision re-checks holder and expiry in its own transaction."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select, true, update
from sqlalchemy.orm import Session, lazyload

from claims_api.audit import service as audit
from claims_api.auth.principal import Principal
from claims_api.claims.errors import ClaimNotFound
from claims_api.claims.models import Claim, ClaimPhoto
from claims_api.claims.states import Status, transition
from claims_api.compensation import service as ledger
from claims_api.db import utcnow
from claims_api.orders.models import OrderLine
from claims_api.photos.errors import PhotoNotFound
from claims_api.photos.models import Photo
from claims_api.review.errors import (
    AmountTooHigh,
    AppealNeedsAnotherReviewer,
    LeaseNotHeld,
    MessageRequired,
    NotInReview,
    UnknownReasonCode,
)
from claims_api.review.models import PhotoLabel, ReviewDecision
from claims_api.review.schemas import DecisionIn, QueueItem, QueuePage
from claims_api.rules.policy import Policy
from claims_api.rules.review_reasons import allowed_reasons


def _free(now: datetime):
    return or_(Claim.lease_holder.is_(None), Claim.lease_expires_at < now)


def queue(
    session: Session,
    limit: int = 50,
    offset: int = 0,
    produce: str | None = None,
    reason: str | None = None,
    min_cents: int | None = None,
    max_cents: int | None = None,
) -> QueuePage:
    now = utcnow()
    filters = [Claim.status == Status.IN_REVIEW]
    if produce:
        filters.append(OrderLine.produce == produce)
    if min_cents is not None:
        filters.append(Claim.requested_cents >= min_cents)
    if max_cents is not None:
        filters.append(Claim.requested_cents <= max_cents)
    if reason:
        filters.append(Claim.reason_codes.contains(f",{reason},", autoescape=True))
    line = and_(OrderLine.order_id == Claim.order_id, OrderLine.line_id == Claim.line_id)
    total, leased = session.execute(
        select(func.count(), func.count().filter(Claim.lease_expires_at > now))
        .select_from(Claim)
        .join(OrderLine, line)
        .where(*filters)
    ).one()
    rows = session.execute(
        select(Claim, OrderLine.produce)
        .join(OrderLine, line)
        .where(*filters)
        .order_by(Claim.sla_deadline, Claim.requested_cents.desc(), Claim.id)
        .limit(limit)
        .offset(offset)
    ).all()
    items = [_item(claim, produce_kind, now) for claim, produce_kind in rows]
    return QueuePage(total=total, leased=leased, items=items)


def _item(claim: Claim, produce: str, now: datetime) -> QueueItem:
    reasons = [r["code"] for r in (claim.decision or {}).get("reasons", [])]
    active = claim.lease_expires_at is not None and claim.lease_expires_at > now
    return QueueItem(
        claim_id=claim.id,
        customer_id=claim.customer_id,
        order_id=claim.order_id,
        line_id=claim.line_id,
        produce=produce,
        requested_cents=claim.requested_cents,
        sla_deadline=claim.sla_deadline,
        seconds_left=int((claim.sla_deadline - now).total_seconds()),
        reasons=reasons,
        appealed=claim.appealed,
        status=claim.status,
        lease_holder=claim.lease_holder if active else None,
        lease_expires_at=claim.lease_expires_at if active else None,
    )


def lease_next(
    session: Session, reviewer: Principal, lease_seconds: int, exclude: Collection[str] = ()
) -> Claim | None:
    """The reviewer's current lease if they hold one (extended), else the most urgent free
    claim (``exclude``: claims the reviewer just skipped), leased to them.

    One statement: ``UPDATE … WHERE id = COALESCE((held claim FOR UPDATE), (most urgent free
    claim FOR UPDATE SKIP LOCKED)) RETURNING …``; PostgreSQL evaluates the free-claim
    subquery only when the reviewer holds nothing. The claim's photos load only when read."""
    now = utcnow()
    holds = and_(Claim.lease_holder == reviewer.id, Claim.lease_expires_at > now)
    held = (
        select(Claim.id)
        .where(Claim.status == Status.IN_REVIEW, holds)
        .limit(1)
        .with_for_update()
        .scalar_subquery()
    )
    free = (
        select(Claim.id)
        .where(
            Claim.status == Status.IN_REVIEW,
            _free(now),
            Claim.id.not_in(list(exclude)) if exclude else true(),
            # an appeal goes to a reviewer other than the one who rejected it
            or_(
                Claim.appealed.is_(False),
                Claim.rejected_by.is_(None),
                Claim.rejected_by != reviewer.id,
            ),
        )
        .order_by(Claim.sla_deadline, Claim.requested_cents.desc(), Claim.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    expires = now + timedelta(seconds=lease_seconds)
    claim = session.scalars(
        update(Claim)
        .where(Claim.id == func.coalesce(held, free))
        .values(
            lease_holder=reviewer.id,
            lease_expires_at=expires,
            # a lease extended keeps the time it was first taken
            leased_at=case((holds, Claim.leased_at), else_=now),
        )
        .returning(Claim)
        .options(lazyload(Claim.photos))
        .execution_options(synchronize_session=False, populate_existing=True)
    ).one_or_none()
    if claim is None:
        return None
    audit.record(session, reviewer, "claim", claim.id, "lease", expires_at=expires.isoformat())
    return claim


def _locked_claim(session: Session, claim_id: str) -> Claim:
    claim = session.scalar(
        select(Claim)
        .where(Claim.id == claim_id)
        .with_for_update()
        .options(lazyload(Claim.photos))  # loaded only if read (claim_out reads them)
    )
    if claim is None:
        raise ClaimNotFound()
    return claim


def _require_lease(claim: Claim, reviewer: Principal) -> None:
    now = utcnow()
    if claim.status != Status.IN_REVIEW:
        raise NotInReview(f"This claim is {claim.status}, not waiting for review.")
    if (
        claim.lease_holder != reviewer.id
        or claim.lease_expires_at is None
        or claim.lease_expires_at <= now
    ):
        raise LeaseNotHeld()


def heartbeat(session: Session, reviewer: Principal, claim_id: str, lease_seconds: int) -> Claim:
    claim = _locked_claim(session, claim_id)
    _require_lease(claim, reviewer)
    claim.lease_expires_at = utcnow() + timedelta(seconds=lease_seconds)
    return claim


def release(session: Session, reviewer: Principal, claim_id: str) -> Claim:
    claim = _locked_claim(session, claim_id)
    _require_lease(claim, reviewer)
    claim.lease_holder = None
    claim.lease_expires_at = None
    audit.record(session, reviewer, "claim", claim.id, "release")
    return claim


def _check_reason(body: DecisionIn) -> None:
    allowed = allowed_reasons(body.outcome)
    if body.reason_code not in allowed:
        raise UnknownReasonCode(
            f"{body.reason_code!r} is not a reason for {body.outcome}; use one of: "
            f"{', '.join(allowed)}.",
            allowed=list(allowed),
        )


def record_decision(
    session: Session,
    reviewer: Principal,
    claim_id: str,
    body: DecisionIn,
    policy: Policy,
    seen: dict | None = None,
) -> Claim:
    """A person's decision. The customer is told the outcome with the reviewer's message
    verbatim (it goes into the claim's decision before the move, so the event carries it)."""
    _check_reason(body)
    claim = _locked_claim(session, claim_id)
    _require_lease(claim, reviewer)
    if claim.appealed and claim.rejected_by == reviewer.id:
        raise AppealNeedsAnotherReviewer()
    leased_at = claim.leased_at
    details = {"reason_code": body.reason_code, "message": body.message}
    claim.decision = {
        **(claim.decision or {}),
        "decided_by": reviewer.id,
        "review": {
            "outcome": body.outcome,
            "reason_code": body.reason_code,
            "message": body.message,
            "reviewer": reviewer.name,
            "at": utcnow().isoformat(),
        },
    }
    if body.outcome == "approve":
        line = ledger.lock_line(session, claim.order_id, claim.line_id)
        remaining = ledger.remaining_cents(session, line)
        amount = body.amount_cents or claim.requested_cents
        allowed = min(remaining, claim.requested_cents)
        if amount > allowed:
            raise AmountTooHigh(f"At most {allowed} cents can be approved for this claim.")
        claim.approved_cents = amount
        status = Status.APPROVED if amount == claim.requested_cents else Status.PARTIALLY_APPROVED
        transition(session, claim, status, reviewer, policy, reason=body.reason_code, **details)
        ledger.pay_claim(session, claim, amount, reviewer.id, remaining=remaining)
        transition(session, claim, Status.PAID, reviewer, policy)
    elif body.outcome == "reject":
        if not body.message:
            raise MessageRequired()
        claim.rejected_by = reviewer.id
        transition(
            session, claim, Status.REJECTED, reviewer, policy, reason=body.reason_code, **details
        )
    else:
        if not body.message:
            raise MessageRequired("Tell the customer which photos to take.")
        transition(
            session,
            claim,
            Status.PHOTOS_REQUESTED,
            reviewer,
            policy,
            reason=body.reason_code,
            **details,
        )
    session.add(_decision_row(session, claim, reviewer, body, leased_at, seen or {}))
    return claim


def _decision_row(
    session: Session,
    claim: Claim,
    reviewer: Principal,
    body: DecisionIn,
    leased_at: datetime | None,
    seen: dict,
) -> ReviewDecision:
    scores = [
        s
        for s in session.scalars(
            select(Photo.scores)
            .join(ClaimPhoto, ClaimPhoto.photo_id == Photo.id)
            .where(ClaimPhoto.claim_id == claim.id)
        )
        if s
    ]
    return ReviewDecision(
        claim_id=claim.id,
        reviewer_id=reviewer.id,
        outcome=body.outcome,
        amount_cents=claim.approved_cents if body.outcome == "approve" else None,
        reason_code=body.reason_code,
        message=body.message,
        leased_at=leased_at,
        decided_at=utcnow(),
        model_version=scores[0]["model_version"] if scores else None,
        model_p_rotten=min(s["p_rotten"] for s in scores) if scores else None,
        seen={"signals": (claim.verification or {}).get("signals", []), **seen},
    )


def label_photo(
    session: Session, reviewer: Principal, photo_id: str, condition: str, produce: str | None
) -> PhotoLabel:
    if session.get(Photo, photo_id) is None:
        raise PhotoNotFound()
    label = PhotoLabel(
        photo_id=photo_id,
        reviewer_id=reviewer.id,
        condition=condition,
        produce=produce,
        labelled_at=utcnow(),
    )
    session.add(label)
    return label


def expire_leases(session: Session) -> int:
    """Clears expired leases so the queue view is honest (leasing ignores them anyway)."""
    now = utcnow()
    expired = session.scalars(
        select(Claim)
        .where(Claim.lease_expires_at < now, Claim.lease_holder.is_not(None))
        .with_for_update(skip_locked=True)
        .limit(500)
    ).all()
    for claim in expired:
        audit.record(
            session,
            Principal(kind="system", id="lease-sweeper"),
            "claim",
            claim.id,
            "lease_expired",
            holder=claim.lease_holder,
        )
        claim.lease_holder = None
        claim.lease_expires_at = None
    return len(expired)
