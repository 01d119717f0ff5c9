"""The errors of customer profiles, consent and erasure."""

from __future__ import annotations

from claims_api.errors import NamedError


class CustomerNotFound(NamedError):
    status, code, message = 404, "customer_not_found", "No such customer."
