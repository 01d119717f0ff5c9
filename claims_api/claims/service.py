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
    ClaimAlreadyOpen,
    ClaimNotFound,
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
    DecisionOut,
    TimelineEntry,
)
from claims_api.claims.states import Status, transition
from claims_api.compensation import service as ledger
from claims_api.compensation.models import LedgerPosting
from claims_api.db import new_id, utcnow
from claims_api.decisions.policy import Policy
from claims_api.decisions.service import decide
from claims_api.observability import CLAIMS_DECIDED
from claims_api.orders.errors import OrderNotFound, UnknownLine
from claims_api.orders.models import Order, OrderLine
from claims_api.photos.errors import PhotoNotFound
from claims_api.photos.models import Photo
from claims_api.verification import duplicates, history
from claims_api.verification.signals import ClaimContext, collect

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


def _context(
    session: Session,
    claim: Claim,
    order: Order,
    line: OrderLine,
    photos: list[Photo],
    policy: Policy,
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
    )


def submit_claim(
    session: Session,
    customer: Principal,
    key: str,
    body: ClaimCreate,
    policy: Policy,
    max_photos: int,
) -> tuple[int, dict]:
    """Returns (status code, response body); a replay returns what the first call returned."""
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
    claim = Claim(
        id=new_id("clm"),
        customer_id=customer.id,
        order_id=order.id,
        line_id=line.line_id,
        issue=body.issue,
        affected_quantity=body.affected_quantity,
        note=body.note,
        status=Status.SUBMITTED,
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
            session, claim, record, order, line, photos, policy, remaining
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
            session.flush()
            written = _route(session, claim, order, line, photos, policy, remaining)
            # built from what this transaction wrote, not read back: what a GET returns
            response = claim_out(session, claim, written).model_dump(mode="json")
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


def _route(
    session: Session,
    claim: Claim,
    order: Order,
    line: OrderLine,
    photos: list[Photo],
    policy: Policy,
    remaining: int,
) -> Written:
    """``remaining``: the line's uncompensated cents, computed under the line lock this
    transaction holds (only this claim can pay on the line before it commits)."""
    decision = decide(_context(session, claim, order, line, photos, policy), utcnow())
    record = decision.to_record()
    claim.verification = {"signals": record.pop("signals"), "generated_at": record["decided_at"]}
    claim.decision = record
    claim.reason_codes = "".join(f",{r['code']}" for r in decision.reasons) + ","
    if decision.route == "auto":
        claim.approved_cents = claim.requested_cents
        approved = transition(session, claim, Status.APPROVED, SYSTEM, reason="auto_approved")
        posting = ledger.pay_claim(
            session, claim, claim.approved_cents, SYSTEM.id, remaining=remaining
        )
        paid = transition(session, claim, Status.PAID, SYSTEM)
        return Written(moves=[approved, paid], postings=[posting])
    claim.sla_deadline = claim.submitted_at + timedelta(minutes=policy.manual_review_sla_minutes)
    in_review = transition(
        session,
        claim,
        Status.IN_REVIEW,
        SYSTEM,
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


def claim_out(session: Session, claim: Claim, written: Written | None = None) -> ClaimOut:
    """``written``: the claim's moves and postings are all in it (a new claim), so they are
    not queried."""
    decision = claim.decision or {}
    return ClaimOut(
        id=claim.id,
        status=claim.status,
        order_id=claim.order_id,
        line_id=claim.line_id,
        issue=claim.issue,
        affected_quantity=claim.affected_quantity,
        note=claim.note,
        photo_ids=claim.photo_ids,
        decision=DecisionOut(
            route=decision.get("route", "manual"),
            reasons=decision.get("reasons", []),
            model_version=decision.get("model_version"),
            threshold_version=decision.get("threshold_version"),
            policy_version=decision.get("policy_version", ""),
            decided_by=decision.get("decided_by", "policy"),
        ),
        compensation=_compensation(session, claim, written.postings if written else None),
        submitted_at=claim.submitted_at,
        decided_at=claim.decided_at,
        paid_at=claim.paid_at,
        sla_deadline=claim.sla_deadline,
        appealed=claim.appealed,
        timeline=(
            [_timeline_entry(m.action, m.at, m.actor_type) for m in written.moves]
            if written
            else timeline(session, claim.id)
        ),
    )


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


def list_claims(session: Session, customer_id: str, limit: int, cursor: str | None) -> ClaimPage:
    query = select(Claim).where(Claim.customer_id == customer_id)
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
        items=[claim_out(session, c) for c in items],
        next_cursor=_encode_cursor(items[-1]) if more and items else None,
    )


def appeal(
    session: Session, customer: Principal, claim_id: str, message: str, policy: Policy
) -> Claim:
    claim = get_visible_claim(session, customer, claim_id, lock=True)
    if claim.status != Status.REJECTED:
        raise NotRejected()
    if claim.appealed:
        raise AlreadyAppealed()
    claim.appealed = True
    claim.appeal_message = message
    claim.sla_deadline = utcnow() + timedelta(minutes=policy.manual_review_sla_minutes)
    transition(session, claim, Status.IN_REVIEW, customer, reason="appeal", message=message)
    return claim


def reverify(session: Session, claim: Claim, policy: Policy, reason: str) -> None:
    """Recompute the verification report over all the claim's photos (the route stays: the
    claim is with a person already). Photos added later are checked like the first ones."""
    session.flush()
    order = session.get(Order, claim.order_id)
    line = session.get(OrderLine, (claim.order_id, claim.line_id))
    by_id = {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_(claim.photo_ids)))}
    photos = [by_id[pid] for pid in claim.photo_ids if pid in by_id]
    signals = collect(_context(session, claim, order, line, photos, policy))
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
    policy: Policy | None = None,
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
        reason="photos_added",
        photo_ids=[p.id for p in new],
    )
    if policy is not None:
        reverify(session, claim, policy, "photos_added")
    return claim
