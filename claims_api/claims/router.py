from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse

from claims_api.claims import service
from claims_api.claims.errors import (
    AlreadyAppealed,
    AppealWindowClosed,
    ClaimAlreadyOpen,
    ClaimNotFound,
    ClaimRejectedAppealInstead,
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
    CustomerClaimOut,
    VerificationOut,
)
from claims_api.claims.states import Status
from claims_api.compensation.errors import PAYOUT
from claims_api.deps import (
    AnyPrincipal,
    ContainerDep,
    CustomerPrincipal,
    DbSession,
    ReadSession,
    RequestLocale,
)
from claims_api.errors import AUTHENTICATED, INPUT, JSON_BODY, WRITES, Forbidden, document
from claims_api.limits.dependencies import ClaimCreationAllowed
from claims_api.limits.errors import LIMITS
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
    ClaimRejectedAppealInstead,
    LineFullyCompensated,
    InvalidTransition,
    PAYOUT,
)
CLAIM_WRITE = (AUTHENTICATED, JSON_BODY, WRITES, ClaimNotFound, InvalidTransition)


def _readers(principal: AnyPrincipal) -> AnyPrincipal:
    """Claims are read by their customer, the shop backend (its customer service) and staff."""
    if principal.kind not in ("customer", "shop", "admin", "reviewer"):
        raise Forbidden("This credential cannot read claims.")
    return principal


Reader = Annotated[AnyPrincipal, Depends(_readers)]


@router.post(
    "",
    status_code=201,
    response_model=CustomerClaimOut,
    summary="Submit a claim; it is decided at once",
    responses=document(AUTHENTICATED, JSON_BODY, WRITES, SUBMIT_ERRORS, LIMITS),
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
def create_claim(
    _allowed: ClaimCreationAllowed,  # first: its own transaction ends before `session` begins
    body: ClaimCreate,
    session: DbSession,
    customer: CustomerPrincipal,
    container: ContainerDep,
    locale: RequestLocale,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Auto-approved claims come back ``paid``; all others ``in_review``, with what the
    customer is told in ``outcome`` (in the language of ``Accept-Language``). Retrying with
    the same ``Idempotency-Key`` and body returns the same answer; the same key with a
    different body is a 409. A claim on a line whose earlier claim a person rejected is
    a 409 ``claim_rejected_appeal_instead`` while that rejection can be appealed."""
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
        locale,
    )
    return JSONResponse(body_out, status_code=status)


@router.get(
    "",
    response_model=ClaimPage,
    summary="Claims, newest first: a customer's own, or any for the shop and staff",
    responses=document(AUTHENTICATED, INPUT, InvalidCursor),
)
def list_claims(
    session: ReadSession,
    viewer: Reader,
    container: ContainerDep,
    locale: RequestLocale,
    customer_id: Annotated[str | None, Query(max_length=100)] = None,
    order_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> ClaimPage:
    """The shop's customer service can look a claim up by customer, order or status (the
    full view); a customer's token lists only that customer's claims (their view)."""
    claim_filter = service.ClaimFilter(customer_id, order_id, status)
    return service.list_claims(
        session, viewer, claim_filter, limit, cursor, container.policy, locale
    )


@router.get(
    "/{claim_id}",
    response_model=ClaimOut | CustomerClaimOut,
    responses=document(AUTHENTICATED, INPUT, ClaimNotFound),
)
def get_claim(
    claim_id: str,
    session: ReadSession,
    viewer: Reader,
    container: ContainerDep,
    locale: RequestLocale,
) -> ClaimOut | CustomerClaimOut:
    """A customer gets their view (the outcome in words, no internals); the shop and staff
    get the full view."""
    claim = service.get_visible_claim(session, viewer, claim_id)
    return service.claim_view(session, claim, viewer, container.policy, locale)


@router.get(
    "/{claim_id}/verification",
    response_model=VerificationOut,
    summary="The verification report: every signal with value, threshold and whether it fired",
    responses=document(AUTHENTICATED, INPUT, ClaimNotFound),
)
def get_verification(claim_id: str, session: ReadSession, viewer: Reader) -> VerificationOut:
    if viewer.kind not in ("reviewer", "admin"):
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
    response_model=CustomerClaimOut,
    summary="Appeal a rejection (once, within the appeal window)",
    responses=document(CLAIM_WRITE, NotRejected, AlreadyAppealed, AppealWindowClosed),
)
def appeal_claim(
    claim_id: str,
    body: AppealIn,
    session: DbSession,
    customer: CustomerPrincipal,
    container: ContainerDep,
    locale: RequestLocale,
) -> CustomerClaimOut:
    claim = service.appeal(session, customer, claim_id, body.message, container.policy)
    return service.customer_claim_out(session, claim, container.policy, locale)


@router.post(
    "/{claim_id}/photos",
    response_model=CustomerClaimOut,
    summary="Add the photos a reviewer asked for",
    responses=document(CLAIM_WRITE, PhotosNotRequested, PhotoNotFound, TooManyPhotos),
)
def add_photos(
    claim_id: str,
    body: AddPhotosIn,
    session: DbSession,
    customer: CustomerPrincipal,
    container: ContainerDep,
    locale: RequestLocale,
) -> CustomerClaimOut:
    claim = service.add_photos(
        session,
        customer,
        claim_id,
        body.photo_ids,
        container.settings.max_photos_per_claim,
        container.policy,
    )
    return service.customer_claim_out(session, claim, container.policy, locale)
