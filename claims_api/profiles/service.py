"""Consumes claim events: keeps each customer's profile and tags, enrols customers with a bad
experience in the care campaign, decides KOC eligibility and raises SKU quality alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_api.claims.models import Claim
from claims_api.db import utcnow
from claims_api.events import service as events
from claims_api.events.consumers import Consumer
from claims_api.events.models import OutboxEvent
from claims_api.orders.models import Customer, OrderLine
from claims_api.profiles.errors import CustomerNotFound
from claims_api.profiles.models import CustomerProfile, SkuQualityAlert

CARE_CAMPAIGN_DAYS = 14
FREQUENT_CLAIMS = 5
SKU_ALERT_WINDOW_HOURS = 24
SKU_ALERT_CLAIMS = 5

TAG_CARE = "care_campaign"  # had a bad delivery recently: send an apology coupon, follow up
TAG_FREQUENT = "frequent_claimant"
TAG_KOC_BLOCKED = "koc_ineligible"  # a reviewer rejected a claim: not a KOC candidate
TAG_TRUSTED = "trusted_claimant"  # several paid claims, none rejected


def empty_profile(customer_id: str) -> CustomerProfile:
    """The profile of a customer no claim event has reached yet."""
    return CustomerProfile(
        customer_id=customer_id,
        claims_submitted=0,
        claims_paid=0,
        claims_rejected=0,
        compensation_cents=0,
        tags=[],
        updated_at=utcnow(),
    )


def profile_of(session: Session, customer_id: str) -> tuple[CustomerProfile, Customer]:
    """A customer's profile (empty before their first claim event) and the customer; 404 for
    an unknown or erased customer."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.erased_at is not None:
        raise CustomerNotFound()
    return session.get(CustomerProfile, customer_id) or empty_profile(customer_id), customer


def _profile_for_update(session: Session, customer_id: str) -> CustomerProfile:
    profile = session.get(CustomerProfile, customer_id, with_for_update=True)
    if profile is None:
        profile = empty_profile(customer_id)
        session.add(profile)
    return profile


def consume(session: Session, event: OutboxEvent) -> None:
    """Applies one claim event; the shared consumer helper runs it at most once per event."""
    data = event.payload
    status = data["status"]
    at = datetime.fromisoformat(data["at"])
    profile = _profile_for_update(session, data["customer_id"])
    if data["previous_status"] == "submitted":
        profile.claims_submitted += 1
        profile.last_claim_at = at
        _check_sku(session, data["order_id"], data["line_id"], at)
    if status == "paid":
        profile.claims_paid += 1
        profile.compensation_cents += data.get("approved_cents") or 0
        profile.last_bad_experience_at = at
    elif status == "rejected":
        profile.claims_rejected += 1
    profile.tags = tags_for(profile, utcnow())
    profile.updated_at = utcnow()


CONSUMER = Consumer("profiles", consume, event_types=("claim.*",))


def tags_for(profile: CustomerProfile, now: datetime) -> list[str]:
    tags = []
    if profile.last_bad_experience_at and now - profile.last_bad_experience_at < timedelta(
        days=CARE_CAMPAIGN_DAYS
    ):
        tags.append(TAG_CARE)
    if profile.claims_submitted >= FREQUENT_CLAIMS:
        tags.append(TAG_FREQUENT)
    if profile.claims_rejected:
        tags.append(TAG_KOC_BLOCKED)
    elif profile.claims_paid >= 3:
        tags.append(TAG_TRUSTED)
    return tags


def _check_sku(session: Session, order_id: str, line_id: str, at: datetime) -> None:
    line = session.get(OrderLine, (order_id, line_id))
    if line is None:
        return
    since = at - timedelta(hours=SKU_ALERT_WINDOW_HOURS)
    # Cheap checks first: this runs for every submitted claim, and loading every claim id of a
    # popular SKU each time made the relay's work grow with the window's claims (quadratic).
    recent = session.scalar(
        select(func.count())
        .select_from(SkuQualityAlert)
        .where(SkuQualityAlert.sku == line.sku, SkuQualityAlert.raised_at >= since)
    )
    if recent:
        return
    in_window = (
        select(Claim.id)
        .join(
            OrderLine,
            (OrderLine.order_id == Claim.order_id) & (OrderLine.line_id == Claim.line_id),
        )
        .where(OrderLine.sku == line.sku, Claim.submitted_at >= since)
    )
    if session.scalar(select(func.count()).select_from(in_window.subquery())) < SKU_ALERT_CLAIMS:
        return
    claim_ids = list(session.scalars(in_window))
    alert = SkuQualityAlert(
        sku=line.sku,
        claims_in_window=len(claim_ids),
        window_hours=SKU_ALERT_WINDOW_HOURS,
        claim_ids=claim_ids,
        raised_at=utcnow(),
    )
    session.add(alert)
    events.emit(
        session,
        "quality.sku_alert",
        "sku",
        line.sku,
        {
            "sku": line.sku,
            "produce": line.produce,
            "claims": len(claim_ids),
            "window_hours": SKU_ALERT_WINDOW_HOURS,
            "claim_ids": claim_ids,
        },
    )
