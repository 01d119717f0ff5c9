from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from claims_api.claims import service
from claims_api.claims.errors import (
    AlreadyAppealed,
    ClaimAlreadyOpen,
    ClaimNotFound,
    ConcurrentUpdate,
    IdempotencyKeyRequired,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidIdempotencyKey,
    InvalidTransition,
    LineFullyCompensated,
    NotRejected,
    PhotosNotRequested,
    QuantityExceedsLine,
    TooManyPhotos,
)
from claims_api.claims.schemas import (
    AddPhotosIn,
    AppealIn,
    ClaimCreate,
    ClaimOut,
    ClaimPage,
    VerificationOut,
)
from claims_api.compensation.errors import PAYOUT
from claims_api.deps import ContainerDep, CustomerOrStaff, CustomerPrincipal, DbSession, ReadSession
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, Forbidden, document
from claims_api.orders.errors import OrderNotFound, UnknownLine
from claims_api.photos.errors import PhotoNotFound
from claims_api.photos.models import Photo

router = APIRouter(prefix="/v1/claims", tags=["claims"])

IDEMPOTENCY_KEY_MAX = 200
# Read as an optional header so that a missing one is answered 400 idempotency_key_required
# (not FastAPI's 422); the schema declares it required (IDEMPOTENCY_KEY_PARAMETER).
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", include_in_schema=False)]
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "A unique key per claim attempt; retries reuse it.",
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
}
# a claim is decided, and an auto-approved one paid, while it is submitted
SUBMIT_ERRORS = (
    IdempotencyKeyRequired,
    InvalidIdempotencyKey,
    IdempotencyKeyReused,
    ConcurrentUpdate,
    OrderNotFound,
    PhotoNotFound,
    UnknownLine,
    QuantityExceedsLine,
    TooManyPhotos,
    ClaimAlreadyOpen,
    LineFullyCompensated,
    InvalidTransition,
    PAYOUT,
)
CLAIM_WRITE = (AUTHENTICATED, JSON_BODY, WRITES, ClaimNotFound, InvalidTransition)


@router.post(
    "",
    status_code=201,
    response_model=ClaimOut,
    summary="Submit a claim; it is decided at once",
    responses=document(AUTHENTICATED, JSON_BODY, WRITES, SUBMIT_ERRORS),
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
def create_claim(
    body: ClaimCreate,
    session: DbSession,
    customer: CustomerPrincipal,
    container: ContainerDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Auto-approved claims come back ``paid``; all others ``in_review`` with the reasons.
    Retrying with the same ``Idempotency-Key`` and body returns the same claim; the same
    key with a different body is a 409."""
    if not idempotency_key:
        raise IdempotencyKeyRequired()
    if len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
        raise InvalidIdempotencyKey()
    status, body_out = service.submit_claim(
        session,
        customer,
        idempotency_key,
        body,
        container.policy,
        container.settings.max_photos_per_claim,
    )
    return JSONResponse(body_out, status_code=status)


@router.get(
    "",
    response_model=ClaimPage,
    summary="The caller's own claims, newest first",
    responses=document(AUTHENTICATED, INPUT, InvalidCursor),
)
def list_claims(
    session: ReadSession,
    customer: CustomerPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> ClaimPage:
    return service.list_claims(session, customer.id, limit, cursor)


@router.get(
    "/{claim_id}", response_model=ClaimOut, responses=document(AUTHENTICATED, INPUT, ClaimNotFound)
)
def get_claim(claim_id: str, session: ReadSession, viewer: CustomerOrStaff) -> ClaimOut:
    return service.claim_out(session, service.get_visible_claim(session, viewer, claim_id))


@router.get(
    "/{claim_id}/verification",
    response_model=VerificationOut,
    summary="The verification report: every signal with value, threshold and whether it fired",
    responses=document(AUTHENTICATED, INPUT, ClaimNotFound),
)
def get_verification(
    claim_id: str, session: ReadSession, viewer: CustomerOrStaff
) -> VerificationOut:
    if viewer.kind == "customer":
        raise Forbidden("The verification report is for reviewers.")
    claim = service.get_visible_claim(session, viewer, claim_id)
    photos = [session.get(Photo, pid) for pid in claim.photo_ids]
    return VerificationOut(
        signals=(claim.verification or {}).get("signals", []),
        photos=[
            {
                "photo_id": p.id,
                "quality": p.quality,
                "exif": p.exif,
                "scores": {k: v for k, v in (p.scores or {}).items() if k != "cam"},
                "scoring_error": p.scoring_error,
            }
            for p in photos
            if p is not None
        ],
    )


@router.post(
    "/{claim_id}/appeal",
    response_model=ClaimOut,
    summary="Appeal a rejection (once)",
    responses=document(CLAIM_WRITE, NotRejected, AlreadyAppealed),
)
def appeal_claim(
    claim_id: str,
    body: AppealIn,
    session: DbSession,
    customer: CustomerPrincipal,
    container: ContainerDep,
) -> ClaimOut:
    claim = service.appeal(session, customer, claim_id, body.message, container.policy)
    return service.claim_out(session, claim)


@router.post(
    "/{claim_id}/photos",
    response_model=ClaimOut,
    summary="Add the photos a reviewer asked for",
    responses=document(CLAIM_WRITE, PhotosNotRequested, PhotoNotFound, TooManyPhotos),
)
def add_photos(
    claim_id: str,
    body: AddPhotosIn,
    session: DbSession,
    customer: CustomerPrincipal,
    container: ContainerDep,
) -> ClaimOut:
    claim = service.add_photos(
        session,
        customer,
        claim_id,
        body.photo_ids,
        container.settings.max_photos_per_claim,
        container.policy,
    )
    return service.claim_out(session, claim)
