"""The facts about a customer and a pickup point that the velocity, amount and trust signals
read: one statement of aggregates over indexed columns each, run
inside the claim's transaction after the claim row is written (so "this claim" is counted
where a rate is meant to include it; see :func:`claims_api.db.flushed_connection`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, bindparam, case, exists, func, select, true
from sqlalchemy.orm import Session

from claims_api.claims.models import Claim
from claims_api.compensation import service as ledger
from claims_api.compensation.models import LedgerPosting
from claims_api.db import flushed_connection
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


def _count(condition) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# The statements are built once, with bound parameters: building and caching a new
# expression tree for each claim cost more CPU than running the queries.
def _order_counts_of(owner: ColumnElement[bool]) -> Select:
    """(orders, orders with at least one claim) among ``owner``'s orders delivered since
    ``:since``."""
    claimed = exists().where(Claim.order_id == Order.id)
    return select(func.count(), _count(claimed)).where(
        owner, Order.delivered_at >= bindparam("since")
    )


_CUSTOMER_ORDERS = _order_counts_of(Order.customer_id == bindparam("customer_id"))
_PICKUP_ORDERS = _order_counts_of(Order.pickup_point_id == bindparam("pickup_point_id"))

# (earlier claims in 30 days, claims confirmed by a reviewer, claims rejected or reversed
# recently): one pass over the customer's claims
_CUSTOMER_CLAIMS = select(
    _count((Claim.submitted_at >= bindparam("since_30d")) & (Claim.id != bindparam("exclude"))),
    _count(
        and_(
            Claim.status.in_(CONFIRMED_STATUSES),
            Claim.decided_at >= bindparam("confirm_since"),
            exists().where(
                ReviewDecision.claim_id == Claim.id, ReviewDecision.outcome == "approve"
            ),
        )
    ),
    _count(
        (Claim.status == "rejected") & (Claim.decided_at >= bindparam("reject_since"))
        | (Claim.status == "reversed") & (Claim.updated_at >= bindparam("reject_since"))
    ),
).where(Claim.customer_id == bindparam("customer_id"))

_PICKUP_CLAIMS = (
    select(func.count())
    .select_from(Claim)
    .join(Order, Order.id == Claim.order_id)
    .where(
        Order.pickup_point_id == bindparam("pickup_point_id"),
        Claim.submitted_at >= bindparam("since_30d"),
        Claim.id != bindparam("exclude"),
    )
)


def _one_row(*queries: Select) -> Select:
    """The single-row aggregates side by side in one statement: one round trip, not one per
    query (the claim transaction runs these on every claim)."""
    first, *rest = (query.subquery() for query in queries)
    joined = first
    for subquery in rest:
        joined = joined.join(subquery, true())
    return select(*(column for subquery in (first, *rest) for column in subquery.c)).select_from(
        joined
    )


# (orders, claimed orders, claims in 30 days, confirmed, rejected, net paid in 30 days)
_CUSTOMER_HISTORY = _one_row(
    _CUSTOMER_ORDERS,
    _CUSTOMER_CLAIMS,
    ledger.net_paid_query(
        Claim.customer_id == bindparam("customer_id"),
        LedgerPosting.created_at >= bindparam("since_30d"),
    ),
)
# (orders, claimed orders, earlier claims in 30 days) of a pickup point
_PICKUP_HISTORY = _one_row(_PICKUP_ORDERS, _PICKUP_CLAIMS)


def customer_history(
    session: Session, customer_id: str, now: datetime, exclude: str, policy: Policy
) -> CustomerHistory:
    connection = flushed_connection(session)  # the claim row counts where a rate includes it
    orders, claimed, claims_30d, confirmed, rejected, paid_30d = connection.execute(
        _CUSTOMER_HISTORY,
        {
            "customer_id": customer_id,
            "exclude": exclude,
            "since": now - timedelta(days=policy.claim_rate_window_days),
            "since_30d": now - timedelta(days=30),
            "confirm_since": now - timedelta(days=policy.trust_lookback_days),
            "reject_since": now - timedelta(days=policy.trust_rejection_days),
        },
    ).one()
    return CustomerHistory(
        claims_30d=int(claims_30d),
        paid_30d_cents=int(paid_30d),
        orders=int(orders),
        claimed_orders=int(claimed),
        confirmed=int(confirmed),
        rejected=int(rejected),
    )


def pickup_point_history(
    session: Session, pickup_point_id: str | None, now: datetime, exclude: str, policy: Policy
) -> PickupPointHistory | None:
    if not pickup_point_id:
        return None
    orders, claimed, claims_30d = (
        flushed_connection(session)
        .execute(
            _PICKUP_HISTORY,
            {
                "pickup_point_id": pickup_point_id,
                "since": now - timedelta(days=policy.claim_rate_window_days),
                "since_30d": now - timedelta(days=30),
                "exclude": exclude,
            },
        )
        .one()
    )
    return PickupPointHistory(pickup_point_id, int(orders), int(claimed), int(claims_30d or 0))
