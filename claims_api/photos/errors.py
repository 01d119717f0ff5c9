"""The errors of photo uploads and photo reads."""

from __future__ import annotations

from typing import Any, ClassVar

from claims_api.errors import NamedError


class PhotoNotFound(NamedError):
    status, code, message = 404, "photo_not_found", "No such photo."
    example_details: ClassVar[dict[str, Any]] = {"photo_ids": ["pho_missing"]}


# ---------------------------------------------------------------- the upload's body


class InvalidMultipart(NamedError):
    status, code = 400, "invalid_multipart"
    message = "The upload is not valid multipart/form-data: no boundary in Content-Type"


class ClientDisconnected(NamedError):
    status, code, message = 400, "client_disconnected", "The photo did not arrive in full."


class UploadTimeout(NamedError):
    status, code = 408, "upload_timeout"
    message = "The photo stopped arriving for 30 s; please try again."


class FileTooLarge(NamedError):
    status, code, message = 413, "file_too_large", "The photo is larger than 15 MB."


class UploadsBusy(NamedError):
    """Answered by :class:`claims_api.photos.upload_limit.UploadSizeLimit` before the route."""

    status, code = 503, "server_busy"
    message = "Too many photos are arriving at once; please retry in a few seconds."
    retry_after = True


# ---------------------------------------------------------------- the photo itself
# (claims_api.photos.imaging.PhotoRejected codes; the message is the customer's sentence)


class EmptyFile(NamedError):
    status, code = 400, "empty_file"
    message = "The upload is empty — please choose a photo and try again."


class ImageTooLarge(NamedError):
    status, code = 413, "image_too_large"
    message = "The photo has too many pixels — please send a smaller photo."


class UnsupportedFormat(NamedError):
    status, code = 415, "unsupported_format"
    message = (
        "This file is not a supported photo — please send a JPEG, PNG, WebP, HEIC or AVIF photo."
    )


class CorruptImage(NamedError):
    status, code = 422, "corrupt_image"
    message = (
        "The photo could not be read (the file is damaged or incomplete) — please take it again."
    )


PHOTO_REJECTIONS: dict[str, type[NamedError]] = {
    error.code: error
    for error in (EmptyFile, FileTooLarge, ImageTooLarge, UnsupportedFormat, CorruptImage)
}
UPLOAD_BODY = (InvalidMultipart, ClientDisconnected, UploadTimeout, FileTooLarge, UploadsBusy)
