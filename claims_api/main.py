"""The FastAPI application."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from claims_api import __version__
from claims_api.auth.router import router as auth_router
from claims_api.background import background_loops
from claims_api.claims.router import router as claims_router
from claims_api.compensation.router import router as compensation_router
from claims_api.config import Settings, get_settings
from claims_api.container import Container, build_container
from claims_api.errors import install_error_handlers
from claims_api.limits.service import DailyPhotoCap, RateLimits, build_buckets
from claims_api.observability import install_metrics
from claims_api.orders.router import router as orders_router
from claims_api.photos.router import router as photos_router
from claims_api.photos.upload_limit import UploadBudget, UploadSizeLimit
from claims_api.profiles.router import router as profiles_router
from claims_api.quality.router import router as quality_router
from claims_api.retraining.router import router as audit_router
from claims_api.review.router import router as review_router
from claims_api.web.router import install as install_workbench
from claims_api.webhooks.router import router as webhooks_router


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    settings = settings or (container.settings if container else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.container = container or build_container(settings)
        built: Container = app.state.container
        app.state.rate_limits = RateLimits(built.settings, build_buckets(built.settings, built.db))
        app.state.daily_photo_cap = DailyPhotoCap(built.settings.photos_per_day, built.db)
        runs_background = built.settings.background_workers
        loops = background_loops(built.db, built.settings) if runs_background else []
        for loop in loops:
            loop.start()
        if getattr(app.state, "freeze_gc_after_startup", False):
            # The model, the ORM mappings and the imported modules live as long as the
            # process: leave them out of the cyclic collector, whose full collections had to
            # scan them all, pausing every request under load.
            gc.collect()
            gc.freeze()
        yield
        for loop in loops:
            loop.stop()
        if container is None:
            app.state.container.db.dispose()

    app = FastAPI(
        title="FreshClaim",
        version=__version__,
        summary="AI claims review and image verification for fresh-food retail",
        lifespan=lifespan,
    )
    if container is not None:
        app.state.container = container
    app.add_middleware(
        UploadSizeLimit,
        limit=settings.max_upload_bytes,
        paths=frozenset({"/v1/photos"}),
        budget=UploadBudget(settings.upload_bytes_in_flight)
        if settings.upload_bytes_in_flight
        else None,
        wait_seconds=settings.upload_queue_seconds,
    )
    install_error_handlers(app)
    install_metrics(app)
    for router in (
        auth_router,
        orders_router,
        photos_router,
        claims_router,
        compensation_router,
        audit_router,
        review_router,
        profiles_router,
        quality_router,
        webhooks_router,
    ):
        app.include_router(router)
    install_workbench(app)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> JSONResponse:
        c: Container = app.state.container
        checks = {"database": "ok", "model": "ok"}
        try:
            with c.db.read_session() as session:
                session.execute(text("SELECT 1"))
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        if not c.models.ready:
            checks["model"] = f"error: {c.models.error}"
        ready = all(v == "ok" for v in checks.values())
        model = c.models.classifier
        body = {
            "ready": ready,
            "checks": checks,
            "model_version": model.version if model else None,
            # certified: kinds auto-approve only on a certificate; validated: the demo's
            # global threshold, uncertified for every kind
            "certification_mode": c.policy.certification_mode,
            "certified_kinds": sorted(model.metadata.certificates) if model else [],
        }
        return JSONResponse(body, status_code=200 if ready else 503)

    return app
