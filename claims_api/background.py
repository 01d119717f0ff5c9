"""The service's background work: the outbox relay and the review-lease sweeper.

They run in every ``freshclaim serve`` process by default (``FRESHCLAIM_BACKGROUND_WORKERS``),
which suits the embedded SQLite layout. On a scale-out deployment, start the replicas with
``FRESHCLAIM_BACKGROUND_WORKERS=false`` and run ``freshclaim worker`` beside them: the relay's
batches of consumer work then no longer share a replica's GIL with its requests (on
PostgreSQL at concurrency 4 the p99 of upload + claim went from 462 to 370 ms on a 2-core
machine; README, Performance).
Several workers may run at once: the relay claims rows with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from claims_api.config import Settings
from claims_api.db import Database
from claims_api.events.registry import registered_consumers
from claims_api.events.relay import BackgroundLoop, OutboxRelay
from claims_api.review import service as review_service

RELAY_INTERVAL_S = 1.0
LEASE_SWEEP_INTERVAL_S = 15.0


def outbox_relay(db: Database, settings: Settings) -> OutboxRelay:
    # SQLite has one write lock for the whole database: a relay transaction holds it against
    # every upload and claim, so there it delivers 10 events per transaction (a 100-event
    # transaction of consumer work held it for 100+ ms at ~20 claims/s).
    small = db.is_sqlite
    return OutboxRelay(
        db,
        consumers=registered_consumers(),
        webhook_urls=settings.webhook_urls,
        webhook_secret=settings.webhook_secret,
        batch_size=10 if small else 100,
        max_batches=100 if small else 10,
    )


def sweep_leases(db: Database) -> int:
    """Returns the number of expired review leases released."""
    with db.session() as session:
        return review_service.expire_leases(session)


def background_loops(db: Database, settings: Settings) -> list[BackgroundLoop]:
    relay = outbox_relay(db, settings)
    return [
        BackgroundLoop("outbox-relay", relay.run_once, RELAY_INTERVAL_S),
        BackgroundLoop("lease-sweeper", lambda: sweep_leases(db), LEASE_SWEEP_INTERVAL_S),
    ]


@dataclass(frozen=True)
class Drained:
    events_published: int
    leases_released: int


def drain(db: Database, settings: Settings) -> Drained:
    """One pass of both: relay until no deliverable event is left (events whose retry time
    has not come stay for a later pass), then release expired leases."""
    relay = outbox_relay(db, settings)
    published = 0
    while delivered := relay.run_once():
        published += delivered
    return Drained(published, sweep_leases(db))


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
