from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from claims_api.auth.principal import Principal
from claims_api.db import utcnow
from claims_api.deps import DbSession, ReadSession, current_principal
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, Forbidden, document
from claims_api.quality import service
from claims_api.quality.errors import IncidentNotFound, IncidentTransitionNotAllowed
from claims_api.quality.schemas import IncidentOut, IncidentStatus, RateOut, ResolveIn

router = APIRouter(prefix="/v1/quality", tags=["quality"])
IncidentId = Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")


def _staff(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.kind not in ("shop", "admin", "reviewer"):
        raise Forbidden("Quality data is for the shop and reviewers.")
    return principal


Staff = Annotated[Principal, Depends(_staff)]


@router.get(
    "/rates",
    response_model=list[RateOut],
    summary="Damage rates: claimed lines over delivered lines, per group",
    responses=document(AUTHENTICATED, INPUT),
)
def rates(
    session: ReadSession,
    _: Staff,
    by: Literal["sku", "batch", "supplier", "pickup_point", "category"] = "sku",
    days: Annotated[int, Query(ge=1, le=366)] = 30,
    sku: Annotated[str | None, Query(max_length=100)] = None,
) -> list[RateOut]:
    until = utcnow()
    found = service.damage_rates(session, by, until - timedelta(days=days), until, sku)
    return [
        RateOut(
            key=r.key, delivered_lines=r.delivered_lines, claimed_lines=r.claimed_lines, rate=r.rate
        )
        for r in found
    ]


@router.get(
    "/incidents",
    response_model=list[IncidentOut],
    summary="Quality incidents, newest first",
    responses=document(AUTHENTICATED, INPUT),
)
def incidents(
    session: ReadSession,
    _: Staff,
    status: IncidentStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[IncidentOut]:
    return [IncidentOut.model_validate(i) for i in service.list_incidents(session, status, limit)]


@router.post(
    "/incidents/{incident_id}/acknowledge",
    response_model=IncidentOut,
    summary="Acknowledge an open incident (someone is looking at it)",
    responses=document(
        AUTHENTICATED, INPUT, WRITES, IncidentNotFound, IncidentTransitionNotAllowed
    ),
)
def acknowledge(session: DbSession, actor: Staff, incident_id: str = IncidentId) -> IncidentOut:
    return IncidentOut.model_validate(service.move(session, actor, incident_id, "acknowledged"))


@router.post(
    "/incidents/{incident_id}/resolve",
    response_model=IncidentOut,
    summary="Resolve an incident, with what was done",
    responses=document(
        AUTHENTICATED, JSON_BODY, WRITES, IncidentNotFound, IncidentTransitionNotAllowed
    ),
)
def resolve(
    body: ResolveIn, session: DbSession, actor: Staff, incident_id: str = IncidentId
) -> IncidentOut:
    incident = service.move(session, actor, incident_id, "resolved", body.resolution, body.note)
    return IncidentOut.model_validate(incident)
