"""The reviewer workbench's pages and the small JSON endpoints its JavaScript calls.

Authentication is a signed session cookie (``web/session.py``); every POST carries the
session's CSRF token, as a form field or an ``X-CSRF-Token`` header."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect

from claims_api.auth import service as auth
from claims_api.auth.throttle import LoginLimits
from claims_api.claims.models import Claim
from claims_api.container import Container
from claims_api.deps import client_address, in_login_thread
from claims_api.errors import ApiError
from claims_api.photos import service as photos
from claims_api.review import service as review
from claims_api.review.stats import reviewer_stats
from claims_api.web import filters, service, webhooks
from claims_api.web.heatmap import BadCam, heatmap_png
from claims_api.web.session import (
    LANG_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    WebUser,
    csrf_matches,
    end_session,
    load_user,
    new_csrf_token,
    start_session,
)
from claims_api.web.text import (
    code_label,
    customer_message,
    disabled_reason,
    error_text,
    locale_for,
    named,
    sentence,
    signal_cell,
    signal_details,
    translator,
)

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters.update(
    money=filters.money,
    when=filters.when,
    pct=filters.pct,
    fmt=filters.fmt,
    signal_value=filters.signal_value,
)
templates.env.globals.update(duration=filters.duration)
router = APIRouter(prefix="/web", include_in_schema=False)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def install(app: FastAPI) -> None:
    """Adds the workbench to the app: the pages and the static files."""
    # the static files first: the pages end with a catch-all for unknown paths
    app.mount("/web/static", StaticFiles(directory=str(HERE / "static")), name="web_static")
    app.include_router(router)


# ---------------------------------------------------------------- request helpers


def _container(request: Request) -> Container:
    return request.app.state.container


def _locale(request: Request) -> str:
    return locale_for(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _current_user(request: Request) -> WebUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with _container(request).db.read_session() as session:
        return load_user(session, token)


def page_user(request: Request) -> WebUser:
    """A signed-in reviewer, or a redirect to the sign-in page."""
    user = _current_user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = f"/web/login?next={quote(target)}"
        raise HTTPException(303, "sign in", headers={"Location": login})
    return user


def api_user(request: Request) -> WebUser:
    user = _current_user(request)
    if user is None:
        raise ApiError(401, "unauthorized", "Sign in to the workbench first.")
    return user


async def form_data(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return {}
    try:
        form = await request.form(max_files=0, max_fields=50)
    except ClientDisconnect as exc:  # e.g. a release beacon cut off by a closing tab
        raise ApiError(400, "client_disconnected", "The request body did not arrive.") from exc
    return {k: v for k, v in form.items() if isinstance(v, str)}


PageUser = Annotated[WebUser, Depends(page_user)]
ApiUser = Annotated[WebUser, Depends(api_user)]
Form = Annotated[dict[str, str], Depends(form_data)]


def _require_csrf(request: Request, user: WebUser, form: dict[str, str]) -> None:
    sent = form.get("csrf") or request.headers.get("x-csrf-token")
    if not csrf_matches(user.csrf, sent):
        raise ApiError(403, "csrf", "The security token is missing or wrong; reload the page.")


def _render(
    request: Request, name: str, user: WebUser | None, status: int = 200, **context: Any
) -> Response:
    locale = _locale(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": translator(locale),
            "sentence": partial(sentence, locale),
            "error_text": partial(error_text, locale),
            "named": partial(named, locale),
            "label": partial(code_label, locale),
            "signal_details": partial(signal_details, locale),
            "signal_cell": partial(signal_cell, locale),
            "locale": locale,
            "user": user,
            **context,
        },
        status_code=status,
        headers=SECURITY_HEADERS,
    )
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/web/") and not target.startswith("//"):
        return target
    return "/web/queue"


def _after_lease(claim_id: str | None, notice: str) -> RedirectResponse:
    return _redirect(f"/web/claims/{claim_id}" if claim_id else f"/web/queue?notice={notice}")


# ---------------------------------------------------------------- sign-in


@router.get("")
@router.get("/")
def home() -> RedirectResponse:
    return _redirect("/web/queue")


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    token = new_csrf_token()
    response = _render(request, "login.html", None, login_csrf=token, next=_safe_next(next))
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/web/login",
        max_age=3600,
    )
    return response


@router.post("/login")
async def login(request: Request, form: Form) -> Response:
    return await in_login_thread(request, partial(_login, request, form))


def _login(request: Request, form: dict[str, str]) -> Response:
    container = _container(request)
    target = _safe_next(form.get("next"))
    if not csrf_matches(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _login_failed(request, "login.expired", target, 403)
    username, password = form.get("username", "")[:100], form.get("password", "")[:200]
    ttl = container.settings.reviewer_token_ttl_seconds
    try:
        reviewer = (
            auth.authenticate_reviewer(
                container.db,
                username,
                password,
                address=client_address(request),
                limits=LoginLimits.from_settings(container.settings),
            )
            if username
            else None
        )
    except auth.LoginRefused as exc:
        response = _login_failed(request, "login.locked", target, 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    token = None
    if reviewer is not None:
        with container.db.session() as session:
            token = start_session(session, reviewer.id, ttl)
    if token is None:
        return _login_failed(request, "login.failed", target, 401)
    response = _redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=ttl,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/web",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/web/login")
    return response


def _login_failed(request: Request, message: str, target: str, status: int) -> Response:
    token = new_csrf_token()
    response = _render(
        request, "login.html", None, status, login_csrf=token, next=target, error=message
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/web/login"
    )
    return response


@router.post("/logout")
def logout(request: Request, user: PageUser, form: Form) -> Response:
    _require_csrf(request, user, form)
    with _container(request).db.session() as session:
        end_session(session, request.cookies.get(SESSION_COOKIE))
    response = _redirect("/web/login")
    response.delete_cookie(SESSION_COOKIE, path="/web")
    return response


@router.get("/lang")
def switch_language(to: str = "en", back: str | None = None) -> RedirectResponse:
    response = _redirect(_safe_next(back))
    response.set_cookie(
        LANG_COOKIE, "zh" if to == "zh" else "en", max_age=365 * 86400, samesite="strict"
    )
    return response


# ---------------------------------------------------------------- queue and work mode


@router.get("/queue")
def queue_page(
    request: Request,
    user: PageUser,
    produce: str | None = None,
    reason: str | None = None,
    min_amount: str | None = None,
    max_amount: str | None = None,
    notice: str | None = None,
) -> Response:
    try:
        filters = service.QueueFilters(
            produce=(produce or "")[:50] or None,
            reason=(reason or "")[:60] or None,
            min_cents=service.yuan_to_cents(min_amount),
            max_cents=service.yuan_to_cents(max_amount),
        )
    except service.FormError as exc:
        return _render(request, "error.html", user, 422, code=exc.code)
    with _container(request).db.read_session() as session:
        view = service.queue_view(session, filters)
    return _render(
        request,
        "queue.html",
        user,
        view=view,
        filters=filters,
        raw={"min_amount": min_amount or "", "max_amount": max_amount or ""},
        notice=notice if notice in ("empty", "done") else None,
    )


@router.post("/next")
def next_claim(request: Request, user: PageUser, form: Form) -> Response:
    _require_csrf(request, user, form)
    container = _container(request)
    with container.db.session() as session:
        claim = review.lease_next(session, user.principal, container.settings.review_lease_seconds)
        claim_id = claim.id if claim else None
    return _after_lease(claim_id, "empty")


@router.get("/claims/{claim_id}")
def claim_page(request: Request, claim_id: str, user: PageUser) -> Response:
    return _claim_response(request, user, claim_id)


def _claim_response(
    request: Request, user: WebUser, claim_id: str, error: str | None = None, status: int = 200
) -> Response:
    locale = _locale(request)
    try:
        with _container(request).db.read_session() as session:
            view = service.claim_view(session, claim_id[:40], user.id, _container(request).policy)
    except ApiError:
        return _render(request, "error.html", user, 404, code="not_found")
    defaults = {
        "reject": customer_message("not_spoiled", locale),
        "request_photos": customer_message("more_photos_needed", locale),
    }
    return _render(
        request,
        "claim.html",
        user,
        status,
        view=view,
        error=error,
        defaults=defaults,
        reasons={a: service.reason_options(a) for a in service.ACTIONS},
        labels=service.LABELS,
        customer_messages={
            code: customer_message(code, locale)
            for a in service.ACTIONS
            for code in service.reason_options(a)
        },
    )


LeaseStep = Callable[[Session, Container], Claim | None]


def _then_next(
    request: Request,
    user: WebUser,
    claim_id: str,
    form: dict[str, str],
    step: LeaseStep,
    notice: str,
) -> Response:
    """A decision or a skip: ``step`` acts on the claim and leases the next one in one
    transaction; then the next claim's page, or the queue with ``notice`` when none is free."""
    _require_csrf(request, user, form)
    container = _container(request)
    try:
        with container.db.session() as session:
            nxt = step(session, container)
            next_id = nxt.id if nxt else None
    except ApiError as exc:
        return _claim_response(request, user, claim_id, error=exc.code, status=exc.status)
    return _after_lease(next_id, notice)


