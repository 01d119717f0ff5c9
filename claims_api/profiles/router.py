from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from claims_api.auth.principal import Principal
from claims_api.deps import ContainerDep, DbSession, ReadSession, ShopPrincipal, current_principal
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, Forbidden, document
from claims_api.profiles import privacy, service
from claims_api.profiles.errors import CustomerNotFound
from claims_api.profiles.models import SkuQualityAlert
from claims_api.profiles.schemas import ConsentIn, ErasureOut, ProfileOut, QualityAlertOut

router = APIRouter(tags=["customers"])


def _staff_or_shop(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.kind == "customer":
        raise Forbidden("Profiles are for the shop and reviewers.")
    return principal


@router.get(
    "/v1/customers/{customer_id}/profile",
    response_model=ProfileOut,
    summary="A customer's claim profile and tags (fed by claim events)",
    responses=document(AUTHENTICATED, INPUT, CustomerNotFound),
)
def get_profile(
    customer_id: str, session: ReadSession, _: Annotated[Principal, Depends(_staff_or_shop)]
) -> ProfileOut:
    profile, customer = service.profile_of(session, customer_id)
    out = ProfileOut.model_validate(profile)
    return out.model_copy(update={"training_consent": customer.training_consent})


@router.put(
    "/v1/customers/{customer_id}/consent",
    response_model=ProfileOut,
    summary="Record whether the customer's photos may be used to train models",
    responses=document(AUTHENTICATED, JSON_BODY, WRITES, CustomerNotFound),
)
def put_consent(
    customer_id: str, body: ConsentIn, session: DbSession, shop: ShopPrincipal
) -> ProfileOut:
    privacy.set_consent(session, shop, customer_id, body.training)
    return get_profile(customer_id, session, shop)


@router.delete(
    "/v1/customers/{customer_id}/personal-data",
    response_model=ErasureOut,
    summary="Erase a customer's photos, photo metadata and free text",
    responses=document(AUTHENTICATED, INPUT, WRITES, CustomerNotFound),
)
def erase(
    customer_id: str, session: DbSession, shop: ShopPrincipal, container: ContainerDep
) -> ErasureOut:
    report = privacy.erase_customer(session, container.storage, shop, customer_id)
    return ErasureOut(**report.__dict__)


@router.get(
    "/v1/quality/alerts",
    response_model=list[QualityAlertOut],
    summary="SKU quality alerts",
    responses=document(AUTHENTICATED, INPUT),
)
def quality_alerts(
    session: ReadSession, shop: ShopPrincipal, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[QualityAlertOut]:
    rows = session.scalars(select(SkuQualityAlert).order_by(SkuQualityAlert.id.desc()).limit(limit))
    return [QualityAlertOut.model_validate(r) for r in rows]
