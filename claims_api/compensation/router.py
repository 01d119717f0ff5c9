from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from claims_api.auth.principal import Principal
from claims_api.claims.errors import ClaimNotFound, InvalidTransition
from claims_api.claims.service import claim_out, get_visible_claim
from claims_api.claims.states import Status, transition
from claims_api.compensation import service
from claims_api.compensation.errors import AlreadyReversed, NotPaid
from claims_api.deps import ContainerDep, DbSession, RequestLocale, current_principal
from claims_api.errors import AUTHENTICATED, JSON_BODY, WRITES, Forbidden, document

router = APIRouter(prefix="/v1/claims", tags=["compensation"])


class ReversalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=500)


def _admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.kind == "admin" or (principal.kind == "reviewer" and principal.admin):
        return principal
    raise Forbidden("Only an admin can reverse a payout.")


@router.post(
    "/{claim_id}/reversal",
    summary="Reverse a payout (admin correction, with a reason)",
    responses=document(
        AUTHENTICATED, JSON_BODY, WRITES, ClaimNotFound, NotPaid, AlreadyReversed, InvalidTransition
    ),
)
def reverse(
    claim_id: str,
    body: ReversalIn,
    session: DbSession,
    admin: Annotated[Principal, Depends(_admin)],
    container: ContainerDep,
    locale: RequestLocale,
) -> dict:
    claim = get_visible_claim(session, admin, claim_id, lock=True)
    if claim.status != Status.PAID:
        raise NotPaid(f"Only a paid claim can be reversed; this one is {claim.status}.")
    service.reverse_payout(session, claim, admin.id, body.reason)
    # The admin's words stay in the ledger posting and the audit row; events carry codes only.
    transition(
        session,
        claim,
        Status.REVERSED,
        admin,
        container.policy,
        reason="payout_reversed",
        note=body.reason,
    )
    return claim_out(session, claim, container.policy, locale).model_dump(mode="json")
