"""The outbox relay's database pass: applies each new event to the in-process consumers
(profiles, tagging, campaigns) exactly once, and hands it to ``fan_out`` (the webhook
deliveries), in the transaction that marks it published. It sends nothing over the network:
webhooks go out from ``webhooks.dispatch`` and the stream from ``events.stream``, each outside
any transaction. Several replicas may run it: rows are claimed with ``FOR UPDATE SKIP
LOCKED``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_api.db import Database, utcnow
from claims_api.events.consumers import Consumer, apply_all
from claims_api.events.models import OutboxEvent

log = logging.getLogger(__name__)

FanOut = Callable[[Session, Sequence[OutboxEvent]], object]
MAX_BACKOFF_SECONDS = 3600


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        consumers: list[Consumer],
        fan_out: FanOut | None = None,
        batch_size: int = 100,
        max_batches: int = 1,
    ) -> None:
        self.db = db
        self.consumers = consumers
        self.fan_out = fan_out
        self.batch_size = batch_size
        self.max_batches = max_batches

    def run_once(self) -> int:
        """Deliver up to ``max_batches`` batches, each in a transaction of its own, until one
        comes back short; returns how many events were published."""
        published = 0
        for _ in range(self.max_batches):
            done, fetched = self._deliver_batch()
            published += done
            if fetched < self.batch_size:
                break
        return published

    def _deliver_batch(self) -> tuple[int, int]:
        """(published, fetched) for one batch of pending events."""
        published = 0
        with self.db.session() as session:
            now = utcnow()
            events = session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.published_at.is_(None), OutboxEvent.next_attempt_at <= now)
                .order_by(OutboxEvent.id)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            if self.fan_out is not None:
                # Even for an event whose consumers fail below: its webhooks do not wait for
                # an in-process consumer, and a later event of the same claim must not
                # overtake it at an endpoint (the fan-out is idempotent).
                self.fan_out(session, events)
            consumed = self._consume_together(session, events)
            for event in events:
                try:
                    if not consumed:
                        with session.begin_nested():
                            apply_all(session, self.consumers, event)
                except Exception as exc:  # one bad event must not block the others
                    event.attempts += 1
                    event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    delay = min(MAX_BACKOFF_SECONDS, 2 ** min(event.attempts, 12))
                    event.next_attempt_at = utcnow() + timedelta(seconds=delay)
                    log.warning("event %s: a consumer failed: %s", event.event_id, exc)
                    continue
                event.published_at = utcnow()
                published += 1
        return published, len(events)

    def _consume_together(self, session: Session, events: Sequence[OutboxEvent]) -> bool:
        """Runs the consumers on every event of the batch inside one savepoint: True when none
        failed. When one does, the savepoint takes the whole batch's consumer work back and
        the caller redoes it one event per savepoint, so the bad event fails alone (two round
        trips per batch instead of two per event in the usual case)."""
        if not events or not self.consumers:
            return True
        try:
            with session.begin_nested():
                for event in events:
                    apply_all(session, self.consumers, event)
        except Exception as exc:
            log.info("consumers failed on a batch (%s): delivering one event at a time", exc)
            return False
        return True


class BackgroundLoop:
    """Runs ``step`` every ``interval`` seconds in a daemon thread until stopped; ``close`` (if
    given) runs once the loop has ended."""

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        interval: float,
        close: Callable[[], object] | None = None,
    ) -> None:
        self._step = step
        self._interval = interval
        self._close = close
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    self._step()
                except Exception:
                    log.exception("background step %s failed", self._thread.name)
        finally:
            if self._close is not None:
                self._close()
