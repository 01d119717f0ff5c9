"""Transactional outbox: events are rows written with the change they announce."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from claims_api.db import new_id, utcnow
from claims_api.events.models import OutboxEvent


def emit(
    session: Session,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any],
) -> OutboxEvent:
    event = OutboxEvent(
        event_id=new_id("evt"),
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload,
        created_at=utcnow(),
        next_attempt_at=utcnow(),
    )
    session.add(event)
    return event
