"""Webhook endpoints as data, the fan-out of events into deliveries, and replay.

Nothing here sends a request: the dispatcher (``dispatch.py``) does, outside any transaction.
Replay (retry, recover) only puts deliveries back in the queue: it re-sends the same event
document and never re-runs what produced it (payouts, campaign actions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claims_api.audit import service as audit
from claims_api.auth.principal import Principal
from claims_api.db import new_id, utcnow
from claims_api.events import catalogue
from claims_api.events import service as events
from claims_api.events.models import OutboxEvent
from claims_api.webhooks.errors import (
    DeliveryNotFound,
    NaiveDatetime,
    UnknownEventType,
    WebhookNotFound,
)
from claims_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from claims_api.webhooks.schemas import EndpointHealth, EndpointPatch
from claims_api.webhooks.signing import new_secret
from claims_api.webhooks.urls import validate_url

ROTATION_OVERLAP = timedelta(hours=24)
DELIVERY_STATUSES = ("pending", "sending", "succeeded", "dead")
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def validate_event_types(patterns: Sequence[str]) -> list[str]:
    """422 ``unknown_event_type`` for a pattern that matches no event type in the catalogue: a
    typo would otherwise subscribe to nothing, silently."""
    for pattern in patterns:
        if not catalogue.matching_types(pattern):
            raise UnknownEventType(
                f"{pattern!r} matches no event type; see docs/events.md.",
                known=list(catalogue.TYPE_NAMES),
            )
    return list(dict.fromkeys(patterns))


def subscribes(endpoint: WebhookEndpoint, event_type: str) -> bool:
    return not endpoint.event_types or any(fnmatchcase(event_type, p) for p in endpoint.event_types)


def create_endpoint(
    session: Session,
    actor: Principal,
    url: str,
    event_types: Sequence[str],
    description: str,
    *,
    allow_private: bool,
) -> WebhookEndpoint:
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        url=validate_url(url, allow_private=allow_private),
        description=description,
        event_types=validate_event_types(event_types),
        enabled=True,
        secret=new_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    audit.record(session, actor, "webhook_endpoint", endpoint.id, "created", after=_view(endpoint))
    return endpoint


def get_endpoint(
    session: Session, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=for_update)
    if endpoint is None:
        raise WebhookNotFound()
    return endpoint


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


def update_endpoint(
    session: Session,
    actor: Principal,
    endpoint_id: str,
    patch: EndpointPatch,
    *,
    allow_private: bool,
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, endpoint_id, for_update=True)
    before = _view(endpoint)
    if patch.url is not None:
        endpoint.url = validate_url(patch.url, allow_private=allow_private)
    if patch.event_types is not None:
        endpoint.event_types = validate_event_types(patch.event_types)
    if patch.description is not None:
        endpoint.description = patch.description
    if patch.enabled is not None:
        endpoint.enabled = patch.enabled
        endpoint.disabled_reason = None if patch.enabled else f"disabled by {actor.kind} {actor.id}"
        endpoint.failing_since = None
    endpoint.updated_at = utcnow()
    audit.record(
        session,
        actor,
        "webhook_endpoint",
        endpoint.id,
        "updated",
        before=before,
        after=_view(endpoint),
    )
    return endpoint


def delete_endpoint(session: Session, actor: Principal, endpoint_id: str) -> None:
    """Deletes the endpoint with its deliveries and their attempts."""
    endpoint = get_endpoint(session, endpoint_id, for_update=True)
    audit.record(session, actor, "webhook_endpoint", endpoint.id, "deleted", before=_view(endpoint))
    session.delete(endpoint)
    session.flush()  # the database cascades to deliveries and attempts


def rotate_secret(session: Session, actor: Principal, endpoint_id: str) -> WebhookEndpoint:
    """A new secret; the current one keeps signing beside it for ROTATION_OVERLAP, so the
    receiver can switch at its own pace. A rotation during an overlap ends the older one."""
    endpoint = get_endpoint(session, endpoint_id, for_update=True)
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    audit.record(session, actor, "webhook_endpoint", endpoint.id, "secret_rotated")
    return endpoint


def active_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires and expires > now:
        secrets.append(endpoint.previous_secret)
    return secrets


def disable_endpoint(session: Session, endpoint: WebhookEndpoint, reason: str) -> None:
    """The service disables an endpoint (410, or days of failures) and says so in an event."""
    now = utcnow()
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    events.emit(
        session,
        "webhook.endpoint_disabled",
        "webhook_endpoint",
        endpoint.id,
        {"endpoint_id": endpoint.id, "reason": reason, "at": now.isoformat()},
    )


def fan_out(session: Session, batch: Sequence[OutboxEvent]) -> int:
    """One pending delivery per (event, subscribed endpoint), disabled endpoints included: their
    deliveries wait until the endpoint is enabled again. Idempotent (ON CONFLICT DO NOTHING),
    so the relay may run it again for an event whose consumers failed. Returns rows added."""
    if not batch:
        return 0
    endpoints = list_endpoints(session)
    now = utcnow()
    rows = [
        {
            "id": new_id("dlv"),
            "endpoint_id": endpoint.id,
            "event_id": event.event_id,
            "event_type": event.event_type,
            "aggregate_type": event.aggregate_type,
            "aggregate_id": event.aggregate_id,
            "sequence": event.sequence,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in batch
        for endpoint in endpoints
        if subscribes(endpoint, event.event_type)
    ]
    if not rows:
        return 0
    insert = _INSERTS[session.get_bind().dialect.name](WebhookDelivery)
    result = session.execute(
        insert.values(rows).on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
    )
    return result.rowcount or 0


def health(session: Session, endpoint_id: str) -> EndpointHealth:
    counts = dict(
        session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .group_by(WebhookDelivery.status)
        ).all()
    )
    last_failure = session.execute(
        select(WebhookAttempt.attempted_at, WebhookAttempt.status_code, WebhookAttempt.error)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            (WebhookAttempt.error.is_not(None)) | (WebhookAttempt.status_code >= 300),
        )
        .order_by(WebhookAttempt.id.desc())
        .limit(1)
    ).first()
    return EndpointHealth(
        pending=counts.get("pending", 0) + counts.get("sending", 0),
        succeeded=counts.get("succeeded", 0),
        dead=counts.get("dead", 0),
        last_failure_at=last_failure.attempted_at if last_failure else None,
        last_failure=(last_failure.error or f"HTTP {last_failure.status_code}")
        if last_failure
        else None,
    )


@dataclass(frozen=True)
class DeliveryView:
    delivery: WebhookDelivery
    attempts: list[WebhookAttempt]


def list_deliveries(
    session: Session, endpoint_id: str, status: str | None = None, limit: int = 50
) -> list[DeliveryView]:
    get_endpoint(session, endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    deliveries = list(
        session.scalars(query.order_by(WebhookDelivery.created_at.desc()).limit(limit))
    )
    attempts: dict[str, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for attempt in session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(attempts))
            .order_by(WebhookAttempt.id)
        ):
            attempts[attempt.delivery_id].append(attempt)
    return [DeliveryView(d, attempts[d.id]) for d in deliveries]


def retry_delivery(
    session: Session, actor: Principal, endpoint_id: str, delivery_id: str
) -> DeliveryView:
    """Sends one delivery again now, with a fresh retry schedule (any status: a receiver that
    lost a delivered event may ask for it again)."""
    get_endpoint(session, endpoint_id)
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise DeliveryNotFound()
    _requeue(delivery)
    audit.record(session, actor, "webhook_delivery", delivery.id, "retry")
    session.flush()
    attempts = list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery.id)
            .order_by(WebhookAttempt.id)
        )
    )
    return DeliveryView(delivery, attempts)


def recover(session: Session, actor: Principal, endpoint_id: str, since: datetime) -> int:
    """Puts every delivery created since ``since`` that is dead, or pending after a failed
    attempt, back in the queue now with a fresh schedule; the dispatcher sends them in each
    aggregate's order. Returns how many."""
    if since.tzinfo is None:
        raise NaiveDatetime()
    get_endpoint(session, endpoint_id)
    failed = (WebhookDelivery.status == "dead") | (
        (WebhookDelivery.status == "pending") & (WebhookDelivery.attempts > 0)
    )
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.created_at >= since)
        .where(failed)
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), lease_expires_at=None)
    )
    audit.record(
        session, actor, "webhook_endpoint", endpoint_id, "recover", since=since.isoformat()
    )
    return result.rowcount or 0


def _requeue(delivery: WebhookDelivery) -> None:
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.lease_expires_at = None


def _view(endpoint: WebhookEndpoint) -> dict:
    return {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }
