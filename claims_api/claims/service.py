"""Submitting, reading and appealing claims."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from claims_api.audit.models import AuditEntry
from claims_api.auth.principal import SYSTEM, Principal
from claims_api.claims.errors import (
    AlreadyAppealed,
    AppealWindowClosed,
    ClaimAlreadyOpen,
    ClaimNotFound,
    ClaimRejectedAppealInstead,
    ConcurrentUpdate,
    IdempotencyKeyReused,
    InvalidCursor,
    LineFullyCompensated,
    NotRejected,
    PhotosNotRequested,
    QuantityExceedsLine,
    TooManyPhotos,
)
from claims_api.claims.models import Claim, ClaimPhoto, IdempotencyRecord
from claims_api.claims.schemas import (
    ClaimCreate,
    ClaimOut,
    ClaimPage,
    CompensationOut,
    CustomerClaimOut,
    DecisionOut,
    OutcomeOut,
    TimelineEntry,
)
from claims_api.claims.states import Status, open_claim, transition
from claims_api.compensation import service as ledger
from claims_api.compensation.models import LedgerPosting
from claims_api.db import new_id, utcnow
from claims_api.observability import CLAIMS_DECIDED
from claims_api.orders.errors import OrderNotFound, UnknownLine
from claims_api.orders.models import Order, OrderLine
from claims_api.photos.errors import PhotoNotFound
from claims_api.photos.models import Photo
from claims_api.retraining import audit
from claims_api.rules import ClaimContext, Policy, decide, evaluate, reviewer_text
from claims_api.rules.outcome import appeal_until, customer_outcome
from claims_api.verification import duplicates, history

OPEN_STATUSES = (Status.SUBMITTED, Status.IN_REVIEW, Status.PHOTOS_REQUESTED)


def request_hash(body: ClaimCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotencyRecord, digest: str) -> tuple[int, dict]:
    if record.request_hash != digest:
        raise IdempotencyKeyReused(claim_id=record.claim_id)
    return record.response_status, record.response_body


def _find_record(session: Session, customer_id: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.customer_id == customer_id, IdempotencyRecord.key == key
        )
    )


def _owned_photos(session: Session, customer_id: str, photo_ids: list[str]) -> list[Photo]:
    found = {
        p.id: p
        for p in session.scalars(
            select(Photo).where(
                Photo.id.in_(photo_ids), Photo.customer_id == customer_id, Photo.erased_at.is_(None)
            )
        )
    }
    missing = [pid for pid in photo_ids if pid not in found]
    if missing:
        # Another customer's photo is reported exactly like one that does not exist.
        raise PhotoNotFound(f"No such photo: {missing[0]}.", photo_ids=missing)
    return [found[pid] for pid in photo_ids]


def _order_line(session: Session, customer_id: str, body: ClaimCreate) -> tuple[Order, OrderLine]:
    order = session.get(Order, body.order_id)
    if order is None or order.customer_id != customer_id:
        raise OrderNotFound()
    # Claims on one line queue here, before anything is written: the open-claim and remaining
    # checks below are then race-free, and lock order is line before ledger (no deadlock).
    line = ledger.lock_line_if_exists(session, body.order_id, body.line_id)
    if line is None:
        raise UnknownLine(f"Order {body.order_id} has no line {body.line_id!r}.")
    if body.affected_quantity > line.quantity:
        raise QuantityExceedsLine(
            f"affected_quantity {body.affected_quantity} is more than the {line.quantity} ordered.",
        )
    return order, line


# A person's "no" on a line: a rejection, or a paid claim an admin reversed.
REFUSED_STATUSES = (Status.REJECTED, Status.REVERSED)


def _refused_on_line(session: Session, order_id: str, line_id: str, *, exclude: str) -> list[Claim]:
    return list(
        session.scalars(
            select(Claim)
            .where(
                Claim.order_id == order_id,
                Claim.line_id == line_id,
                Claim.status.in_([str(s) for s in REFUSED_STATUSES]),
                Claim.id != exclude,
            )
            .order_by(Claim.decided_at.desc(), Claim.id)
        )
    )


def _refuse_while_appealable(refused: list[Claim], policy: Policy, now: datetime) -> None:
    """A person rejected this line and the customer may still appeal: the appeal is the way
    to disagree, not a new claim that the machine might pay."""
    for earlier in refused:
        until = appeal_until(earlier, policy)
        if until is not None and now <= until:
            raise ClaimRejectedAppealInstead(
                "A person rejected the earlier claim on this order line; appeal that claim "
                f"instead (once, until {until.isoformat()}).",
                claim_id=earlier.id,
                appeal_until=until.isoformat(),
            )


def _context(
    session: Session,
    claim: Claim,
    order: Order,
    line: OrderLine,
    photos: list[Photo],
    policy: Policy,
    refused_on_line: int | None = None,
) -> ClaimContext:
    """Everything the signals read, gathered with a few indexed queries (the claim row is
    already written, so rates that include this claim count it)."""
    now = claim.submitted_at
    return ClaimContext(
        order=order,
        line=line,
        photos=photos,
        requested_cents=claim.requested_cents,
        submitted_at=now,
        history=history.customer_history(session, claim.customer_id, now, claim.id, policy),
        policy=policy,
        pickup=history.pickup_point_history(session, order.pickup_point_id, now, claim.id, policy),
        reuse=tuple(
            duplicates.find_reuse(
                session, claim.id, claim.customer_id, photos, policy.duplicate_max_distance
            )
        ),
        refused_on_line=(
            len(_refused_on_line(session, order.id, line.line_id, exclude=claim.id))
            if refused_on_line is None
            else refused_on_line
        ),
    )


def submit_claim(
    session: Session,
    customer: Principal,
    key: str,
    body: ClaimCreate,
    policy: Policy,
    max_photos: int,
    locale: str | None = None,
) -> tuple[int, dict]:
    """Returns (status code, response body): the customer's view of the claim in ``locale``;
    a replay returns what the first call returned."""
    digest = request_hash(body)
    existing = _find_record(session, customer.id, key)
    if existing is not None:
        return _replay(existing, digest)
    if len(body.photo_ids) > max_photos:
        raise TooManyPhotos(f"A claim takes at most {max_photos} photos.")

    order, line = _order_line(session, customer.id, body)
    existing = _find_record(session, customer.id, key)  # a twin may have committed while we waited
    if existing is not None:
        return _replay(existing, digest)
    photos = _owned_photos(session, customer.id, body.photo_ids)
    open_claim = session.scalar(
        select(Claim.id).where(
            Claim.order_id == order.id,
            Claim.line_id == line.line_id,
            Claim.status.in_([str(s) for s in OPEN_STATUSES]),
        )
    )
    if open_claim:
        raise ClaimAlreadyOpen(claim_id=open_claim)
    remaining = ledger.remaining_cents(session, line)
    if remaining == 0:
        raise LineFullyCompensated()
    now = utcnow()
    refused = _refused_on_line(session, order.id, line.line_id, exclude="")
    _refuse_while_appealable(refused, policy, now)

    claim = Claim(
        id=new_id("clm"),
        customer_id=customer.id,
        order_id=order.id,
        line_id=line.line_id,
        issue=body.issue,
        affected_quantity=body.affected_quantity,
        note=body.note,
        requested_cents=min(body.affected_quantity * line.unit_price_cents, remaining),
        submitted_at=now,
        sla_deadline=now + timedelta(minutes=policy.auto_sla_minutes),
        photos=[ClaimPhoto(photo_id=p.id, position=i, added_at=now) for i, p in enumerate(photos)],
    )
    record = IdempotencyRecord(
        customer_id=customer.id,
        key=key,
        request_hash=digest,
        claim_id=claim.id,
        response_status=201,
        created_at=now,
    )
    try:
        response = _decide_and_record(
            session, claim, record, order, line, photos, policy, remaining, len(refused), locale
        )
    except _KeyTaken:
        winner = _find_record(session, customer.id, key)
        if winner is None:  # the unique violation came from elsewhere: surface it
            raise ConcurrentUpdate() from None
        return _replay(winner, digest)
    CLAIMS_DECIDED.labels(claim.decision["route"]).inc()  # a replay is not counted again
    return 201, response


class _KeyTaken(Exception):
    """A concurrent request recorded the same Idempotency-Key first."""


def _decide_and_record(
    session: Session,
    claim: Claim,
    record: IdempotencyRecord,
    order: Order,
    line: OrderLine,
    photos: list[Photo],
    policy: Policy,
    remaining: int,
    refused_on_line: int,
    locale: str | None,
) -> dict:
    """Writes the claim, decides it and writes the idempotency record last, with the answer,
    all inside one savepoint. Twins on one order line queue on the line lock and the later
    one finds the record before it gets here; a request that used the same key for another
    line cannot be seen until it commits: on PostgreSQL the record's insert waits for it and
    then fails on the unique key, the savepoint takes this claim's rows (payout and events
    included) back, and :class:`_KeyTaken` sends the caller to the winner's record."""
    try:
        with session.begin_nested():
            session.add(claim)
            customer = Principal(kind="customer", id=claim.customer_id)
            submitted = open_claim(session, claim, customer, policy)
            session.flush()
            context = _context(session, claim, order, line, photos, policy, refused_on_line)
            written = _route(session, claim, context, remaining)
            written.moves.insert(0, submitted)
            # built from what this transaction wrote, not read back: what a GET returns
            response = customer_claim_out(session, claim, policy, locale, written)
            response = response.model_dump(mode="json")
            record.response_body = response
            session.add(record)
            session.flush()
    except IntegrityError as exc:
        raise _KeyTaken from exc
    return response


