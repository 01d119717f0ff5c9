"""Consent and erasure. Photos hold personal data: an erasure removes the stored pixels, the
EXIF facts and the perceptual hashes, and clears free text; the ledger and the decision
records stay, because accounting and audit must."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from claims_api.audit import service as audit
from claims_api.auth.principal import Principal
from claims_api.claims.models import Claim
from claims_api.db import utcnow
from claims_api.events import service as events
from claims_api.orders.models import Customer
from claims_api.photos.models import Photo, PhotoHash
from claims_api.photos.storage import PhotoStorage
from claims_api.profiles.errors import CustomerNotFound


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
    redacted = session.execute(
        update(Claim).where(Claim.customer_id == customer_id).values(note=None, appeal_message=None)
    ).rowcount
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
