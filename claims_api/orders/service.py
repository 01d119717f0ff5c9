from __future__ import annotations

from datetime import UTC

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from claims_api.audit import service as audit
from claims_api.auth.principal import Principal
from claims_api.claims.models import Claim
from claims_api.db import utcnow
from claims_api.events import service as events
from claims_api.orders.errors import LineHasClaims, OrderCustomerMismatch, OrderNotFound
from claims_api.orders.models import Customer, Order, OrderLine
from claims_api.orders.schemas import OrderIn


def ensure_customer(session: Session, customer_id: str) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        customer = Customer(id=customer_id, created_at=utcnow())
        session.add(customer)
        session.flush()
    return customer


def _line_has_claims(session: Session, order_id: str, line_id: str) -> bool:
    return bool(
        session.scalar(select(exists().where(Claim.order_id == order_id, Claim.line_id == line_id)))
    )


def upsert_order(
    session: Session, actor: Principal, order_id: str, body: OrderIn
) -> tuple[Order, bool]:
    """Create or replace an order. Lines that already carry a claim may not change their
    price, quantity or produce, nor disappear: claims and payouts were computed from them."""
    order = session.execute(
        select(Order).where(Order.id == order_id).with_for_update()
    ).scalar_one_or_none()
    ensure_customer(session, body.customer_id)
    created = order is None
    if order is None:
        order = Order(
            id=order_id,
            customer_id=body.customer_id,
            delivered_at=body.delivered_at,
            pickup_point_id=body.pickup_point_id,
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(order)
    elif order.customer_id != body.customer_id:
        raise OrderCustomerMismatch()
    before = None if created else _snapshot(order)

    # stored in UTC, so that a re-send with another offset compares equal to the stored order
    order.delivered_at = body.delivered_at.astimezone(UTC)
    order.pickup_point_id = body.pickup_point_id
    existing = {line.line_id: line for line in order.lines}
    incoming = {line.line_id: line for line in body.lines}
    for line_id, line in existing.items():
        new = incoming.get(line_id)
        frozen = _line_has_claims(session, order_id, line_id)
        if frozen and (
            new is None
            or (new.quantity, new.unit_price_cents, new.produce)
            != (line.quantity, line.unit_price_cents, line.produce)
        ):
            raise LineHasClaims(f"Line {line_id!r} has claims and cannot change.")
        if new is None:
            order.lines.remove(line)
    for line_id, new in incoming.items():
        line = existing.get(line_id)
        if line is None:
            order.lines.append(
                OrderLine(order_id=order_id, line_id=line_id, **new.model_dump(exclude={"line_id"}))
            )
        else:
            for field, value in new.model_dump(exclude={"line_id"}).items():
                setattr(line, field, value)
    order.updated_at = utcnow()
    session.flush()
    after = _snapshot(order)
    if after != before:  # an identical re-send is not a new delivery
        _emit_delivered(session, order)
    audit.record(
        session,
        actor,
        "order",
        order_id,
        "created" if created else "updated",
        before=before,
        after=after,
    )
    return order, created


def _emit_delivered(session: Session, order: Order) -> None:
    """``order.delivered``: the denominators of profiles and quality rates. Sent when the
    order is first stored and again whenever what was delivered changes."""
    events.emit(
        session,
        "order.delivered",
        "order",
        order.id,
        {
            "order_id": order.id,
            "customer_id": order.customer_id,
            "delivered_at": order.delivered_at.isoformat(),
            "pickup_point_id": order.pickup_point_id,
            "lines": [
                {
                    "line_id": line.line_id,
                    "sku": line.sku,
                    "produce": line.produce,
                    "category": line.category,
                    "supplier_id": line.supplier_id,
                    "batch_id": line.batch_id,
                    "quantity": line.quantity,
                    "unit_price_cents": line.unit_price_cents,
                }
                for line in order.lines
            ],
        },
    )


def _snapshot(order: Order) -> dict:
    return OrderIn.model_validate(order, from_attributes=True).model_dump(mode="json")


def get_visible_order(session: Session, viewer: Principal, order_id: str) -> Order:
    order = session.get(Order, order_id)
    if order is None or (viewer.kind == "customer" and order.customer_id != viewer.id):
        raise OrderNotFound()
    return order
