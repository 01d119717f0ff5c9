from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Path, Request

from claims_api.auth import service
from claims_api.auth.errors import InvalidCredentials, TooManyLoginAttempts
from claims_api.auth.principal import Principal
from claims_api.auth.schemas import LoginIn, ReviewerTokenOut, TokenOut
from claims_api.auth.throttle import LoginLimits
from claims_api.container import Container
from claims_api.deps import (
    ContainerDep,
    DbSession,
    ShopPrincipal,
    client_address,
    in_login_thread,
)
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, document
from claims_api.orders.service import ensure_customer

router = APIRouter(tags=["auth"])


@router.post(
    "/v1/customers/{customer_id}/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="Mint a short-lived customer token (shop backend)",
    responses=document(AUTHENTICATED, INPUT, WRITES),
)
def mint_customer_token(
    session: DbSession,
    shop: ShopPrincipal,
    container: ContainerDep,
    customer_id: str = Path(min_length=1, max_length=100),
) -> TokenOut:
    ensure_customer(session, customer_id)
    token, expires = service.issue_token(
        container.secret,
        Principal(kind="customer", id=customer_id),
        container.settings.customer_token_ttl_seconds,
    )
    return TokenOut(token=token, expires_at=expires)


@router.post(
    "/v1/auth/login",
    response_model=ReviewerTokenOut,
    summary="Reviewer login",
    responses=document(JSON_BODY, WRITES, InvalidCredentials, TooManyLoginAttempts),
)
async def login(body: LoginIn, request: Request, container: ContainerDep) -> ReviewerTokenOut:
    return await in_login_thread(request, partial(_login, body, request, container))


def _login(body: LoginIn, request: Request, container: Container) -> ReviewerTokenOut:
    try:
        reviewer = service.authenticate_reviewer(
            container.db,
            body.username,
            body.password,
            address=client_address(request),
            limits=LoginLimits.from_settings(container.settings),
        )
    except service.LoginRefused as exc:
        raise TooManyLoginAttempts.retry_in(exc.retry_after) from exc
    if reviewer is None:
        raise InvalidCredentials()
    token, expires = service.issue_token(
        container.secret,
        service.reviewer_principal(reviewer),
        container.settings.reviewer_token_ttl_seconds,
    )
    return ReviewerTokenOut(
        token=token, expires_at=expires, reviewer_id=reviewer.id, role=reviewer.role
    )
