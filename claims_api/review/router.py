from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from claims_api.claims.errors import ClaimNotFound, InvalidTransition
from claims_api.claims.service import claim_out
from claims_api.compensation.errors import PAYOUT
from claims_api.deps import ContainerDep, DbSession, ReadSession, RequestLocale, ReviewerPrincipal
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, document
from claims_api.photos.errors import PhotoNotFound
from claims_api.review import service
from claims_api.review.errors import (
    AmountTooHigh,
    AppealNeedsAnotherReviewer,
    LeaseNotHeld,
    MessageRequired,
    NotInReview,
    UnknownReasonCode,
)
from claims_api.review.schemas import DecisionIn, Lease, PhotoLabelIn, QueuePage

MAX_CENTS = 1_000_000_000_000
router = APIRouter(prefix="/v1/review", tags=["review"])
LEASED = (AUTHENTICATED, WRITES, ClaimNotFound, NotInReview, LeaseNotHeld)  # a leased claim's


@router.get(
    "/queue",
    response_model=QueuePage,
    summary="Claims waiting for a person, most urgent first",
    responses=document(AUTHENTICATED, INPUT),
)
def get_queue(
    session: ReadSession,
    reviewer: ReviewerPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    produce: str | None = None,
    reason: str | None = None,
    min_cents: Annotated[int | None, Query(ge=0, le=MAX_CENTS)] = None,
    max_cents: Annotated[int | None, Query(ge=0, le=MAX_CENTS)] = None,
) -> QueuePage:
    return service.queue(session, limit, offset, produce, reason, min_cents, max_cents)


@router.post(
    "/lease",
    response_model=Lease,
    responses={204: {"description": "Nothing to review"}, **document(AUTHENTICATED, WRITES)},
    summary="Lease the most urgent free claim",
)
def lease(
    session: DbSession, reviewer: ReviewerPrincipal, container: ContainerDep, locale: RequestLocale
) -> Lease | Response:
    claim = service.lease_next(session, reviewer, container.settings.review_lease_seconds)
    if claim is None:
        return Response(status_code=204)
    return Lease(
        claim_id=claim.id,
        lease_expires_at=claim.lease_expires_at,
        claim=claim_out(session, claim, container.policy, locale).model_dump(mode="json"),
    )


@router.post(
    "/claims/{claim_id}/heartbeat",
    response_model=Lease,
    summary="Keep a lease alive",
    responses=document(LEASED, INPUT),
)
def heartbeat(
    claim_id: str,
    session: DbSession,
    reviewer: ReviewerPrincipal,
    container: ContainerDep,
    locale: RequestLocale,
) -> Lease:
    claim = service.heartbeat(session, reviewer, claim_id, container.settings.review_lease_seconds)
    return Lease(
        claim_id=claim.id,
        lease_expires_at=claim.lease_expires_at,
        claim=claim_out(session, claim, container.policy, locale).model_dump(mode="json"),
    )


@router.post(
    "/claims/{claim_id}/release",
    status_code=204,
    summary="Give a leased claim back",
    responses=document(LEASED, INPUT),
)
def release(claim_id: str, session: DbSession, reviewer: ReviewerPrincipal) -> Response:
    service.release(session, reviewer, claim_id)
    return Response(status_code=204)


@router.post(
    "/claims/{claim_id}/decision",
    summary="Decide a leased claim",
    responses=document(
        LEASED,
        JSON_BODY,
        AppealNeedsAnotherReviewer,
        AmountTooHigh,
        MessageRequired,
        UnknownReasonCode,
        InvalidTransition,
        PAYOUT,
    ),
)
def decide_claim(
    claim_id: str,
    body: DecisionIn,
    session: DbSession,
    reviewer: ReviewerPrincipal,
    container: ContainerDep,
    locale: RequestLocale,
) -> dict:
    """The reason code must be one of the catalogue's for the outcome (422
    ``unknown_reason_code`` lists them); a rejection and a request for photos need a
    message, which reaches the customer verbatim."""
    claim = service.record_decision(session, reviewer, claim_id, body, container.policy)
    return claim_out(session, claim, container.policy, locale).model_dump(mode="json")


@router.put(
    "/photos/{photo_id}/label",
    status_code=204,
    summary="Label a photo for retraining",
    responses=document(AUTHENTICATED, JSON_BODY, WRITES, PhotoNotFound),
)
def label_photo(
    photo_id: str, body: PhotoLabelIn, session: DbSession, reviewer: ReviewerPrincipal
) -> Response:
    service.label_photo(session, reviewer, photo_id, body.condition, body.produce)
    return Response(status_code=204)
