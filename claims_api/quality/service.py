"""Damage rates and quality incidents. Rates are computed from orders and claims as they are
now; incidents are opened by the ``quality`` event consumer, off the request path, after each
submitted claim, and moved by staff (acknowledge, resolve), each move audited and announced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from claims_api.audit import service as audit
from claims_api.auth.principal import SYSTEM, Principal
from claims_api.claims.models import Claim
from claims_api.db import new_id, utcnow
from claims_api.events import service as events
from claims_api.events.consumers import Consumer
from claims_api.events.models import OutboxEvent
from claims_api.orders.models import Order, OrderLine
from claims_api.quality.detection import TestResult, baseline_rate, binomial_excess
from claims_api.quality.errors import IncidentNotFound, IncidentTransitionNotAllowed
from claims_api.quality.models import QualityIncident

BATCH_WINDOW_DAYS = 14  # a fresh batch is sold and eaten within two weeks
PICKUP_WINDOW_DAYS = 7  # a cold-chain fault at a pickup point shows within days
BASELINE_WINDOW_DAYS = 60
# A claim a reviewer rejected (or a payout reversed) is not evidence of damage.
NOT_DAMAGE = ("rejected", "reversed")

GROUPINGS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "sku": (OrderLine.sku,),
    "batch": (OrderLine.sku, OrderLine.batch_id),
    "supplier": (OrderLine.supplier_id,),
    "pickup_point": (Order.pickup_point_id,),
    "category": (OrderLine.category,),
}


@dataclass(frozen=True)
class Rate:
    key: dict[str, str | None]
    delivered_lines: int
    claimed_lines: int

    @property
    def rate(self) -> float:
        return self.claimed_lines / self.delivered_lines if self.delivered_lines else 0.0


def _damaged_lines() -> Any:
    """The (order, line) pairs with at least one claim that counts as damage."""
    return select(Claim.order_id, Claim.line_id).where(Claim.status.not_in(NOT_DAMAGE))


def _counts(session: Session, *where: ColumnElement[bool]) -> tuple[int, int]:
    """(delivered lines, claimed lines) among the lines matching ``where``."""
    damaged = tuple_(OrderLine.order_id, OrderLine.line_id).in_(_damaged_lines())
    row = session.execute(
        select(func.count(), func.count().filter(damaged))
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .where(*where)
    ).one()
    return int(row[0]), int(row[1])


def damage_rates(
    session: Session, by: str, since: datetime, until: datetime, sku: str | None = None
) -> list[Rate]:
    """Claimed lines / delivered lines per ``by`` group, for lines delivered in the window."""
    columns = GROUPINGS[by]
    damaged = tuple_(OrderLine.order_id, OrderLine.line_id).in_(_damaged_lines())
    query = (
        select(*columns, func.count(), func.count().filter(damaged))
        .select_from(OrderLine)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.delivered_at >= since, Order.delivered_at < until)
        .group_by(*columns)
        .order_by(*columns)
    )
    if sku is not None:
        query = query.where(OrderLine.sku == sku)
    names = [c.key for c in columns]
    return [
        Rate(dict(zip(names, row[: len(names)], strict=True)), int(row[-2]), int(row[-1]))
        for row in session.execute(query)
    ]


# ----------------------------------------------------------------- detection (the consumer)


def _test_subject(
    session: Session,
    line: OrderLine,
    scope: str,
    subject_column: ColumnElement[Any],
    subject_id: str,
    window_days: int,
    at: datetime,
) -> None:
    """Tests one subject (lines of ``line.sku`` matching ``subject``) against the SKU's other
    lines over the baseline window; opens an incident when significant."""
    subject = subject_column == subject_id
    others = or_(subject_column.is_(None), subject_column != subject_id)
    live_key = f"{scope}:{line.sku}:{subject_id}"
    if session.scalar(select(QualityIncident.id).where(QualityIncident.live_key == live_key)):
        return
    if _recently_resolved(session, scope, line.sku, subject_id, at - timedelta(days=window_days)):
        return
    same_sku = OrderLine.sku == line.sku
    lines, claims = _counts(
        session, same_sku, subject, Order.delivered_at >= at - timedelta(days=window_days)
    )
    base_lines, base_claims = _counts(
        session,
        same_sku,
        others,
        Order.delivered_at >= at - timedelta(days=BASELINE_WINDOW_DAYS),
    )
    baseline = baseline_rate(base_claims, base_lines)
    if baseline is None:
        return
    result = binomial_excess(claims, lines, baseline)
    if result.significant:
        _open(session, line, scope, subject_id, live_key, window_days, result)


def _recently_resolved(
    session: Session, scope: str, sku: str, subject_id: str, since: datetime
) -> bool:
    """A subject resolved within its window is not re-opened by the same claims."""
    return bool(
        session.scalar(
            select(func.count()).where(
                QualityIncident.scope == scope,
                QualityIncident.sku == sku,
                QualityIncident.subject_id == subject_id,
                QualityIncident.resolved_at >= since,
            )
        )
    )


def _open(
    session: Session,
    line: OrderLine,
    scope: str,
    subject_id: str,
    live_key: str,
    window_days: int,
    result: TestResult,
) -> None:
    incident = QualityIncident(
        id=new_id("qin"),
        scope=scope,
        sku=line.sku,
        subject_id=subject_id,
        supplier_id=line.supplier_id if scope == "batch" else None,
        live_key=live_key,
        status="open",
        claims=result.claims,
        lines=result.lines,
        baseline_rate=result.baseline_rate,
        p_value=result.p_value,
        window_days=window_days,
        opened_at=utcnow(),
    )
    try:
        with session.begin_nested():  # another replica may have opened it a moment ago
            session.add(incident)
            session.flush()
    except IntegrityError:
        return
    audit.record(
        session, SYSTEM, "quality_incident", incident.id, "opened", after=snapshot(incident)
    )
    _announce(session, incident, "opened", SYSTEM)


def consume(session: Session, event: OutboxEvent) -> None:
    """After each submitted claim: tests the claimed line's batch and pickup point."""
    data = event.payload
    if data.get("previous_status") is not None:
        return  # only a new claim adds to a numerator
    line = session.get(OrderLine, (data["order_id"], data["line_id"]))
    if line is None:
        return
    at = datetime.fromisoformat(data["at"])
    if line.batch_id:
        _test_subject(
            session, line, "batch", OrderLine.batch_id, line.batch_id, BATCH_WINDOW_DAYS, at
        )
    pickup_point = line.order.pickup_point_id
    if pickup_point:
        _test_subject(
            session,
            line,
            "pickup_point",
            Order.pickup_point_id,
            pickup_point,
            PICKUP_WINDOW_DAYS,
            at,
        )


