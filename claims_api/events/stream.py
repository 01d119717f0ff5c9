"""Publishes every outbox event to NATS JetStream, for a data platform that outgrows webhooks.

Stream ``FRESHCLAIM``, subject ``freshclaim.<aggregate>.<type>`` (the type without a repeated
aggregate prefix: ``claim.paid`` is ``freshclaim.claim.paid``), header ``Nats-Msg-Id`` = the
event id. The relay publishes, waits for JetStream's acks, then marks the events streamed in a
short transaction; a relay that dies in between publishes them again after its restart, and
JetStream's duplicate window drops the copies, so each event is in the stream once."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import nats
from nats.js.errors import NotFoundError
from sqlalchemy import select, update

from claims_api.db import Database, utcnow
from claims_api.events.models import OutboxEvent
from claims_api.events.service import event_document

T = TypeVar("T")

STREAM = "FRESHCLAIM"
SUBJECT_PREFIX = "freshclaim"
DUPLICATE_WINDOW_S = 600  # a relay restarted within this long re-publishes without duplicates


def subject_for(event: OutboxEvent, prefix: str = SUBJECT_PREFIX) -> str:
    name = event.event_type.removeprefix(f"{event.aggregate_type}.")
    return f"{prefix}.{event.aggregate_type}.{name}"


@dataclass(frozen=True)
class Message:
    subject: str
    body: bytes
    message_id: str


class JetStreamPublisher:
    """nats-py is asyncio-only and the relay runs in threads: the client lives on an event loop
    of its own, in a daemon thread, and ``publish`` blocks until JetStream has acked."""

    def __init__(
        self,
        url: str,
        *,
        stream: str = STREAM,
        subject_prefix: str = SUBJECT_PREFIX,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
        self._thread.start()
        self._connection: Any = None
        self._jetstream: Any = None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(self.timeout_s * 3)

    async def _ready(self) -> Any:
        if self._connection is None or self._connection.is_closed:
            self._connection = await nats.connect(
                self.url, connect_timeout=self.timeout_s, allow_reconnect=True
            )
            self._jetstream = self._connection.jetstream(timeout=self.timeout_s)
            try:
                await self._jetstream.stream_info(self.stream)
            except NotFoundError:
                await self._jetstream.add_stream(
                    name=self.stream,
                    subjects=[f"{self.subject_prefix}.>"],
                    duplicate_window=DUPLICATE_WINDOW_S,
                )
        return self._jetstream

    async def _publish(self, messages: Sequence[Message]) -> int:
        jetstream = await self._ready()
        duplicates = 0
        for message in messages:  # one at a time: the stream keeps the outbox's order
            ack = await jetstream.publish(
                message.subject, message.body, headers={"Nats-Msg-Id": message.message_id}
            )
            duplicates += bool(ack.duplicate)
        return duplicates

    def publish(self, messages: Sequence[Message]) -> int:
        """Publishes in order; returns how many JetStream recognised as duplicates."""
        return self._run(self._publish(messages))

    def close(self) -> None:
        if self._connection is not None and not self._connection.is_closed:
            self._run(self._connection.drain())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class StreamRelay:
    def __init__(self, db: Database, publisher: JetStreamPublisher, batch_size: int = 200) -> None:
        self.db = db
        self.publisher = publisher
        self.batch_size = batch_size

    def run_once(self) -> int:
        """Publishes one batch of events not yet streamed; returns how many."""
        with self.db.read_session() as session:
            events = session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.streamed_at.is_(None))
                .order_by(OutboxEvent.id)
                .limit(self.batch_size)
            ).all()
        if not events:
            return 0
        self.publisher.publish(
            [
                Message(
                    subject_for(e, self.publisher.subject_prefix),
                    json.dumps(event_document(e), separators=(",", ":")).encode(),
                    e.event_id,
                )
                for e in events
            ]
        )
        with self.db.session() as session:
            session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([e.id for e in events]))
                .values(streamed_at=utcnow())
            )
        return len(events)

    def drain(self) -> int:
        published = 0
        while sent := self.run_once():
            published += sent
        return published
