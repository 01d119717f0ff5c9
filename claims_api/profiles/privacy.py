"""Consent and erasure.

An erasure removes what identifies the customer or was said by or about them: the stored
pixels, the EXIF facts (in the photo rows and quoted in claims' verification reports), the
perceptual hashes, and every free text — the customer's notes and appeals, the reviewers'
messages to them (in claims, review decisions, audit rows, outbox events and idempotent
replies) and the reviewers' snapshots that quote them. What accounting and audit need stays,
anonymised: amounts, times, statuses, reason codes and who on staff decided."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from claims_api.audit import service as audit
from claims_api.audit.models import AuditEntry
from claims_api.auth.principal import Principal
from claims_api.claims.models import Claim, IdempotencyRecord
from claims_api.db import utcnow
from claims_api.events import service as events
from claims_api.events.models import OutboxEvent
from claims_api.orders.models import Customer
from claims_api.photos.models import Photo, PhotoHash
from claims_api.photos.storage import PhotoStorage
from claims_api.profiles.errors import CustomerNotFound
from claims_api.review.models import ReviewDecision


@dataclass(frozen=True)
class ErasureReport:
    photos_erased: int
    files_deleted: int
    claims_redacted: int


def set_consent(session: Session, actor: Principal, customer_id: str, training: bool) -> Customer:
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound()
    before = {"training_consent": customer.training_consent}
    customer.training_consent = training
    audit.record(
        session,
        actor,
        "customer",
        customer_id,
        "consent",
        before=before,
        after={"training_consent": training},
    )
    return customer


def erase_customer(
    session: Session, storage: PhotoStorage, actor: Principal, customer_id: str
) -> ErasureReport:
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise CustomerNotFound()
    photos = session.scalars(
        select(Photo).where(Photo.customer_id == customer_id, Photo.erased_at.is_(None))
    ).all()
    keys = {p.storage_key for p in photos}
    now = utcnow()
    for photo in photos:
        photo.erased_at = now
        photo.exif = {}
        photo.hashes = {}
    session.execute(delete(PhotoHash).where(PhotoHash.customer_id == customer_id))
    redacted = _redact_claims(session, customer_id)
    session.flush()
    # Content-addressed files can be shared by identical uploads: delete only unreferenced ones.
    still_used = set(
        session.scalars(
            select(Photo.storage_key).where(Photo.storage_key.in_(keys), Photo.erased_at.is_(None))
        )
    )
    doomed = keys - still_used
    customer.training_consent = False
    customer.erased_at = now
    audit.record(
        session, actor, "customer", customer_id, "erased", photos=len(photos), files=len(doomed)
    )
    events.emit(
        session,
        "customer.erased",
        "customer",
        customer_id,
        {"customer_id": customer_id, "at": now.isoformat()},
    )
    for key in doomed:  # last: a failure above rolls back before any file is gone
        storage.delete(key)
    return ErasureReport(
        photos_erased=len(photos), files_deleted=len(doomed), claims_redacted=redacted or 0
    )


# Free text in audit details and event payloads: what a customer or a reviewer wrote.
FREE_TEXT_KEYS = frozenset({"message", "note", "appeal_message", "reviewer_message"})
# Signals whose value is read from the photo's EXIF (the rest are counts, codes and amounts).
EXIF_VALUED_SIGNALS = frozenset({"captured_before_delivery"})


def _redact_claims(session: Session, customer_id: str) -> int:
    claims = session.scalars(select(Claim).where(Claim.customer_id == customer_id)).all()
    ids = [claim.id for claim in claims]
    for claim in claims:
        claim.note = None
        claim.appeal_message = None
        claim.decision = _without_review_message(claim.decision or {})
        claim.verification = _anonymised_verification(claim.verification or {})
    if not ids:
        return 0
    session.execute(
        update(ReviewDecision).where(ReviewDecision.claim_id.in_(ids)).values(message=None, seen={})
    )
    for record in session.scalars(
        select(IdempotencyRecord).where(IdempotencyRecord.customer_id == customer_id)
    ):
        record.response_body = {"id": record.claim_id, "erased": True}
    for entry in session.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "claim", AuditEntry.entity_id.in_(ids))
    ):
        entry.details = _without_free_text(entry.details or {})
    for event in session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.aggregate_type == "claim", OutboxEvent.aggregate_id.in_(ids)
        )
    ):
        event.payload = _without_free_text(event.payload or {})
    return len(ids)


def _without_review_message(decision: dict) -> dict:
    review = decision.get("review")
    if not review:
        return decision
    return {**decision, "review": {k: v for k, v in review.items() if k != "message"}}


def _anonymised_verification(verification: dict) -> dict:
    """Each signal keeps its code, whether it fired and its threshold; its details (EXIF
    facts, matched photos, history counts) go, and so does a value read from EXIF."""
    signals = [
        {
            "code": signal.get("code"),
            "fired": signal.get("fired"),
            "value": None if signal.get("code") in EXIF_VALUED_SIGNALS else signal.get("value"),
            "threshold": signal.get("threshold"),
            "message": signal.get("message"),
            "details": {},
        }
        for signal in verification.get("signals", [])
    ]
    return {**verification, "signals": signals, "erased": True}


def _without_free_text(document: dict) -> dict:
    """A copy of a JSON document with every free-text key emptied, at any depth."""
    cleaned: dict = {}
    for key, value in document.items():
        if key in FREE_TEXT_KEYS:
            cleaned[key] = None
        elif isinstance(value, dict):
            cleaned[key] = _without_free_text(value)
        else:
            cleaned[key] = value
    return cleaned