@dataclass(frozen=True)
class Written:
    """What a transaction wrote for a claim that had no status moves or postings before it:
    enough to answer with :func:`claim_out` without reading the rows back."""

    moves: list[AuditEntry]
    postings: list[LedgerPosting]


def _route(session: Session, claim: Claim, context: ClaimContext, remaining: int) -> Written:
    """``remaining``: the line's uncompensated cents, computed under the line lock this
    transaction holds (only this claim can pay on the line before it commits)."""
    policy = context.policy
    decision = decide(evaluate(context), context.scores, policy, utcnow(), context.line.produce)
    record = decision.to_record()
    claim.verification = {"signals": record.pop("signals"), "generated_at": record["decided_at"]}
    claim.decision = record
    claim.reason_codes = "".join(f",{r['code']}" for r in decision.reasons) + ","
    if decision.route == "auto":
        claim.approved_cents = claim.requested_cents
        approved = transition(
            session, claim, Status.APPROVED, SYSTEM, policy, reason="auto_approved"
        )
        posting = ledger.pay_claim(
            session, claim, claim.approved_cents, SYSTEM.id, remaining=remaining
        )
        paid = transition(session, claim, Status.PAID, SYSTEM, policy)
        audit.sample_auto_approval(claim, policy)  # paid either way; maybe audited later
        return Written(moves=[approved, paid], postings=[posting])
    claim.sla_deadline = claim.submitted_at + timedelta(minutes=policy.manual_review_sla_minutes)
    in_review = transition(
        session,
        claim,
        Status.IN_REVIEW,
        SYSTEM,
        policy,
        reason="manual_review",
        reasons=[r["code"] for r in decision.reasons],
    )
    return Written(moves=[in_review], postings=[])


