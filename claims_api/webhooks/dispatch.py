"""Sends webhook deliveries, outside any database transaction.

One pass: claim a batch of due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) and mark
them ``sending`` with a lease, commit; POST them concurrently with one pooled httpx client;
record each attempt in a short transaction of its own. A relay that dies between the POST and
the record leaves the delivery ``sending``; when the lease runs out it is sent again, with the
same ``webhook-id`` — at least once, never lost.

Order: a delivery is due only when every earlier event (lower ``sequence``) of the same
aggregate has succeeded at the same endpoint; a dead one holds the later ones back until it
is recovered. Retries follow RETRY_SCHEDULE_S with jitter (Svix's schedule, ~27 h in all),
later when the receiver asks with ``Retry-After`` on 429/503; 3xx counts as a failure (a
redirect is not followed: the signature was made for this URL). 410 disables the endpoint;
so do FAILING_DAYS_BEFORE_DISABLE days without a success."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from prometheus_client import Counter
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from claims_api.db import Database, utcnow
from claims_api.events.models import OutboxEvent
from claims_api.events.service import event_document
from claims_api.webhooks import service
from claims_api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from claims_api.webhooks.signing import headers as signed_headers

log = logging.getLogger(__name__)

# Seconds before attempt 1, 2, … 8 (the first is immediate). After the last, the delivery is dead.
RETRY_SCHEDULE_S = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
JITTER = 0.1  # ± this share of each delay, so a recovered receiver is not hit by a wall at once
MAX_RETRY_AFTER_S = 24 * 3600
FAILING_DAYS_BEFORE_DISABLE = 5
RESPONSE_EXCERPT_CHARS = 500
USER_AGENT = "FreshClaim-Webhooks/1"

ATTEMPTS = Counter("freshclaim_webhook_attempts_total", "Webhook POSTs by outcome", ["outcome"])
DEAD = Counter("freshclaim_webhook_deliveries_dead_total", "Deliveries whose retries ran out")
DISABLED = Counter(
    "freshclaim_webhook_endpoints_disabled_total", "Endpoints the service disabled", ["why"]
)


@dataclass(frozen=True)
class Job:
    delivery_id: str
    endpoint_id: str
    url: str
    secrets: list[str]
    message_id: str
    body: bytes


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None
    retry_after_s: float | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, when.timestamp() - time.time()), MAX_RETRY_AFTER_S)


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        *,
        timeout_s: float = 10.0,
        concurrency: int = 8,
        batch_size: int = 50,
        clock: Callable[[], datetime] = utcnow,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.batch_size = batch_size
        self.clock = clock
        self._jitter = jitter
        # The lease outlives the slowest possible POST of the batch by a wide margin, so a live
        # relay never has its delivery taken over; only a dead relay's is.
        self.lease = timedelta(seconds=timeout_s * 2 + 30)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=concurrency * 2, max_keepalive_connections=concurrency
            ),
            headers={"user-agent": USER_AGENT},
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook")

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def run_once(self) -> int:
        """One batch: claim, send, record. Returns the number of attempts made."""
        jobs = self._claim()
        outcomes = list(self._pool.map(self._send, jobs))
        for job, outcome in zip(jobs, outcomes, strict=True):
            self._record(job, outcome)
        return len(jobs)

    def drain(self, max_passes: int = 1000) -> int:
        """Passes until nothing is due (deliveries waiting for a later retry stay)."""
        sent = 0
        for _ in range(max_passes):
            attempted = self.run_once()
            if not attempted:
                break
            sent += attempted
        return sent

    def _claim(self) -> list[Job]:
        delivery = WebhookDelivery
        earlier = aliased(WebhookDelivery)
        with self.db.session() as session:
            now = self.clock()
            held_back = exists().where(
                earlier.endpoint_id == delivery.endpoint_id,
                earlier.aggregate_type == delivery.aggregate_type,
                earlier.aggregate_id == delivery.aggregate_id,
                earlier.sequence < delivery.sequence,
                earlier.status != "succeeded",
            )
            due = or_(
                and_(delivery.status == "pending", delivery.next_attempt_at <= now),
                and_(delivery.status == "sending", delivery.lease_expires_at <= now),
            )
            rows = session.scalars(
                select(delivery)
                .join(WebhookEndpoint, WebhookEndpoint.id == delivery.endpoint_id)
                .where(WebhookEndpoint.enabled, due, ~held_back)
                .order_by(delivery.next_attempt_at, delivery.sequence)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True, of=delivery)
            ).all()
            for row in rows:
                row.status = "sending"
                row.lease_expires_at = now + self.lease
            return self._jobs(session, rows, now)

    def _jobs(self, session: Session, rows: list[WebhookDelivery], now: datetime) -> list[Job]:
        if not rows:
            return []
        documents = {
            e.event_id: e
            for e in session.scalars(
                select(OutboxEvent).where(OutboxEvent.event_id.in_({r.event_id for r in rows}))
            )
        }
        endpoints = {e.id: e for e in service.list_endpoints(session)}
        jobs = []
        for row in rows:
            endpoint = endpoints[row.endpoint_id]
            event = documents[row.event_id]
            jobs.append(
                Job(
                    delivery_id=row.id,
                    endpoint_id=endpoint.id,
                    url=endpoint.url,
                    secrets=service.active_secrets(endpoint, now),
                    message_id=event.event_id,
                    body=_body(event_document(event)),
                )
            )
        return jobs

    def _send(self, job: Job) -> Outcome:
        # The signature's timestamp is the wall clock's: receivers compare it with theirs.
        timestamp = int(time.time())
        started = time.perf_counter()
        try:
            response = self._client.post(
                job.url,
                content=job.body,
                headers=signed_headers(job.secrets, job.message_id, timestamp, job.body),
            )
        except httpx.HTTPError as exc:
            return Outcome(None, _ms_since(started), None, f"{type(exc).__name__}: {exc}", None)
        return Outcome(
            response.status_code,
            _ms_since(started),
            response.text[:RESPONSE_EXCERPT_CHARS] or None,
            None,
            _retry_after(response),
        )

    def _record(self, job: Job, outcome: Outcome) -> None:
        ATTEMPTS.labels(
            "success" if outcome.succeeded else "error" if outcome.status_code is None else "http"
        ).inc()
        with self.db.session() as session:
            now = self.clock()
            delivery = session.get(WebhookDelivery, job.delivery_id, with_for_update=True)
            endpoint = session.get(WebhookEndpoint, job.endpoint_id, with_for_update=True)
            if delivery is None or endpoint is None:  # deleted while it was being sent
                return
            session.add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    attempted_at=now,
                    status_code=outcome.status_code,
                    latency_ms=outcome.latency_ms,
                    response_excerpt=outcome.excerpt,
                    error=outcome.error,
                )
            )
            delivery.attempts += 1
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            delivery.lease_expires_at = None
            if outcome.succeeded:
                delivery.status = "succeeded"
                delivery.delivered_at = now
                endpoint.failing_since = None
                return
            delivery.last_error = outcome.error or f"HTTP {outcome.status_code}"
            self._schedule_retry(delivery, outcome, now)
            self._judge_endpoint(session, endpoint, outcome, now)

    def _schedule_retry(self, delivery: WebhookDelivery, outcome: Outcome, now: datetime) -> None:
        if delivery.attempts >= len(RETRY_SCHEDULE_S):
            delivery.status = "dead"
            DEAD.inc()
            log.warning(
                "webhook delivery %s is dead after %d attempts", delivery.id, delivery.attempts
            )
            return
        delay = RETRY_SCHEDULE_S[delivery.attempts] * (1 + JITTER * (2 * self._jitter() - 1))
        delay = max(delay, outcome.retry_after_s or 0.0)
        delivery.status = "pending"
        delivery.next_attempt_at = now + timedelta(seconds=delay)

    def _judge_endpoint(
        self, session: Session, endpoint: WebhookEndpoint, outcome: Outcome, now: datetime
    ) -> None:
        if not endpoint.enabled:
            return
        if outcome.status_code == 410:
            DISABLED.labels("gone").inc()
            service.disable_endpoint(session, endpoint, "the endpoint answered 410 Gone")
            return
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        elif now - endpoint.failing_since >= timedelta(days=FAILING_DAYS_BEFORE_DISABLE):
            DISABLED.labels("failing").inc()
            service.disable_endpoint(
                session,
                endpoint,
                f"no successful delivery since {endpoint.failing_since.isoformat()}",
            )


def _body(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
