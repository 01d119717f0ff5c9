"""The errors of claims: submitting, reading, appealing and adding photos."""

from __future__ import annotations

from typing import Any, ClassVar

from claims_api.errors import NamedError


class ClaimNotFound(NamedError):
    status, code, message = 404, "claim_not_found", "No such claim."


class IdempotencyKeyRequired(NamedError):
    status, code = 400, "idempotency_key_required"
    message = "Send an Idempotency-Key header (1-200 characters)."


class InvalidIdempotencyKey(NamedError):
    status, code = 400, "invalid_idempotency_key"
    message = "The Idempotency-Key header is over 200 characters."


class IdempotencyKeyReused(NamedError):
    status, code = 409, "idempotency_key_reused"
    message = "This Idempotency-Key was already used with a different request body."
    example_details: ClassVar[dict[str, Any]] = {"claim_id": "clm_01J0000000000000000000000"}


class InvalidCursor(NamedError):
    status, code, message = 400, "invalid_cursor", "The cursor is not one this API returned."


class TooManyPhotos(NamedError):
    status, code, message = 422, "too_many_photos", "A claim takes at most 6 photos."


class QuantityExceedsLine(NamedError):
    status, code = 422, "quantity_exceeds_line"
    message = "affected_quantity 5 is more than the 3 ordered."


class ClaimAlreadyOpen(NamedError):
    status, code, message = 409, "claim_already_open", "This order line already has an open claim."
    example_details: ClassVar[dict[str, Any]] = {"claim_id": "clm_01J0000000000000000000000"}


class LineFullyCompensated(NamedError):
    status, code = 409, "line_fully_compensated"
    message = "This order line has already been compensated in full."


class ConcurrentUpdate(NamedError):
    status, code = 409, "concurrent_update"
    message = "The claim could not be recorded; please retry."


class InvalidTransition(NamedError):
    status, code = 409, "invalid_transition"
    message = "A claim that is paid cannot become in_review."
    example_details: ClassVar[dict[str, Any]] = {"status": "paid"}


class NotRejected(NamedError):
    status, code, message = 409, "not_rejected", "Only a rejected claim can be appealed."


class AlreadyAppealed(NamedError):
    status, code, message = 409, "already_appealed", "This claim has already been appealed once."


class PhotosNotRequested(NamedError):
    status, code = 409, "photos_not_requested"
    message = "No photos were requested for this claim."


class ClaimRejectedAppealInstead(NamedError):
    status, code = 409, "claim_rejected_appeal_instead"
    message = (
        "A person rejected the earlier claim on this order line; appeal that claim instead "
        "(once, until 2026-12-11T10:00:00+00:00)."
    )
    example_details: ClassVar[dict[str, Any]] = {
        "claim_id": "clm_01J0000000000000000000000",
        "appeal_until": "2026-12-11T10:00:00+00:00",
    }


class AppealWindowClosed(NamedError):
    status, code = 409, "appeal_window_closed"
    message = "The time to appeal this claim ended at 2026-12-11T10:00:00+00:00."
    example_details: ClassVar[dict[str, Any]] = {"appeal_until": "2026-12-11T10:00:00+00:00"}
