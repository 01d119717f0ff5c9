"""What the workbench pages show and how their forms become review actions. The routers stay
thin: they read the request, call these functions inside a transaction and render."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from claims_api.audit.models import AuditEntry
from claims_api.auth.models import Reviewer
from claims_api.auth.principal import Principal
from claims_api.claims.models import Claim
from claims_api.claims.states import Status
from claims_api.db import utcnow
from claims_api.errors import ApiError, not_found
from claims_api.orders.models import Order, OrderLine
from claims_api.photos.models import Photo
from claims_api.review import service as review
from claims_api.review.models import ReviewDecision
from claims_api.review.schemas import DecisionIn, QueuePage
from claims_api.rules import REASON_CODES, Policy, trust_of
from claims_api.verification.history import CustomerHistory, customer_history
from claims_api.web.text import APPROVE_REASONS, PHOTO_REASONS, REJECT_REASONS, error_text

ACTIONS = ("approve", "part", "reject", "request_photos")
DUPLICATE_SIGNALS = ("photo_reused_other_customer", "photo_reused_own")
LABELS = ("rotten", "fresh", "not_produce", "unclear")
MAX_AMOUNT_CENTS = 100_000_000


class FormError(ApiError):
    """A workbench form the server cannot accept (always a 4xx)."""

    def __init__(self, code: str, status: int = 422) -> None:
        super().__init__(status, code, error_text("en", code))


# ---------------------------------------------------------------- queue


@dataclass(frozen=True)
class QueueFilters:
    produce: str | None = None
    reason: str | None = None
    min_cents: int | None = None
    max_cents: int | None = None


@dataclass
class QueueView:
    page: QueuePage
    names: dict[str, str]
    holders: list[tuple[str, int]]
    overdue: int
    produce_options: list[str]
    reason_options: list[str]


def yuan_to_cents(text: str | None) -> int | None:
    """``"3.5"`` -> 350; blank -> None; anything else (or fractions of a fen) -> FormError."""
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip().replace(",", "").replace("¥", ""))
    except InvalidOperation as exc:
        raise FormError("bad_amount") from exc
    cents = value * 100
    if not cents.is_finite() or cents != cents.to_integral_value() or cents < 0:
        raise FormError("bad_amount")
    if cents > MAX_AMOUNT_CENTS:
        raise FormError("bad_amount")
    return int(cents)


def reviewer_names(session: Session, ids: set[str]) -> dict[str, str]:
    """Reviewer id -> the name staff see (the username: reviewers have no other name yet)."""
    if not ids:
        return {}
    rows = session.execute(select(Reviewer.id, Reviewer.username).where(Reviewer.id.in_(ids)))
    return {rid: name for rid, name in rows}


def _produce_options(session: Session) -> list[str]:
    rows = session.scalars(
        select(OrderLine.produce)
        .join(
            Claim,
            and_(OrderLine.order_id == Claim.order_id, OrderLine.line_id == Claim.line_id),
        )
        .where(Claim.status == Status.IN_REVIEW)
        .distinct()
    )
    return sorted(set(rows))


def queue_view(session: Session, filters: QueueFilters, limit: int = 200) -> QueueView:
    page = review.queue(
        session,
        limit=limit,
        produce=filters.produce or None,
        reason=filters.reason or None,
        min_cents=filters.min_cents,
        max_cents=filters.max_cents,
    )
    full = review.queue(session, limit=100_000)
    holders = Counter(i.lease_holder for i in full.items if i.lease_holder)
    names = reviewer_names(session, set(holders))
    return QueueView(
        page=page,
        names=names,
        holders=sorted(((names.get(h, h), n) for h, n in holders.items()), key=lambda x: -x[1]),
        overdue=sum(1 for i in full.items if i.seconds_left < 0),
        produce_options=_produce_options(session),
        reason_options=list(REASON_CODES),
    )


# ---------------------------------------------------------------- claim


@dataclass
class PhotoCard:
    id: str
    width: int
    height: int
    quality_ok: bool
    problems: list[dict[str, Any]]
    scores: dict[str, Any] | None
    has_cam: bool
    exif: dict[str, Any]
    top_produce: list[tuple[str, float]]


@dataclass
class HistoryRow:
    claim_id: str
    submitted_at: datetime
    status: str
    produce: str
    requested_cents: int
    approved_cents: int | None
    reasons: list[str]


@dataclass(frozen=True)
class CustomerStanding:
    """The customer's trust level and recent claims: as the claim's signals recorded them at
    submission, or as the database says now."""

    trust_level: str
    cap_cents: int
    confirmed: int
    rejected: int
    claims_30d: int
    paid_30d_cents: int


@dataclass(frozen=True)
class Standing:
    now: CustomerStanding
    at_submission: CustomerStanding | None  # None: a claim scored before the trust signal

    @property
    def changed(self) -> bool:
        return self.at_submission is not None and self.at_submission != self.now


@dataclass(frozen=True)
class PastDecision:
    """The person's rejection an appeal answers, and the appeal itself."""

    reviewer_name: str
    reason_code: str
    message: str | None
    decided_at: datetime
    appealed_at: datetime | None
    appeal_message: str | None


