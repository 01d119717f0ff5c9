"""FastAPI dependencies: the container, database sessions and who is calling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Header, Request
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from claims_api.auth import service as auth
from claims_api.auth.principal import Principal
from claims_api.container import Container
from claims_api.errors import Forbidden, InvalidToken, Unauthorized
from claims_api.i18n import SUPPORTED
from claims_api.observability import note_principal

T = TypeVar("T")

# The dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency
# in the threadpool, and each such hop hands the GIL to a worker thread and back, which under
# load (request threads decoding photos) adds milliseconds of waiting per hop to every request.


async def get_container(request: Request) -> Container:
    return request.app.state.container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_db(container: ContainerDep) -> Iterator[Session]:
    with container.db.session() as session:
        yield session


def get_read_db(container: ContainerDep) -> Iterator[Session]:
    with container.db.read_session() as session:
        yield session


# scope="function": the transaction commits (or rolls back) when the route returns, BEFORE the
# response is sent. FastAPI's default ("request") ends a yield dependency only after the
# response has gone out, so a client could read "paid" before the ledger was committed, and its
# next request could miss what the previous one wrote (or a failed commit be reported as 201).
DbSession = Annotated[Session, Depends(get_db, scope="function")]
ReadSession = Annotated[Session, Depends(get_read_db, scope="function")]


# Threads that logins may hold at once. A login waits for a slot to check its password
# (auth.service), longer with every login queued before it; waiting in the threadpool, a flood
# of logins took every thread and stalled every other sync route. Logins beyond these wait
# on the event loop instead, holding no thread.
LOGIN_THREADS = 4


async def in_login_thread(request: Request, function: Callable[[], T]) -> T:
    """Run a login's blocking work in the threadpool, at most LOGIN_THREADS at once."""
    limiter = getattr(request.app.state, "login_limiter", None)
    if limiter is None:  # made on the app's event loop; no await between the check and this
        limiter = request.app.state.login_limiter = anyio.CapacityLimiter(LOGIN_THREADS)
    return await anyio.to_thread.run_sync(function, limiter=limiter)


def client_address(request: Request) -> str | None:
    """The client's address; uvicorn's proxy-headers middleware puts the forwarded one here
    for proxies listed in FORWARDED_ALLOW_IPS."""
    return request.client.host if request.client else None


def _principal_for_api_key(container: Container, key: str) -> Principal | None:
    with container.db.read_session() as session:
        return auth.principal_for_api_key(session, key)


class BearerHeader(HTTPBearer):
    """Declares the HTTP bearer scheme in the OpenAPI document (so each route shows that it
    needs a token) and hands over the raw Authorization header: the checks below answer with
    this API's own error codes, which HTTPBearer's would not."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("authorization")


bearer_scheme = BearerHeader(
    scheme_name="bearerAuth",
    description="A shop or admin API key (`fck_...`), or a customer or reviewer token.",
    auto_error=False,
)


async def current_principal(
    container: ContainerDep, authorization: Annotated[str | None, Depends(bearer_scheme)]
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthorized()
    token = authorization[7:].strip()
    if token.startswith("fck_"):  # a database lookup: off the event loop
        principal = await run_in_threadpool(_principal_for_api_key, container, token)
    else:  # a signed token: checking its signature takes microseconds
        principal = auth.principal_for_token(container.secret, token)
    if principal is None:
        raise InvalidToken()
    note_principal(principal.kind)  # for the request's log line
    return principal


def _require(*kinds: str):
    async def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.kind not in kinds:
            raise Forbidden(f"This needs a {' or '.join(kinds)} credential.")
        return principal

    return dependency


ShopPrincipal = Annotated[Principal, Depends(_require("shop", "admin"))]
AdminPrincipal = Annotated[Principal, Depends(_require("admin"))]
CustomerPrincipal = Annotated[Principal, Depends(_require("customer"))]
ReviewerPrincipal = Annotated[Principal, Depends(_require("reviewer"))]
OrderReader = Annotated[Principal, Depends(_require("shop", "admin", "customer"))]
CustomerOrStaff = Annotated[Principal, Depends(_require("customer", "reviewer", "admin"))]
AnyPrincipal = Annotated[Principal, Depends(current_principal)]


async def requested_locale(
    accept_language: Annotated[str | None, Header(alias="Accept-Language")] = None,
) -> str | None:
    """The first supported language the caller asked for, or None: each view then uses its
    own default (Chinese for customers, English for staff)."""
    for part in (accept_language or "").split(","):
        language = part.split(";")[0].strip().lower().split("-")[0]
        if language in SUPPORTED:
            return language
    return None


RequestLocale = Annotated[str | None, Depends(requested_locale)]
