"""In-process consumers of events, and the one rule they share: an event is applied at most
once per consumer, and the record that it was is written in the same transaction as its
effects (so a redelivered event, or a relay that crashed after applying it but before marking
it published, changes nothing the second time).

A consumer declares which event types it wants; the relay calls :func:`apply_once` for each
event and each registered consumer (``claims_api.events.registry``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claims_api.db import utcnow
from claims_api.events.models import ConsumedEvent, OutboxEvent

Handler = Callable[[Session, OutboxEvent], None]

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Consumer:
    """``event_types`` are patterns such as ``claim.*``; empty means every type."""

    name: str
    handler: Handler
    event_types: tuple[str, ...] = field(default=())

    def wants(self, event_type: str) -> bool:
        return not self.event_types or any(fnmatchcase(event_type, p) for p in self.event_types)


def mark_consumed(session: Session, consumer: str, event_id: str) -> bool:
    """Records that ``consumer`` applied the event; False when it already had (a redelivery).
    One INSERT ... ON CONFLICT DO NOTHING: no savepoint around an insert that may fail."""
    insert = _INSERTS[session.get_bind().dialect.name]
    inserted = session.execute(
        insert(ConsumedEvent)
        .values(consumer=consumer, event_id=event_id, consumed_at=utcnow())
        .on_conflict_do_nothing(index_elements=["consumer", "event_id"])
        .returning(ConsumedEvent.event_id)
    ).first()
    return inserted is not None


def apply_once(session: Session, consumer: Consumer, event: OutboxEvent) -> bool:
    """Applies ``event`` to ``consumer`` unless it does not want it or already applied it;
    True when the handler ran. Runs in the caller's transaction: a handler that raises takes
    the consumed mark back with its own effects."""
    if not consumer.wants(event.event_type):
        return False
    if not mark_consumed(session, consumer.name, event.event_id):
        return False
    consumer.handler(session, event)
    return True


def apply_all(session: Session, consumers: Iterable[Consumer], event: OutboxEvent) -> None:
    for consumer in consumers:
        apply_once(session, consumer, event)