def _compensation(
    session: Session, claim: Claim, postings: list[LedgerPosting] | None = None
) -> CompensationOut:
    if postings is None:
        postings = session.execute(
            select(LedgerPosting.kind, LedgerPosting.amount_cents, LedgerPosting.method).where(
                LedgerPosting.claim_id == claim.id
            )
        ).all()
    by_kind = {p.kind: p for p in postings}
    payout = by_kind.get("payout")
    if "reversal" in by_kind:
        status = "reversed"
    elif payout is not None:
        status = "paid"
    elif claim.status == Status.REJECTED:
        status = "none"
    else:
        status = "pending"
    return CompensationOut(
        requested_cents=claim.requested_cents,
        amount_cents=payout.amount_cents if payout else (claim.approved_cents or 0),
        method=payout.method if payout else None,
        status=status,
    )


def timeline(session: Session, claim_id: str) -> list[TimelineEntry]:
    rows = session.execute(
        select(AuditEntry.action, AuditEntry.at, AuditEntry.actor_type)
        .where(
            AuditEntry.entity_type == "claim",
            AuditEntry.entity_id == claim_id,
            AuditEntry.action.like("status:%"),
        )
        .order_by(AuditEntry.id)
    )
    return [_timeline_entry(row.action, row.at, row.actor_type) for row in rows]


