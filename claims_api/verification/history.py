"""The facts about a customer and a pickup point that the velocity, amount and trust signals
read (issue 4, signals 5 and 6). Each is one aggregate SQL query over indexed columns, run
inside the claim's transaction after the claim row is written (so "this claim" is counted
where a rate is meant to include it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.orm import Session

from claims_api.claims.models import Claim
from claims_api.compensation import service as ledger
from claims_api.decisions.policy import Policy
from claims_api.orders.models import Order
from claims_api.review.models import ReviewDecision

CONFIRMED_STATUSES = ("approved", "partially_approved", "paid")


@dataclass(frozen=True)
class CustomerHistory:
    claims_30d: int  # earlier claims, this one left out
    paid_30d_cents: int
    orders: int = 0  # orders delivered in the claim-rate window
    claimed_orders: int = 0  # of those, orders with a claim (this one included)
    confirmed: int = 0  # claims a reviewer approved (trust lookback)
    rejected: int = 0  # claims rejected (or paid and reversed) recently

    @property
    def claim_rate(self) -> float | None:
        return self.claimed_orders / self.orders if self.orders else None


@dataclass(frozen=True)
class PickupPointHistory:
    pickup_point_id: str
    orders: int  # orders for this pickup point delivered in the claim-rate window
    claimed_orders: int  # of those, orders with a claim (this one included)
    claims_30d: int  # earlier claims on the pickup point's orders, this one left out

    @property
    def claim_rate(self) -> float | None:
        return self.claimed_orders / self.orders if self.orders else None


def _order_counts(session: Session, *where) -> tuple[int, int]:
    """(orders, orders with at least one claim) among the orders matching ``where``."""
    claimed = exists().where(Claim.order_id == Order.id)
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(case((claimed, 1), else_=0)), 0)).where(*where)
    ).one()
    return int(row[0]), int(row[1])


def _count(condition) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _claim_counts(
    session: Session, customer_id: str, now: datetime, exclude: str, policy: Policy
) -> tuple[int, int, int]:
    """(earlier claims in 30 days, claims confirmed by a reviewer, claims rejected or reversed
    recently): one pass over the customer's claims."""
    since_30d = now - timedelta(days=30)
    confirm_since = now - timedelta(days=policy.trust_lookback_days)
    reject_since = now - timedelta(days=policy.trust_rejection_days)
    approved_by_person = exists().where(
        ReviewDecision.claim_id == Claim.id, ReviewDecision.outcome == "approve"
    )
    confirmed = and_(
        Claim.status.in_(CONFIRMED_STATUSES), Claim.decided_at >= confirm_since, approved_by_person
    )
    rejected = (Claim.status == "rejected") & (Claim.decided_at >= reject_since) | (
        Claim.status == "reversed"
    ) & (Claim.updated_at >= reject_since)
    recent = (Claim.submitted_at >= since_30d) & (Claim.id != exclude)
    row = session.execute(
        select(_count(recent), _count(confirmed), _count(rejected)).where(
            Claim.customer_id == customer_id
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def customer_history(
    session: Session, customer_id: str, now: datetime, exclude: str, policy: Policy
) -> CustomerHistory:
    since_30d = now - timedelta(days=30)
    orders, claimed = _order_counts(
        session,
        Order.customer_id == customer_id,
        Order.delivered_at >= now - timedelta(days=policy.claim_rate_window_days),
    )
    claims_30d, confirmed, rejected = _claim_counts(session, customer_id, now, exclude, policy)
    return CustomerHistory(
        claims_30d=claims_30d,
        paid_30d_cents=ledger.paid_cents_for_customer_since(session, customer_id, since_30d),
        orders=orders,
        claimed_orders=claimed,
        confirmed=confirmed,
        rejected=rejected,
    )


def pickup_point_history(
    session: Session, pickup_point_id: str | None, now: datetime, exclude: str, policy: Policy
) -> PickupPointHistory | None:
    if not pickup_point_id:
        return None
    orders, claimed = _order_counts(
        session,
        Order.pickup_point_id == pickup_point_id,
        Order.delivered_at >= now - timedelta(days=policy.claim_rate_window_days),
    )
    claims_30d = session.scalar(
        select(func.count())
        .select_from(Claim)
        .join(Order, Order.id == Claim.order_id)
        .where(
            Order.pickup_point_id == pickup_point_id,
            Claim.submitted_at >= now - timedelta(days=30),
            Claim.id != exclude,
        )
    )
    return PickupPointHistory(pickup_point_id, orders, claimed, int(claims_30d or 0))