@dataclass(frozen=True)
class EarlierClaim:
    id: str
    customer_id: str
    status: str
    requested_cents: int
    approved_cents: int | None
    submitted_at: datetime


@dataclass(frozen=True)
class DuplicatePair:
    """One of this claim's photos beside the stored photo it repeats, with the claims that
    stored photo is on (their outcome is what the reviewer weighs)."""

    signal: str  # photo_reused_other_customer | photo_reused_own
    photo_id: str
    matched_photo_id: str
    matched_customer_id: str
    distance: int
    exact: bool
    matched_available: bool  # False once the matched photo has been erased
    claims: list[EarlierClaim]


@dataclass
class ClaimView:
    claim: Claim
    order: Order
    line: OrderLine
    photos: list[PhotoCard]
    signals: list[dict[str, Any]]
    history: list[HistoryRow]
    standing: Standing
    original_decision: PastDecision | None
    duplicates: list[DuplicatePair]
    lease_state: str  # mine | other | free | closed
    holder_name: str | None
    model_version: str | None
    threshold_version: str | None
    policy_version: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def decidable(self) -> bool:
        return self.lease_state == "mine"

    @property
    def signal_codes(self) -> list[str]:
        return [s.get("code", "") for s in self.signals]

    @property
    def claims_30d(self) -> int:
        return self.standing.now.claims_30d

    @property
    def paid_30d_cents(self) -> int:
        return self.standing.now.paid_30d_cents


def _photo_card(photo: Photo) -> PhotoCard:
    scores = photo.scores or None
    probs = (scores or {}).get("produce_probs") or {}
    top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
    return PhotoCard(
        id=photo.id,
        width=photo.width,
        height=photo.height,
        quality_ok=bool((photo.quality or {}).get("ok")),
        problems=list((photo.quality or {}).get("problems", [])),
        scores=scores,
        has_cam=bool(scores and scores.get("cam")),
        exif=dict(photo.exif or {}),
        top_produce=top,
    )


def _photos(session: Session, claim: Claim) -> list[PhotoCard]:
    found = {
        p.id: p
        for p in session.scalars(
            select(Photo).where(Photo.id.in_(claim.photo_ids), Photo.erased_at.is_(None))
        )
    }
    return [_photo_card(found[pid]) for pid in claim.photo_ids if pid in found]


def _history(session: Session, claim: Claim) -> list[HistoryRow]:
    rows = session.execute(
        select(Claim, OrderLine.produce)
        .join(
            OrderLine,
            and_(OrderLine.order_id == Claim.order_id, OrderLine.line_id == Claim.line_id),
        )
        .where(Claim.customer_id == claim.customer_id, Claim.id != claim.id)
        .order_by(Claim.submitted_at.desc())
        .limit(20)
    ).all()
    return [
        HistoryRow(
            claim_id=c.id,
            submitted_at=c.submitted_at,
            status=c.status,
            produce=produce,
            requested_cents=c.requested_cents,
            approved_cents=c.approved_cents,
            reasons=[r.get("code", "") for r in (c.decision or {}).get("reasons", [])],
        )
        for c, produce in rows
    ]


def _lease_state(claim: Claim, user_id: str, now: datetime) -> str:
    if claim.status != Status.IN_REVIEW:
        return "closed"
    active = claim.lease_expires_at is not None and claim.lease_expires_at > now
    if not active or claim.lease_holder is None:
        return "free"
    return "mine" if claim.lease_holder == user_id else "other"


def _signal(signals: list[dict[str, Any]], code: str) -> dict[str, Any] | None:
    return next((s for s in signals if s.get("code") == code), None)


