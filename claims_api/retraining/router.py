"""Audit reviews of auto-approved claims: a queue apart from the claims waiting for a
person, whose verdicts are labels and never change a claim or its payout."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from claims_api.claims.service import claim_out
from claims_api.deps import ContainerDep, DbSession, ReadSession, RequestLocale, ReviewerPrincipal
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, document
from claims_api.retraining import audit
from claims_api.retraining.errors import AuditAlreadyDone, AuditLeaseNotHeld, AuditNotFound
from claims_api.retraining.schemas import (
    AuditLease,
    AuditPage,
    AuditSummary,
    AuditVerdictIn,
    AuditVerdictOut,
)

router = APIRouter(prefix="/v1/review/audit", tags=["review"])


@router.get(
    "",
    response_model=AuditPage,
    summary="Auto-approved, paid claims waiting for an audit review, oldest first",
    responses=document(AUTHENTICATED, INPUT),
)
def get_audit_queue(
    session: ReadSession,
    reviewer: ReviewerPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AuditPage:
    return audit.queue(session, limit, offset)


@router.get(
    "/summary",
    response_model=AuditSummary,
    summary="The auto-approve precision audits measured, per produce kind, with its bound",
    responses=document(AUTHENTICATED),
)
def get_audit_summary(session: ReadSession, reviewer: ReviewerPrincipal) -> AuditSummary:
    return audit.summary(session)


@router.post(
    "/lease",
    response_model=AuditLease,
    responses={204: {"description": "Nothing to audit"}, **document(AUTHENTICATED, WRITES)},
    summary="Lease the oldest free audit review",
)
def lease_audit(
    session: DbSession, reviewer: ReviewerPrincipal, container: ContainerDep, locale: RequestLocale
) -> AuditLease | Response:
    claim = audit.lease_next(session, reviewer, container.settings.review_lease_seconds)
    if claim is None:
        return Response(status_code=204)
    return AuditLease(
        claim_id=claim.id,
        lease_expires_at=audit.lease_expiry(claim),
        claim=claim_out(session, claim, container.policy, locale).model_dump(mode="json"),
    )


@router.post(
    "/{claim_id}/verdict",
    response_model=AuditVerdictOut,
    summary="Label a leased audit review (the claim stays paid)",
    responses=document(
        AUTHENTICATED, JSON_BODY, WRITES, AuditNotFound, AuditLeaseNotHeld, AuditAlreadyDone
    ),
)
def audit_verdict(
    claim_id: str, body: AuditVerdictIn, session: DbSession, reviewer: ReviewerPrincipal
) -> AuditVerdictOut:
    return AuditVerdictOut(**audit.record_verdict(session, reviewer, claim_id, body))