def _timeline_entry(action: str, at: datetime, actor_type: str) -> TimelineEntry:
    return TimelineEntry(status=action.removeprefix("status:"), at=at, actor=actor_type)


def _common(
    session: Session, claim: Claim, policy: Policy, locale: str | None, written: Written | None
) -> dict:
    """The fields both views share. ``written``: the claim's moves and postings are all in it
    (a new claim), so they are not queried."""
    compensation = _compensation(session, claim, written.postings if written else None)
    outcome = customer_outcome(claim, policy, locale, payout_method=compensation.method)
    return {
        "id": claim.id,
        "status": claim.status,
        "order_id": claim.order_id,
        "line_id": claim.line_id,
        "issue": claim.issue,
        "affected_quantity": claim.affected_quantity,
        "note": claim.note,
        "photo_ids": claim.photo_ids,
        "outcome": OutcomeOut(**{k: v for k, v in vars(outcome).items() if k != "params"}),
        "compensation": compensation,
        "submitted_at": claim.submitted_at,
        "decided_at": claim.decided_at,
        "paid_at": claim.paid_at,
        "appealed": claim.appealed,
        "timeline": (
            [_timeline_entry(m.action, m.at, m.actor_type) for m in written.moves]
            if written
            else timeline(session, claim.id)
        ),
    }


def customer_claim_out(
    session: Session,
    claim: Claim,
    policy: Policy,
    locale: str | None,
    written: Written | None = None,
) -> CustomerClaimOut:
    """The customer's view: no reason codes, scores, thresholds or staff ids."""
    return CustomerClaimOut(**_common(session, claim, policy, locale, written))


def claim_out(
    session: Session,
    claim: Claim,
    policy: Policy,
    locale: str | None = "en",
    written: Written | None = None,
) -> ClaimOut:
    """The shop's and staff's view: the customer's, plus the decision with its reasons in
    ``locale`` (a reviewer's reads their name)."""
    decision = claim.decision or {}
    review = decision.get("review") or {}
    reasons = [
        {"code": r["code"], "message": reviewer_text(r["code"], locale or "en")}
        for r in decision.get("reasons", [])
    ]
    return ClaimOut(
        **_common(session, claim, policy, locale, written),
        customer_id=claim.customer_id,
        sla_deadline=claim.sla_deadline,
        decision=DecisionOut(
            route=decision.get("route", "manual"),
            reasons=reasons,
            model_version=decision.get("model_version"),
            threshold_version=decision.get("threshold_version"),
            policy_version=decision.get("policy_version", ""),
            decided_by=decision.get("decided_by", "policy"),
            decided_by_name=review.get("reviewer") or None,
            certification=decision.get("certification"),
        ),
    )


def claim_view(
    session: Session, claim: Claim, viewer: Principal, policy: Policy, locale: str | None
) -> ClaimOut | CustomerClaimOut:
    if viewer.kind == "customer":
        return customer_claim_out(session, claim, policy, locale)
    return claim_out(session, claim, policy, locale)


def get_visible_claim(
    session: Session, viewer: Principal, claim_id: str, *, lock: bool = False
) -> Claim:
    query = select(Claim).where(Claim.id == claim_id)
    if lock:
        query = query.with_for_update()
    claim = session.scalar(query)
    if claim is None or (viewer.kind == "customer" and claim.customer_id != viewer.id):
        raise ClaimNotFound()
    return claim


def _encode_cursor(claim: Claim) -> str:
    raw = f"{claim.submitted_at.isoformat()}|{claim.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, claim_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(at), claim_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor() from exc


@dataclass(frozen=True)
class ClaimFilter:
    """What a listing is narrowed to. A customer's listing is always their own claims."""

    customer_id: str | None = None
    order_id: str | None = None
    status: Status | None = None

    def where(self) -> list:
        conditions = []
        if self.customer_id is not None:
            conditions.append(Claim.customer_id == self.customer_id)
        if self.order_id is not None:
            conditions.append(Claim.order_id == self.order_id)
        if self.status is not None:
            conditions.append(Claim.status == str(self.status))
        return conditions