def _standing_at_submission(signals: list[dict[str, Any]]) -> CustomerStanding | None:
    """What the trust, frequency and 30-day payout signals recorded when the claim came in."""
    trust, frequency = _signal(signals, "trust"), _signal(signals, "claim_frequency")
    paid = _signal(signals, "paid_amount_30d")
    if trust is None or frequency is None or paid is None:
        return None
    details = trust.get("details") or {}
    return CustomerStanding(
        trust_level=str(trust.get("value")),
        cap_cents=int(trust.get("threshold") or 0),
        confirmed=int(details.get("confirmed_claims", 0)),
        rejected=int(details.get("rejected_claims", 0)),
        claims_30d=int(frequency.get("value") or 0),
        paid_30d_cents=int((paid.get("details") or {}).get("paid_30d_cents", 0)),
    )


def _standing_now(history: CustomerHistory, policy: Policy) -> CustomerStanding:
    level = trust_of(history, policy)
    return CustomerStanding(
        trust_level=level.level,
        cap_cents=level.cap_cents,
        confirmed=history.confirmed,
        rejected=history.rejected,
        claims_30d=history.claims_30d,
        paid_30d_cents=history.paid_30d_cents,
    )


def _standing(session: Session, claim: Claim, policy: Policy, now: datetime) -> Standing:
    """Both views of the customer: the signals' snapshot and the same lookup run now (the
    one the claim's signals ran, so the two compare like with like)."""
    history = customer_history(session, claim.customer_id, now, claim.id, policy)
    signals = (claim.verification or {}).get("signals", [])
    return Standing(
        now=_standing_now(history, policy), at_submission=_standing_at_submission(signals)
    )


def _original_decision(session: Session, claim: Claim) -> PastDecision | None:
    """On an appealed claim: the rejection being appealed (the latest one) and the appeal."""
    if not claim.appealed:
        return None
    rejection = session.scalars(
        select(ReviewDecision)
        .where(ReviewDecision.claim_id == claim.id, ReviewDecision.outcome == "reject")
        .order_by(ReviewDecision.decided_at.desc(), ReviewDecision.id.desc())
        .limit(1)
    ).first()
    if rejection is None:
        return None
    appealed_at = session.scalar(
        select(AuditEntry.at)
        .where(
            AuditEntry.entity_type == "claim",
            AuditEntry.entity_id == claim.id,
            AuditEntry.action == f"status:{Status.IN_REVIEW}",
            AuditEntry.at >= rejection.decided_at,
        )
        .order_by(AuditEntry.id)
        .limit(1)
    )
    names = reviewer_names(session, {rejection.reviewer_id})
    return PastDecision(
        reviewer_name=names.get(rejection.reviewer_id, rejection.reviewer_id),
        reason_code=rejection.reason_code,
        message=rejection.message,
        decided_at=rejection.decided_at,
        appealed_at=appealed_at,
        appeal_message=claim.appeal_message,
    )


def _duplicates(session: Session, signals: list[dict[str, Any]]) -> list[DuplicatePair]:
    """The fired photo-reuse signals' matches, with the matched photos' claims (two queries
    for the whole claim)."""
    matches = [
        (signal["code"], match)
        for signal in signals
        if signal.get("code") in DUPLICATE_SIGNALS and signal.get("fired")
        for match in (signal.get("details") or {}).get("matches", [])
    ]
    if not matches:
        return []
    claim_ids = {cid for _, match in matches for cid in match.get("claim_ids", [])}
    claims = {
        c.id: EarlierClaim(
            c.id, c.customer_id, c.status, c.requested_cents, c.approved_cents, c.submitted_at
        )
        for c in session.scalars(select(Claim).where(Claim.id.in_(claim_ids)))
    }
    stored = set(
        session.scalars(
            select(Photo.id).where(
                Photo.id.in_({m["matched_photo_id"] for _, m in matches}),
                Photo.erased_at.is_(None),
            )
        )
    )
    return [
        DuplicatePair(
            signal=code,
            photo_id=match["photo_id"],
            matched_photo_id=match["matched_photo_id"],
            matched_customer_id=match.get("matched_customer_id", ""),
            distance=int(match.get("distance", 0)),
            exact=bool(match.get("exact")),
            matched_available=match["matched_photo_id"] in stored,
            claims=sorted(
                (claims[cid] for cid in match.get("claim_ids", []) if cid in claims),
                key=lambda c: c.submitted_at,
            ),
        )
        for code, match in matches
    ]


