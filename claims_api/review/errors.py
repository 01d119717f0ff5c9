"""The errors of the review queue: leases and reviewers' decisions."""

from __future__ import annotations

from typing import Any, ClassVar

from claims_api.errors import NamedError


class NotInReview(NamedError):
    status, code = 409, "not_in_review"
    message = "This claim is paid, not waiting for review."


class LeaseNotHeld(NamedError):
    status, code = 409, "lease_not_held"
    message = "Lease this claim before deciding it; another reviewer may hold it."


class AppealNeedsAnotherReviewer(NamedError):
    status, code = 403, "appeal_needs_another_reviewer"
    message = "An appeal must be decided by a different reviewer."


class AmountTooHigh(NamedError):
    status, code = 422, "amount_too_high"
    message = "At most 300 cents can be approved for this claim."


class MessageRequired(NamedError):
    status, code = 422, "message_required"
    message = "Tell the customer why the claim is rejected."


class UnknownReasonCode(NamedError):
    status, code = 422, "unknown_reason_code"
    message = "'looks_bad' is not a reason for reject; use one of: not_spoiled, wrong_item, …."
    example_details: ClassVar[dict[str, Any]] = {"allowed": ["not_spoiled", "wrong_item"]}
