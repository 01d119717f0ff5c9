"""The answers of the abuse limits; both carry Retry-After."""

from __future__ import annotations

from claims_api.errors import NamedError


class RateLimited(NamedError):
    """This credential sent more requests of one kind than its bucket holds."""

    status, code = 429, "rate_limited"
    message = "Too many requests from this credential; try again in 3 s."
    retry_after = True

    @classmethod
    def retry_in(cls, seconds: int) -> RateLimited:
        return cls(
            f"Too many requests from this credential; try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
            retry_after_seconds=seconds,
        )


class DailyPhotoLimit(NamedError):
    """The customer stored as many photos in the last 24 hours as one customer may."""

    status, code = 429, "daily_photo_limit"
    message = "You have uploaded the most photos allowed in a day; try again in 3600 s."
    retry_after = True

    @classmethod
    def retry_in(cls, seconds: int, limit: int) -> DailyPhotoLimit:
        return cls(
            f"You have uploaded the most photos allowed in a day ({limit}); "
            f"try again in {seconds} s.",
            headers={"Retry-After": str(seconds)},
            limit=limit,
            retry_after_seconds=seconds,
        )


LIMITS = (RateLimited,)
PHOTO_LIMITS = (RateLimited, DailyPhotoLimit)