def claim_view(session: Session, claim_id: str, user_id: str, policy: Policy) -> ClaimView:
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise not_found("claim")
    order = session.get(Order, claim.order_id)
    line = session.get(OrderLine, (claim.order_id, claim.line_id))
    if order is None or line is None:
        raise not_found("claim")
    now = utcnow()
    state = _lease_state(claim, user_id, now)
    holder = claim.lease_holder if state == "other" else None
    decision = claim.decision or {}
    signals = (claim.verification or {}).get("signals", [])
    return ClaimView(
        claim=claim,
        order=order,
        line=line,
        photos=_photos(session, claim),
        signals=sorted(signals, key=lambda s: not s.get("fired")),
        history=_history(session, claim),
        standing=_standing(session, claim, policy, now),
        original_decision=_original_decision(session, claim),
        duplicates=_duplicates(session, signals),
        lease_state=state,
        holder_name=reviewer_names(session, {holder}).get(holder, holder) if holder else None,
        model_version=decision.get("model_version"),
        threshold_version=decision.get("threshold_version"),
        policy_version=decision.get("policy_version"),
    )


# ---------------------------------------------------------------- decisions


def reason_options(action: str) -> tuple[str, ...]:
    if action in ("approve", "part"):
        return APPROVE_REASONS
    if action == "reject":
        return REJECT_REASONS
    return PHOTO_REASONS


def decision_from_form(form: dict[str, str]) -> DecisionIn:
    """The form's action (approve | part | reject | request_photos) as a review decision."""
    action = form.get("action", "")
    if action not in ACTIONS:
        raise FormError("bad_action")
    reason = (form.get("reason_code") or "").strip()
    if reason not in reason_options(action):
        raise FormError("reason_required")
    message = (form.get("message") or "").strip() or None
    if action == "reject" and not message:
        raise FormError("message_required")
    amount = yuan_to_cents(form.get("amount")) if action == "part" else None
    if action == "part" and not amount:
        raise FormError("bad_amount")
    outcome = "approve" if action in ("approve", "part") else action
    return DecisionIn(outcome=outcome, amount_cents=amount, reason_code=reason, message=message)


def seen_snapshot(view: ClaimView, form: dict[str, str], locale: str) -> dict[str, Any]:
    """What was on the reviewer's screen, kept with the decision for the audit."""
    shown = [p for p in (form.get("photos_shown") or "").split(",") if p]
    return {
        "via": "workbench",
        "locale": locale,
        "model_version": view.model_version,
        "threshold_version": view.threshold_version,
        "policy_version": view.policy_version,
        "photo_ids": [p.id for p in view.photos],
        "photos_loaded": shown,
        "photo_scores": {
            p.id: {
                "p_rotten": (p.scores or {}).get("p_rotten"),
                "produce": (p.scores or {}).get("produce"),
                "model_version": (p.scores or {}).get("model_version"),
            }
            for p in view.photos
        },
        "signal_codes": view.signal_codes,
        "heatmap_shown": form.get("heatmap_shown") == "1",
        "history_claims": len(view.history),
        "paid_30d_cents": view.paid_30d_cents,
        "trust_level_now": view.standing.now.trust_level,
        "duplicates_shown": [d.matched_photo_id for d in view.duplicates if d.matched_available],
    }


def decide_and_next(
    session: Session,
    user_principal: Principal,
    claim_id: str,
    form: dict[str, str],
    locale: str,
    lease_seconds: int,
    policy: Policy,
) -> Claim | None:
    """Records the decision (through review.record_decision) and leases the next claim, in
    one transaction; returns the next claim or None when the queue is empty."""
    body = decision_from_form(form)
    view = claim_view(session, claim_id, user_principal.id, policy)
    seen = seen_snapshot(view, form, locale)
    review.record_decision(session, user_principal, claim_id, body, policy, seen=seen)
    return review.lease_next(session, user_principal, lease_seconds)


def skip_and_next(
    session: Session, user_principal: Principal, claim_id: str, lease_seconds: int
) -> Claim | None:
    review.release(session, user_principal, claim_id)
    return review.lease_next(session, user_principal, lease_seconds, exclude=[claim_id])


def label_from_form(form: dict[str, str]) -> tuple[str, str | None]:
    condition = form.get("condition", "")
    if condition not in LABELS:
        raise FormError("bad_label")
    produce = (form.get("produce") or "").strip().lower() or None
    if produce is not None and (len(produce) > 50 or not produce.replace("_", "").isalnum()):
        raise FormError("bad_label")
    return condition, produce
