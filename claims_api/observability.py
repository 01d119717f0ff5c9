"""The operator's view: request ids, one log line per request, Prometheus metrics."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.responses import Response

from claims_api.claims.models import Claim
from claims_api.compensation.models import LedgerPosting
from claims_api.db import Database, utcnow
from claims_api.events.models import OutboxEvent
from claims_api.inference.service import ModelHolder

REQUEST_SECONDS = Histogram(
    "freshclaim_http_request_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CLAIMS_DECIDED = Counter(
    "freshclaim_claims_decided_total", "Claims decided by the policy", ["route"]
)
PHOTOS_UPLOADED = Counter("freshclaim_photos_uploaded_total", "Photos accepted", ["quality_ok"])
PHOTO_STAGE_SECONDS = Histogram(
    "freshclaim_photo_stage_seconds",
    "Wall time of each stage of processing an accepted photo (decode, encode, quality, ...; "
    "encode and sha256 run on a helper thread beside the others, total is the whole call)",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


PHOTO_STAGE_CPU_SECONDS = Counter(
    "freshclaim_photo_stage_cpu_seconds",
    "CPU time of the threads that ran each stage of processing accepted photos (waiting for "
    "a core or the GIL excluded; total is all of the photo's threads but the model's, whose "
    "scoring runs in its own pool during the alongside stage); divided by "
    "freshclaim_photos_uploaded_total, the CPU one photo costs",
    ["stage"],
)


def observe_photo(quality_ok: bool, timings_ms: dict[str, float], cpu_ms: dict[str, float]) -> None:
    PHOTOS_UPLOADED.labels("true" if quality_ok else "false").inc()
    for stage, ms in timings_ms.items():
        PHOTO_STAGE_SECONDS.labels(stage).observe(ms / 1000.0)
    for stage, ms in cpu_ms.items():
        PHOTO_STAGE_CPU_SECONDS.labels(stage).inc(ms / 1000.0)


Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
# visible ASCII, no spaces: safe in a header, a log line and a label; longer ids are replaced
_VALID_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
# probes and scrapes every few seconds: their lines go at DEBUG, not to the INFO stream
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
access_log = logging.getLogger("claims_api.access")
log = logging.getLogger(__name__)


@dataclass
class RequestContext:
    """What the log lines of one request share; the principal is noted once it is known."""

    request_id: str
    principal_kind: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("freshclaim_request", default=None)


def current_request_id() -> str | None:
    """The id of the request this code runs for (its threadpool work included), or None."""
    context = _current.get()
    return context.request_id if context else None


def note_principal(kind: str) -> None:
    """Record who is calling for the request's log line (its kind, never the credential)."""
    context = _current.get()
    if context is not None:
        context.principal_kind = kind


def accepted_request_id(given: str | None) -> str:
    """The caller's ``X-Request-ID`` where it is short and printable, else a new one."""
    if given and _VALID_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestObserver:
    """Pure ASGI middleware around every HTTP request: gives it a request id (the caller's
    ``X-Request-ID`` or a new one) that log records and the response carry, times it into
    ``freshclaim_http_request_seconds`` by method, route template and status, and writes one
    access log line.

    Not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every chunk of the
    request body through an extra task group (a 12-MP upload arrives in ~60 chunks) and the
    response through a memory stream, a visible share of the server's busy time per upload +
    claim in a profile. This one only wraps ``send``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        context = RequestContext(accepted_request_id(_header(scope, b"x-request-id")))
        token = _current.set(context)
        status = 500
        started = False

        async def observed_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [h for h in message.get("headers", []) if h[0] != b"x-request-id"]
                headers.append((b"x-request-id", context.request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], _template(scope))
            if not started:  # Starlette's own 500 would go out without the request id
                await _internal_error(observed_send)
            raise
        finally:
            elapsed = time.perf_counter() - start
            template = _template(scope)
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(elapsed)
            _log_access(scope["method"], template, status, elapsed, context)
            _current.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _template(scope: Scope) -> str:
    return getattr(scope.get("route"), "path", "unmatched")


async def _internal_error(send: Send) -> None:
    body = json.dumps(
        {"error": {"code": "internal_error", "message": "Something went wrong on our side."}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _log_access(
    method: str, template: str, status: int, elapsed: float, context: RequestContext
) -> None:
    level = logging.DEBUG if template in _QUIET_PATHS else logging.INFO
    if not access_log.isEnabledFor(level):
        return
    duration_ms = round(elapsed * 1000.0, 1)
    access_log.log(
        level,
        "%s %s %d %.1f ms",
        method,
        template,
        status,
        duration_ms,
        extra={
            "http": {
                "method": method,
                "route": template,
                "status": status,
                "duration_ms": duration_ms,
                "principal": context.principal_kind,
            }
        },
    )


# ---------------------------------------------------------------- log lines


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request's id (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id()
        return True


_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, and the record's
    ``extra=`` fields. A handful of lines rather than structlog: the records to format come
    from the standard library's loggers anyway (ours, uvicorn's, SQLAlchemy's), and structlog
    would format them through this same hook."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not the one there was at
    set-up: a supervisor or a test runner may swap (and close) the stream it started with."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Route every logger (uvicorn's included) to one stderr handler in ``log_format``
    (``json`` or ``text``), each record stamped with its request id."""
    handler = CurrentStderrHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn.access stays as serve leaves it, off: its lines carry the client's address, and
    # RequestObserver writes the one access line
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


