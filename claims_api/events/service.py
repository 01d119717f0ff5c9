"""Transactional outbox: events are rows written with the change they announce."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claims_api.db import new_id, utcnow
from claims_api.events.models import EventSequence, OutboxEvent

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def next_sequence(session: Session, aggregate_type: str, aggregate_id: str) -> int:
    """The aggregate's next sequence number, in one upsert (1 for its first event)."""
    insert = _INSERTS[session.get_bind().dialect.name](EventSequence)
    statement = (
        insert.values(aggregate_type=aggregate_type, aggregate_id=aggregate_id, last_sequence=1)
        .on_conflict_do_update(
            index_elements=["aggregate_type", "aggregate_id"],
            set_={"last_sequence": EventSequence.last_sequence + 1},
        )
        .returning(EventSequence.last_sequence)
    )
    return session.execute(statement).scalar_one()


def emit(
    session: Session,
    event_type: str,
    aggregate_type: str,
    aggregate_id: str,
    payload: dict[str, Any],
) -> OutboxEvent:
    now = utcnow()
    event = OutboxEvent(
        event_id=new_id("evt"),
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        sequence=next_sequence(session, aggregate_type, aggregate_id),
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(event)
    return event


def event_document(event: OutboxEvent) -> dict[str, Any]:
    """What webhooks and the stream carry: the envelope of ``catalogue.EventEnvelope``."""
    return {
        "id": event.event_id,
        "type": event.event_type,
        "aggregate": {"type": event.aggregate_type, "id": event.aggregate_id},
        "sequence": event.sequence,
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }
