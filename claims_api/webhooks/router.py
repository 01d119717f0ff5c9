from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from claims_api.deps import AdminPrincipal, ContainerDep, DbSession, ReadSession
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, document
from claims_api.webhooks import service
from claims_api.webhooks.errors import (
    ENDPOINT_INPUT,
    DeliveryNotFound,
    NaiveDatetime,
    WebhookNotFound,
)
from claims_api.webhooks.models import WebhookEndpoint
from claims_api.webhooks.schemas import (
    DeliveryOut,
    EndpointCreated,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    RecoverIn,
    RecoverOut,
    SecretOut,
)

router = APIRouter(tags=["webhooks"])
READ = (AUTHENTICATED, INPUT, WebhookNotFound)
WRITE = (AUTHENTICATED, JSON_BODY, WRITES, WebhookNotFound)
DeliveryStatus = Literal["pending", "sending", "succeeded", "dead"]


def _out(session: Session, endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.of(endpoint, service.health(session, endpoint.id))


def _delivery_out(view: service.DeliveryView) -> DeliveryOut:
    return DeliveryOut.of(view.delivery, view.attempts)


@router.post(
    "/v1/webhooks",
    response_model=EndpointCreated,
    status_code=201,
    summary="Register a webhook endpoint; its signing secret is shown in this answer only",
    responses=document(AUTHENTICATED, JSON_BODY, WRITES, ENDPOINT_INPUT),
)
def create(
    body: EndpointIn, session: DbSession, admin: AdminPrincipal, container: ContainerDep
) -> EndpointCreated:
    endpoint = service.create_endpoint(
        session,
        admin,
        body.url,
        body.event_types,
        body.description,
        allow_private=container.settings.webhook_allow_private_addresses,
    )
    session.flush()
    return EndpointCreated(**_out(session, endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "/v1/webhooks",
    response_model=list[EndpointOut],
    summary="Webhook endpoints",
    responses=document(AUTHENTICATED),
)
def list_all(session: ReadSession, _: AdminPrincipal) -> list[EndpointOut]:
    return [_out(session, e) for e in service.list_endpoints(session)]


@router.get(
    "/v1/webhooks/{endpoint_id}",
    response_model=EndpointOut,
    summary="One endpoint",
    responses=document(READ),
)
def get(endpoint_id: str, session: ReadSession, _: AdminPrincipal) -> EndpointOut:
    return _out(session, service.get_endpoint(session, endpoint_id))


@router.patch(
    "/v1/webhooks/{endpoint_id}",
    response_model=EndpointOut,
    summary="Change an endpoint's URL, event types or description, or enable/disable it",
    responses=document(WRITE, ENDPOINT_INPUT),
)
def patch(
    endpoint_id: str,
    body: EndpointPatch,
    session: DbSession,
    admin: AdminPrincipal,
    container: ContainerDep,
) -> EndpointOut:
    endpoint = service.update_endpoint(
        session,
        admin,
        endpoint_id,
        body,
        allow_private=container.settings.webhook_allow_private_addresses,
    )
    session.flush()
    return _out(session, endpoint)


@router.delete(
    "/v1/webhooks/{endpoint_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an endpoint with its delivery log",
    responses=document(AUTHENTICATED, INPUT, WRITES, WebhookNotFound),
)
def delete(endpoint_id: str, session: DbSession, admin: AdminPrincipal) -> Response:
    service.delete_endpoint(session, admin, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/{endpoint_id}/rotate-secret",
    response_model=SecretOut,
    summary="New signing secret; the old one keeps signing beside it for 24 hours",
    responses=document(AUTHENTICATED, INPUT, WRITES, WebhookNotFound),
)
def rotate_secret(endpoint_id: str, session: DbSession, admin: AdminPrincipal) -> SecretOut:
    endpoint = service.rotate_secret(session, admin, endpoint_id)
    assert endpoint.previous_secret_expires_at is not None
    return SecretOut(
        secret=endpoint.secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.get(
    "/v1/webhooks/{endpoint_id}/deliveries",
    response_model=list[DeliveryOut],
    summary="An endpoint's deliveries, newest first, with their attempts",
    responses=document(READ),
)
def deliveries(
    endpoint_id: str,
    session: ReadSession,
    _: AdminPrincipal,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[DeliveryOut]:
    return [_delivery_out(v) for v in service.list_deliveries(session, endpoint_id, status, limit)]


@router.post(
    "/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
    response_model=DeliveryOut,
    status_code=202,
    summary="Send one delivery again (the same event document; nothing is re-run)",
    responses=document(AUTHENTICATED, INPUT, WRITES, WebhookNotFound, DeliveryNotFound),
)
def retry(
    endpoint_id: str, delivery_id: str, session: DbSession, admin: AdminPrincipal
) -> DeliveryOut:
    return _delivery_out(service.retry_delivery(session, admin, endpoint_id, delivery_id))


@router.post(
    "/v1/webhooks/{endpoint_id}/recover",
    response_model=RecoverOut,
    status_code=202,
    summary="Send again every failed or dead delivery since a time, in each claim's order",
    responses=document(WRITE, NaiveDatetime),
)
def recover(
    endpoint_id: str, body: RecoverIn, session: DbSession, admin: AdminPrincipal
) -> RecoverOut:
    return RecoverOut(requeued=service.recover(session, admin, endpoint_id, body.since))
