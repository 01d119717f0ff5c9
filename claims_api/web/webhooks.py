"""What the admin's webhooks page shows: the endpoints with their health, one endpoint's
delivery log, and the forms for retry and recover. Replay itself is the webhooks service's
(``claims_api.webhooks.service``), called exactly as the API calls it, so the audit rows are
the same whichever door an admin used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from claims_api.auth.principal import Principal
from claims_api.db import utcnow
from claims_api.webhooks import service as webhooks
from claims_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from claims_api.webhooks.schemas import EndpointHealth

# the success rate is over recent attempts: an endpoint that failed for a week last year and
# works today is healthy
SUCCESS_WINDOW = timedelta(days=7)
LOG_LIMIT = 50
STATUSES = webhooks.DELIVERY_STATUSES


class BadSince(ValueError):
    """The "recover since" field is empty or not a date and time."""


@dataclass(frozen=True)
class EndpointRow:
    endpoint: WebhookEndpoint
    health: EndpointHealth
    attempts: int  # in SUCCESS_WINDOW
    successes: int

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None


@dataclass(frozen=True)
class WebhooksView:
    rows: list[EndpointRow]
    selected: EndpointRow | None
    deliveries: list[webhooks.DeliveryView]
    status: str | None
    window_days: int = SUCCESS_WINDOW.days


def _attempt_counts(session: Session, since: datetime) -> dict[str, tuple[int, int]]:
    """Per endpoint: (attempts, successful attempts) since ``since``."""
    succeeded = case((WebhookAttempt.status_code.between(200, 299), 1), else_=0)
    rows = session.execute(
        select(WebhookDelivery.endpoint_id, func.count(), func.sum(succeeded))
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .where(WebhookAttempt.attempted_at >= since)
        .group_by(WebhookDelivery.endpoint_id)
    ).all()
    return {endpoint_id: (total, int(ok or 0)) for endpoint_id, total, ok in rows}


def webhooks_view(session: Session, endpoint_id: str | None, status: str | None) -> WebhooksView:
    """Every endpoint with its health; the log of ``endpoint_id`` (the first endpoint when none
    is named), filtered by ``status`` when it is a delivery status."""
    counts = _attempt_counts(session, utcnow() - SUCCESS_WINDOW)
    rows = [
        EndpointRow(e, webhooks.health(session, e.id), *counts.get(e.id, (0, 0)))
        for e in webhooks.list_endpoints(session)
    ]
    status = status if status in STATUSES else None
    selected = next((r for r in rows if r.endpoint.id == endpoint_id), None)
    if selected is None and endpoint_id is None and rows:
        selected = rows[0]
    deliveries = (
        webhooks.list_deliveries(session, selected.endpoint.id, status, LOG_LIMIT)
        if selected
        else []
    )
    return WebhooksView(rows, selected, deliveries, status)


def can_retry(delivery: WebhookDelivery) -> bool:
    """A delivery whose last attempt failed (waiting for its next try) or that is dead."""
    return delivery.status == "dead" or (delivery.status == "pending" and delivery.attempts > 0)


def parse_since(text: str | None) -> datetime:
    """The form's ``datetime-local`` value, read as UTC (the page shows every time in UTC);
    an offset typed into it is honoured."""
    try:
        since = datetime.fromisoformat((text or "").strip())
    except ValueError as exc:
        raise BadSince(text) from exc
    return since if since.tzinfo else since.replace(tzinfo=UTC)


def default_since() -> str:
    """The recover form's initial value: a day ago, in the input's own format."""
    return (utcnow() - timedelta(days=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def retry(session: Session, actor: Principal, endpoint_id: str, delivery_id: str) -> None:
    webhooks.retry_delivery(session, actor, endpoint_id, delivery_id)


def recover(session: Session, actor: Principal, endpoint_id: str, since_text: str | None) -> int:
    return webhooks.recover(session, actor, endpoint_id, parse_since(since_text))