@router.post("/claims/{claim_id}/decision")
def post_decision(request: Request, claim_id: str, user: PageUser, form: Form) -> Response:
    locale = _locale(request)

    def step(session: Session, container: Container) -> Claim | None:
        return service.decide_and_next(
            session,
            user.principal,
            claim_id,
            form,
            locale,
            container.settings.review_lease_seconds,
            container.policy,
        )

    return _then_next(request, user, claim_id, form, step, "done")


@router.post("/claims/{claim_id}/skip")
def skip(request: Request, claim_id: str, user: PageUser, form: Form) -> Response:
    def step(session: Session, container: Container) -> Claim | None:
        return service.skip_and_next(
            session, user.principal, claim_id, container.settings.review_lease_seconds
        )

    return _then_next(request, user, claim_id, form, step, "empty")


@router.post("/claims/{claim_id}/heartbeat")
def heartbeat(request: Request, claim_id: str, user: ApiUser, form: Form) -> JSONResponse:
    _require_csrf(request, user, form)
    container = _container(request)
    with container.db.session() as session:
        claim = review.heartbeat(
            session, user.principal, claim_id, container.settings.review_lease_seconds
        )
        expires = claim.lease_expires_at
    return JSONResponse({"claim_id": claim_id, "lease_expires_at": expires.isoformat()})


