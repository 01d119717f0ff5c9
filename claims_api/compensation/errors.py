"""The errors of the compensation ledger: paying a claim and reversing a payout."""

from __future__ import annotations

from typing import Any, ClassVar

from claims_api.errors import NamedError


class NothingToPay(NamedError):
    status, code, message = 409, "nothing_to_pay", "The amount to pay must be positive."


class ExceedsRemaining(NamedError):
    status, code = 409, "exceeds_remaining"
    message = "Only 150 cents of this order line remain uncompensated."
    example_details: ClassVar[dict[str, Any]] = {"remaining_cents": 150}


class AlreadyPaid(NamedError):
    status, code, message = 409, "already_paid", "This claim has already been paid."


class NotPaid(NamedError):
    status, code, message = 409, "not_paid", "This claim has no payout to reverse."


class AlreadyReversed(NamedError):
    status, code, message = 409, "already_reversed", "This payout has already been reversed."


# what paying a claim can meet, wherever a claim is paid from
PAYOUT = (NothingToPay, ExceedsRemaining, AlreadyPaid)
