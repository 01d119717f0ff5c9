"""The service's background work: the outbox relay (in-process consumers and webhook fan-out),
the webhook dispatcher, the JetStream publisher (when FRESHCLAIM_NATS_URL is set) and the
review-lease sweeper.

They run in every ``freshclaim serve`` process by default (``FRESHCLAIM_BACKGROUND_WORKERS``),
which suits the embedded SQLite layout. On a scale-out deployment, start the replicas with
``FRESHCLAIM_BACKGROUND_WORKERS=false`` and run ``freshclaim worker`` beside them, so the
relay's consumer work no longer shares a replica's GIL with its requests (docs/performance.md).
Several workers may run at once: the relay and the dispatcher claim rows with
``FOR UPDATE SKIP LOCKED``, and the stream's duplicate window absorbs a double publish.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from claims_api.config import Settings
from claims_api.db import Database
from claims_api.events.registry import registered_consumers
from claims_api.events.relay import BackgroundLoop, OutboxRelay
from claims_api.events.stream import JetStreamPublisher, StreamRelay
from claims_api.review import service as review_service
from claims_api.webhooks import service as webhooks_service
from claims_api.webhooks.dispatch import WebhookDispatcher

log = logging.getLogger(__name__)

RELAY_INTERVAL_S = 1.0
LEASE_SWEEP_INTERVAL_S = 15.0
DISPATCH_PASSES_PER_STEP = 20


def outbox_relay(db: Database) -> OutboxRelay:
    # SQLite has one write lock for the whole database: a relay transaction holds it against
    # every upload and claim, so there it delivers 10 events per transaction.
    small = db.is_sqlite
    return OutboxRelay(
        db,
        consumers=registered_consumers(),
        fan_out=webhooks_service.fan_out,
        batch_size=10 if small else 100,
        max_batches=100 if small else 10,
    )


def webhook_dispatcher(db: Database, settings: Settings) -> WebhookDispatcher:
    return WebhookDispatcher(
        db,
        timeout_s=settings.webhook_timeout_seconds,
        concurrency=settings.webhook_concurrency,
    )


def stream_relay(db: Database, settings: Settings) -> StreamRelay | None:
    if not settings.nats_url:
        return None
    return StreamRelay(db, JetStreamPublisher(settings.nats_url))


def sweep_leases(db: Database) -> int:
    """Returns the number of expired review leases released."""
    with db.session() as session:
        return review_service.expire_leases(session)


def _warn_about_retired_settings() -> None:
    if os.environ.get("FRESHCLAIM_WEBHOOK_URLS") or os.environ.get("FRESHCLAIM_WEBHOOK_SECRET"):
        log.warning(
            "FRESHCLAIM_WEBHOOK_URLS and FRESHCLAIM_WEBHOOK_SECRET are no longer read: register "
            "each receiver with `freshclaim webhooks create --url …` (or POST /v1/webhooks) and "
            "verify the Standard Webhooks signature with the secret it prints."
        )


def background_loops(db: Database, settings: Settings) -> list[BackgroundLoop]:
    _warn_about_retired_settings()
    relay = outbox_relay(db)
    dispatcher = webhook_dispatcher(db, settings)
    loops = [
        BackgroundLoop("outbox-relay", relay.run_once, RELAY_INTERVAL_S),
        BackgroundLoop(
            "webhook-dispatcher",
            lambda: dispatcher.drain(DISPATCH_PASSES_PER_STEP),
            RELAY_INTERVAL_S,
            close=dispatcher.close,
        ),
        BackgroundLoop("lease-sweeper", lambda: sweep_leases(db), LEASE_SWEEP_INTERVAL_S),
    ]
    stream = stream_relay(db, settings)
    if stream is not None:
        close = stream.publisher.close
        loops.append(BackgroundLoop("event-stream", stream.drain, RELAY_INTERVAL_S, close=close))
    return loops


@dataclass(frozen=True)
class Drained:
    events_published: int
    webhook_attempts: int
    events_streamed: int
    leases_released: int


def drain(db: Database, settings: Settings) -> Drained:
    """One pass of each: relay until no deliverable event is left, send every webhook delivery
    that is due, stream what is not streamed yet, then release expired leases. Events and
    deliveries whose retry time has not come stay for a later pass."""
    relay = outbox_relay(db)
    published = 0
    while delivered := relay.run_once():
        published += delivered
    dispatcher = webhook_dispatcher(db, settings)
    try:
        attempts = dispatcher.drain()
    finally:
        dispatcher.close()
    streamed = 0
    stream = stream_relay(db, settings)
    if stream is not None:
        try:
            streamed = stream.drain()
        finally:
            stream.publisher.close()
    return Drained(published, attempts, streamed, sweep_leases(db))


def run_until(stop: threading.Event, db: Database, settings: Settings) -> None:
    """Run the loops in this process until ``stop`` is set."""
    loops = background_loops(db, settings)
    for loop in loops:
        loop.start()
    try:
        stop.wait()
    finally:
        for loop in loops:
            loop.stop()