def list_claims(
    session: Session,
    viewer: Principal,
    claim_filter: ClaimFilter,
    limit: int,
    cursor: str | None,
    policy: Policy,
    locale: str | None,
) -> ClaimPage:
    """Newest first, by keyset cursor. A customer sees only their own claims, whatever the
    filter says; the shop and staff see any, in the full view."""
    if viewer.kind == "customer":
        claim_filter = ClaimFilter(viewer.id, claim_filter.order_id, claim_filter.status)
    query = select(Claim).where(*claim_filter.where())
    if cursor:
        at, claim_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                Claim.submitted_at < at, tuple_(Claim.submitted_at, Claim.id) < tuple_(at, claim_id)
            )
        )
    rows = list(
        session.scalars(query.order_by(Claim.submitted_at.desc(), Claim.id.desc()).limit(limit + 1))
    )
    items, more = rows[:limit], len(rows) > limit
    return ClaimPage(
        items=[claim_view(session, c, viewer, policy, locale) for c in items],
        next_cursor=_encode_cursor(items[-1]) if more and items else None,
    )


def appeal(
    session: Session, customer: Principal, claim_id: str, message: str, policy: Policy
) -> Claim:
    claim = get_visible_claim(session, customer, claim_id)
    # The line lock first, as a new claim on the line takes it: the appeal and a new claim
    # then run one after the other, and the later one sees what the earlier one did.
    ledger.lock_line(session, claim.order_id, claim.line_id)
    session.refresh(claim, with_for_update=True)
    if claim.status != Status.REJECTED:
        raise NotRejected()
    if claim.appealed:
        raise AlreadyAppealed()
    until, now = appeal_until(claim, policy), utcnow()
    if until is not None and now > until:
        raise AppealWindowClosed(
            f"The time to appeal this claim ended at {until.isoformat()}.",
            appeal_until=until.isoformat(),
        )
    claim.appealed = True
    claim.appeal_message = message
    claim.sla_deadline = now + timedelta(minutes=policy.manual_review_sla_minutes)
    transition(session, claim, Status.IN_REVIEW, customer, policy, reason="appeal", message=message)
    return claim


def reverify(session: Session, claim: Claim, policy: Policy, reason: str) -> None:
    """Recompute the verification report over all the claim's photos (the route stays: the
    claim is with a person already). Photos added later are checked like the first ones."""
    session.flush()
    order = session.get(Order, claim.order_id)
    line = session.get(OrderLine, (claim.order_id, claim.line_id))
    by_id = {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_(claim.photo_ids)))}
    photos = [by_id[pid] for pid in claim.photo_ids if pid in by_id]
    signals = evaluate(_context(session, claim, order, line, photos, policy))
    claim.verification = {
        "signals": [s.to_dict() for s in signals],
        "generated_at": utcnow().isoformat(),
        "reason": reason,
        "policy_version": policy.version,
    }


def add_photos(
    session: Session,
    customer: Principal,
    claim_id: str,
    photo_ids: list[str],
    max_photos: int,
    policy: Policy,
) -> Claim:
    claim = get_visible_claim(session, customer, claim_id, lock=True)
    if claim.status != Status.PHOTOS_REQUESTED:
        raise PhotosNotRequested()
    photos = _owned_photos(session, customer.id, photo_ids)
    known = set(claim.photo_ids)
    new = [p for p in photos if p.id not in known]
    if len(known) + len(new) > max_photos:
        raise TooManyPhotos(f"A claim takes at most {max_photos} photos.")
    start = len(claim.photos)
    now = utcnow()
    for offset, photo in enumerate(new):
        claim.photos.append(ClaimPhoto(photo_id=photo.id, position=start + offset, added_at=now))
    transition(
        session,
        claim,
        Status.IN_REVIEW,
        customer,
        policy,
        reason="photos_added",
        photo_ids=[p.id for p in new],
    )
    reverify(session, claim, policy, "photos_added")
    return claim