# ---------------------------------------------------------------- /metrics

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_WAITING_FOR_REVIEW = ("in_review",)


def process_metrics() -> bytes:
    """This process's counters, or, where ``PROMETHEUS_MULTIPROC_DIR`` is set (``serve
    --workers N`` sets it), every worker's, summed from the files they write there."""
    if os.environ.get(MULTIPROCESS_DIR_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class OperationsCollector:
    """The figures read from the shared database at scrape time, so every replica reports
    the same values: the review queue, the SLA, payouts, the outbox. One short query each,
    on indexed columns except the ledger's totals (a scan of ``ledger_postings``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "freshclaim_metrics_database_up",
            "1 when the scrape-time figures below could be read from the database",
        )
        try:
            with self.db.read_session() as session:
                families = [*_queue(session, utcnow()), *_payouts(session), *_outbox(session)]
        except SQLAlchemyError as exc:
            log.warning("metrics: database figures unavailable: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _age_seconds(oldest: datetime | None, now: datetime) -> float:
    if oldest is None:
        return 0.0
    oldest = oldest.replace(tzinfo=UTC) if oldest.tzinfo is None else oldest
    return max(0.0, (now - oldest).total_seconds())


def _queue(session: Session, now: datetime) -> list[Metric]:
    waiting, oldest, past_sla = session.execute(
        select(
            func.count(),
            func.min(Claim.submitted_at),
            func.coalesce(func.sum(case((Claim.sla_deadline < now, 1), else_=0)), 0),
        ).where(Claim.status.in_(_WAITING_FOR_REVIEW))
    ).one()
    depth = GaugeMetricFamily(
        "freshclaim_review_queue_depth", "Claims waiting for a reviewer (status in_review)"
    )
    depth.add_metric([], waiting)
    age = GaugeMetricFamily(
        "freshclaim_review_queue_oldest_age_seconds",
        "Time since the oldest claim waiting for a reviewer was submitted (0: none waits)",
    )
    age.add_metric([], _age_seconds(oldest, now))
    late = GaugeMetricFamily(
        "freshclaim_review_claims_past_sla",
        "Claims waiting for a reviewer whose SLA deadline has passed",
    )
    late.add_metric([], past_sla)
    return [depth, age, late]


def _payouts(session: Session) -> list[Metric]:
    rows = session.execute(
        select(
            LedgerPosting.kind,
            LedgerPosting.currency,
            func.count(),
            func.coalesce(func.sum(LedgerPosting.amount_cents), 0),
        ).group_by(LedgerPosting.kind, LedgerPosting.currency)
    ).all()
    count = CounterMetricFamily(
        "freshclaim_ledger_postings",
        "Ledger postings (kind: payout or reversal), from the ledger",
        labels=["kind", "currency"],
    )
    amount = CounterMetricFamily(
        "freshclaim_ledger_posted_cents",
        "Amount of the ledger postings, in cents of the currency",
        labels=["kind", "currency"],
    )
    for kind, currency, postings, cents in rows:
        count.add_metric([kind, currency], postings)
        amount.add_metric([kind, currency], cents)
    return [count, amount]


def _outbox(session: Session) -> list[Metric]:
    backlog, oldest = session.execute(
        select(func.count(), func.min(OutboxEvent.created_at)).where(
            OutboxEvent.published_at.is_(None)
        )
    ).one()
    waiting = GaugeMetricFamily(
        "freshclaim_outbox_backlog", "Outbox events written but not yet published"
    )
    waiting.add_metric([], backlog)
    lag = GaugeMetricFamily(
        "freshclaim_outbox_lag_seconds",
        "Age of the oldest unpublished outbox event (0: none waits)",
    )
    lag.add_metric([], _age_seconds(oldest, utcnow()))
    return [waiting, lag]


def model_info(models: ModelHolder) -> Metric:
    """The classifier this process scores with: its version, or none when none is loaded
    (every claim then goes to a person)."""
    info = GaugeMetricFamily(
        "freshclaim_model_loaded",
        "1 with the version of the classifier this process scores with; 0 when none is loaded",
        labels=["model_version"],
    )
    classifier = models.classifier
    info.add_metric([classifier.version if classifier else ""], 1 if classifier else 0)
    return info


class _Fixed:
    """A collector of metrics already made."""

    def __init__(self, *metrics: Metric) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def install_metrics(app: FastAPI) -> None:
    app.add_middleware(RequestObserver)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        container = request.app.state.container
        operations = CollectorRegistry(auto_describe=False)
        operations.register(OperationsCollector(container.db))
        operations.register(_Fixed(model_info(container.models)))
        body = process_metrics() + generate_latest(operations)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
