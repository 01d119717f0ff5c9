from __future__ import annotations

from fastapi import APIRouter, Path

from claims_api.auth import service
from claims_api.auth.principal import Principal
from claims_api.auth.schemas import LoginIn, ReviewerTokenOut, TokenOut
from claims_api.deps import ContainerDep, DbSession, ShopPrincipal
from claims_api.errors import ERROR_RESPONSES, ApiError
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


@router.post("/v1/auth/login", response_model=ReviewerTokenOut, summary="Reviewer login")
def login(body: LoginIn, container: ContainerDep) -> ReviewerTokenOut:
    reviewer = service.authenticate_reviewer(container.db, body.username, body.password)
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