CONSUMER = Consumer("quality", consume, event_types=("claim.submitted",))


# ----------------------------------------------------------------- the incident's life


def snapshot(incident: QualityIncident) -> dict[str, Any]:
    return {
        "status": incident.status,
        "claims": incident.claims,
        "lines": incident.lines,
        "baseline_rate": incident.baseline_rate,
        "p_value": incident.p_value,
        "resolution": incident.resolution,
    }


def _announce(session: Session, incident: QualityIncident, move: str, actor: Principal) -> None:
    events.emit(
        session,
        f"quality.incident_{move}",
        "quality_incident",
        incident.id,
        {
            "incident_id": incident.id,
            "scope": incident.scope,
            "sku": incident.sku,
            "subject_id": incident.subject_id,
            "supplier_id": incident.supplier_id,
            "status": incident.status,
            "claims": incident.claims,
            "lines": incident.lines,
            "baseline_rate": incident.baseline_rate,
            "p_value": incident.p_value,
            "resolution": incident.resolution,
            "actor": {"kind": actor.kind, "id": actor.id},
            "at": utcnow().isoformat(),
        },
    )


def list_incidents(session: Session, status: str | None, limit: int) -> list[QualityIncident]:
    query = select(QualityIncident).order_by(QualityIncident.opened_at.desc()).limit(limit)
    if status is not None:
        query = query.where(QualityIncident.status == status)
    return list(session.scalars(query))


_MOVES = {"acknowledged": ("open",), "resolved": ("open", "acknowledged")}


def move(
    session: Session,
    actor: Principal,
    incident_id: str,
    target: str,
    resolution: str | None = None,
    note: str | None = None,
) -> QualityIncident:
    incident = session.get(QualityIncident, incident_id, with_for_update=True)
    if incident is None:
        raise IncidentNotFound()
    if incident.status not in _MOVES[target]:
        raise IncidentTransitionNotAllowed(
            f"Incident {incident_id} is {incident.status} and cannot be {target}.",
            current_status=incident.status,
        )
    before = snapshot(incident)
    now = utcnow()
    incident.status = target
    if target == "acknowledged":
        incident.acknowledged_at, incident.acknowledged_by = now, actor.id
    else:
        incident.resolved_at, incident.resolved_by = now, actor.id
        incident.resolution, incident.note, incident.live_key = resolution, note, None
    session.flush()
    audit.record(
        session,
        actor,
        "quality_incident",
        incident.id,
        target,
        before=before,
        after=snapshot(incident),
    )
    _announce(session, incident, target, actor)
    return incident
