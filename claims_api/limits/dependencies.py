"""The limits as route dependencies. Each runs before the route's body is read or decoded:
a refused upload costs a token check, not a decode."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from claims_api.deps import CustomerPrincipal
from claims_api.limits.service import CLAIM_CREATE, PHOTO_UPLOAD, DailyPhotoCap, RateLimits


def _rate_limits(request: Request) -> RateLimits:
    return request.app.state.rate_limits


def _daily_photo_cap(request: Request) -> DailyPhotoCap:
    return request.app.state.daily_photo_cap


def photo_upload_allowed(request: Request, customer: CustomerPrincipal) -> None:
    _rate_limits(request).take(PHOTO_UPLOAD, customer)
    _daily_photo_cap(request).check(customer.id)


def claim_creation_allowed(request: Request, customer: CustomerPrincipal) -> None:
    _rate_limits(request).take(CLAIM_CREATE, customer)


PhotoUploadAllowed = Annotated[None, Depends(photo_upload_allowed)]
ClaimCreationAllowed = Annotated[None, Depends(claim_creation_allowed)]