@router.post("/claims/{claim_id}/release")
def release(request: Request, claim_id: str, user: ApiUser, form: Form) -> Response:
    _require_csrf(request, user, form)
    with _container(request).db.session() as session:
        review.release(session, user.principal, claim_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- photos


@router.post("/photos/{photo_id}/label")
def label(request: Request, photo_id: str, user: ApiUser, form: Form) -> JSONResponse:
    _require_csrf(request, user, form)
    condition, produce = service.label_from_form(form)
    with _container(request).db.session() as session:
        review.label_photo(session, user.principal, photo_id, condition, produce)
    return JSONResponse({"photo_id": photo_id, "condition": condition, "produce": produce})


# why a reviewer opened a photo, as the view log records it: the claim's own photos, or a
# stored photo (often another customer's) that one of them repeats
VIEW_PURPOSES = {"review": "review", "duplicate": "review_duplicate"}


@router.get("/photos/{photo_id}")
def photo_content(
    request: Request, photo_id: str, user: ApiUser, purpose: str = "review"
) -> Response:
    """The stored copy, for staff only; every view is logged (photos hold personal data)."""
    container = _container(request)
    with container.db.session() as session:
        photo = photos.get_visible_photo(session, user.principal, photo_id)
        photos.log_view(session, user.principal, photo, VIEW_PURPOSES.get(purpose, "review"))
        key = photo.storage_key
    return Response(
        container.storage.get(key),
        media_type="image/jpeg",
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/photos/{photo_id}/heatmap.png")
def photo_heatmap(request: Request, photo_id: str, user: ApiUser) -> Response:
    with _container(request).db.session() as session:
        photo = photos.get_visible_photo(session, user.principal, photo_id)
        cam = (photo.scores or {}).get("cam")
        if not cam:
            raise ApiError(404, "no_heatmap", "The model left no heat map for this photo.")
        try:
            data = heatmap_png(cam, photo.width, photo.height)
        except BadCam as exc:
            raise ApiError(404, "no_heatmap", str(exc)) from exc
        photos.log_view(session, user.principal, photo, "review", with_heatmap=True)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, no-store"})


# ---------------------------------------------------------------- admin


@router.get("/admin")
def admin_page(request: Request, user: PageUser, days: int = 7) -> Response:
    if not user.is_admin:
        return _render(request, "error.html", user, 403, code="forbidden")
    days = min(max(days, 1), 365)
    with _container(request).db.read_session() as session:
        stats = reviewer_stats(session, days)
    return _render(request, "admin.html", user, stats=stats, days=days)


# ---------------------------------------------------------------- admin: webhooks


def _webhooks_url(endpoint_id: str, status: str | None = None, **notice: object) -> str:
    query = {"endpoint": endpoint_id, "status": status or "", **notice}
    return "/web/admin/webhooks?" + urlencode({k: v for k, v in query.items() if v != ""})


@router.get("/admin/webhooks")
def webhooks_page(
    request: Request,
    user: PageUser,
    endpoint: str | None = None,
    status: str | None = None,
    notice: str | None = None,
    count: int = 0,
) -> Response:
    if not user.is_admin:
        return _render(request, "error.html", user, 403, code="forbidden")
    with _container(request).db.read_session() as session:
        view = webhooks.webhooks_view(session, (endpoint or "")[:40] or None, status)
        if endpoint and view.selected is None:
            return _render(request, "error.html", user, 404, code="webhook_not_found")
        return _render(
            request,
            "webhooks.html",
            user,
            view=view,
            can_retry=webhooks.can_retry,
            reason_text=partial(disabled_reason, _locale(request)),
            since=webhooks.default_since(),
            notice=notice if notice in ("retried", "recovered") else None,
            count=count,
        )


def _admin_form(request: Request, user: WebUser, form: dict[str, str]) -> Response | None:
    """The 403 page for a reviewer who is not an admin; a 403 for a missing CSRF token."""
    if not user.is_admin:
        return _render(request, "error.html", user, 403, code="forbidden")
    _require_csrf(request, user, form)
    return None


@router.post("/admin/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry")
def retry_delivery(
    request: Request, endpoint_id: str, delivery_id: str, user: PageUser, form: Form
) -> Response:
    if refused := _admin_form(request, user, form):
        return refused
    try:
        with _container(request).db.session() as session:
            webhooks.retry(session, user.principal, endpoint_id, delivery_id)
    except ApiError as exc:
        return _render(request, "error.html", user, exc.status, code=exc.code)
    return _redirect(_webhooks_url(endpoint_id, form.get("status"), notice="retried"))


@router.post("/admin/webhooks/{endpoint_id}/recover")
def recover_deliveries(request: Request, endpoint_id: str, user: PageUser, form: Form) -> Response:
    if refused := _admin_form(request, user, form):
        return refused
    try:
        with _container(request).db.session() as session:
            count = webhooks.recover(session, user.principal, endpoint_id, form.get("since"))
    except webhooks.BadSince:
        return _render(request, "error.html", user, 422, code="bad_since")
    except ApiError as exc:
        return _render(request, "error.html", user, exc.status, code=exc.code)
    return _redirect(
        _webhooks_url(endpoint_id, form.get("status"), notice="recovered", count=count)
    )


# ---------------------------------------------------------------- unknown pages (keep last)


@router.get("/{unknown:path}", include_in_schema=False)
def unknown_page(request: Request) -> Response:
    """A mistyped or stale workbench address gets the workbench's page, not the API's JSON."""
    return _render(request, "error.html", None, 404, code="page_not_found")
