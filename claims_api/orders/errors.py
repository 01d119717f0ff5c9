"""The errors of orders and their lines (claims and photo uploads name an order line too)."""

from __future__ import annotations

from claims_api.errors import NamedError


class OrderNotFound(NamedError):
    status, code, message = 404, "order_not_found", "No such order."


class UnknownLine(NamedError):
    status, code, message = 422, "unknown_line", "Order ord-1 has no line 'L9'."


class OrderCustomerMismatch(NamedError):
    status, code, message = (
        409,
        "order_customer_mismatch",
        "An order cannot move to another customer.",
    )


class LineHasClaims(NamedError):
    status, code, message = 409, "line_has_claims", "Line 'L1' has claims and cannot change."
