from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Path, Request

from claims_api.auth import service
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
from claims_api.errors import ERROR_RESPONSES, ApiError, error_body
from claims_api.orders.service import ensure_customer

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


@router.post(
    "/v1/customers/{customer_id}/tokens",
    response_model=TokenOut,
    status_code=201,
    summary="Mint a short-lived customer token (shop backend)",
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
    responses={
        429: {
            "description": "Too many failed logins for this username or client address; "
            "the Retry-After header says when to try again.",
            "content": {
                "application/json": {
                    "example": error_body(
                        "too_many_login_attempts", "Too many failed logins; try again in 840 s."
                    )
                }
            },
        }
    },
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
        raise too_many_attempts(exc.retry_after) from exc
    if reviewer is None:
        raise ApiError(401, "invalid_credentials", "Wrong username or password.")
    token, expires = service.issue_token(
        container.secret,
        service.reviewer_principal(reviewer),
        container.settings.reviewer_token_ttl_seconds,
    )
    return ReviewerTokenOut(
        token=token, expires_at=expires, reviewer_id=reviewer.id, role=reviewer.role
    )


def too_many_attempts(retry_after: int) -> ApiError:
    return ApiError(
        429,
        "too_many_login_attempts",
        f"Too many failed logins; try again in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )
