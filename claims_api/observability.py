from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response

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


class RequestMetrics:
    """Pure ASGI middleware timing every HTTP request by method, route template and status.

    Not ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware runs every chunk of the
    request body through an extra task group (a 12-MP upload arrives in ~60 chunks) and the
    response through a memory stream, a visible share of the server's busy time per upload +
    claim in a profile. This one only wraps ``send`` to see the status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            REQUEST_SECONDS.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - start
            )


def install_metrics(app: FastAPI) -> None:
    app.add_middleware(RequestMetrics)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
