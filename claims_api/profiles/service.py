"""Consumes claim events: keeps each customer's profile and tags, enrols customers with a bad
experience in the care campaign, decides KOC eligibility and raises SKU quality alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claims_api.claims.models import Claim
from claims_api.db import utcnow
from claims_api.events import service as events
from claims_api.events.models import OutboxEvent
from claims_api.orders.models import OrderLine
from claims_api.profiles.models import ConsumedEvent, CustomerProfile, SkuQualityAlert

CONSUMER = "profiles"
CARE_CAMPAIGN_DAYS = 14
FREQUENT_CLAIMS = 5
SKU_ALERT_WINDOW_HOURS = 24
SKU_ALERT_CLAIMS = 5

TAG_CARE = "care_campaign"  # had a bad delivery recently: send an apology coupon, follow up
TAG_FREQUENT = "frequent_claimant"
TAG_KOC_BLOCKED = "koc_ineligible"  # a reviewer rejected a claim: not a KOC candidate
TAG_TRUSTED = "trusted_claimant"  # several paid claims, none rejected


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _already_consumed(session: Session, event_id: str) -> bool:
    """Records the event as consumed; True when it already was (a redelivery). One
    INSERT ... ON CONFLICT DO NOTHING: no savepoint around an insert that may fail."""
    insert = _INSERTS[session.get_bind().dialect.name]
    inserted = session.execute(
        insert(ConsumedEvent)
        .values(consumer=CONSUMER, event_id=event_id, consumed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(ConsumedEvent.event_id)
    ).first()
    return inserted is None


def _profile(session: Session, customer_id: str) -> CustomerProfile:
    profile = session.get(CustomerProfile, customer_id, with_for_update=True)
    if profile is None:
        profile = CustomerProfile(
            customer_id=customer_id,
            claims_submitted=0,
            claims_paid=0,
            claims_rejected=0,
            compensation_cents=0,
            tags=[],
            updated_at=utcnow(),
        )
        session.add(profile)
    return profile


def consume(session: Session, event: OutboxEvent) -> None:
    """The relay calls this for every event, inside its own savepoint."""
    if event.aggregate_type != "claim" or _already_consumed(session, event.event_id):
        return
    data = event.payload
    status = data["status"]
    at = datetime.fromisoformat(data["at"])
    profile = _profile(session, data["customer_id"])
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
