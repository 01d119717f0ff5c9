from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from claims_api.deps import ContainerDep, CustomerOrStaff, CustomerPrincipal, DbSession
from claims_api.errors import AUTHENTICATED, INPUT, WRITES, document
from claims_api.i18n import pick_locale
from claims_api.limits.dependencies import PhotoUploadAllowed
from claims_api.limits.errors import PHOTO_LIMITS
from claims_api.orders.errors import OrderNotFound, UnknownLine
from claims_api.photos import service
from claims_api.photos.errors import PHOTO_REJECTIONS, UPLOAD_BODY, PhotoNotFound
from claims_api.photos.form import OPENAPI_REQUEST_BODY, PhotoFormDep
from claims_api.photos.schemas import PhotoOut

router = APIRouter(prefix="/v1/photos", tags=["photos"])
PHOTO_READ = (AUTHENTICATED, INPUT, WRITES, PhotoNotFound)  # a staff view is logged


@router.post(
    "",
    status_code=201,
    response_model=PhotoOut,
    summary="Upload one photo",
    openapi_extra={"requestBody": OPENAPI_REQUEST_BODY},
    responses=document(
        AUTHENTICATED,
        INPUT,
        WRITES,
        UPLOAD_BODY,
        PHOTO_REJECTIONS.values(),
        OrderNotFound,
        UnknownLine,
        PHOTO_LIMITS,
    ),
)
def upload_photo(
    container: ContainerDep,
    customer: CustomerPrincipal,
    _allowed: PhotoUploadAllowed,  # before the form: a refused upload's body is never read
    form: PhotoFormDep,
    accept_language: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Checks the photo at once: an unusable one comes back with ``quality.ok = false`` and a
    sentence per problem that the mini-program can show ("retake")."""
    locale = pick_locale(accept_language, container.settings.locale)
    photo = service.upload_photo(
        container, customer, form.data, service.UploadContext(form.order_id, form.line_id), locale
    )
    # Serialised here, on the worker thread: a returned model would be validated against
    # response_model and encoded in one more threadpool hop.
    return JSONResponse(photo.model_dump(mode="json"), status_code=201)


@router.get("/{photo_id}", response_model=PhotoOut, responses=document(PHOTO_READ))
def get_photo(photo_id: str, session: DbSession, viewer: CustomerOrStaff) -> PhotoOut:
    return service.photo_out(service.get_visible_photo(session, viewer, photo_id))


@router.get(
    "/{photo_id}/content",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, **document(PHOTO_READ)},
)
def get_photo_content(
    photo_id: str, session: DbSession, viewer: CustomerOrStaff, container: ContainerDep
) -> Response:
    """The stored, re-encoded copy (no EXIF). Every staff view is logged."""
    photo = service.get_visible_photo(session, viewer, photo_id)
    service.log_view(session, viewer, photo, "content")
    data = container.storage.get(photo.storage_key)
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"}
    )
