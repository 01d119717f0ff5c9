"""The errors of webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Any, ClassVar

from claims_api.errors import NamedError


class WebhookNotFound(NamedError):
    status, code, message = 404, "webhook_not_found", "No such webhook."


class DeliveryNotFound(NamedError):
    status, code, message = 404, "delivery_not_found", "No such delivery."


class InvalidWebhookUrl(NamedError):
    status, code = 422, "invalid_webhook_url"
    message = "Invalid webhook URL: only http and https URLs are allowed."


class UnknownEventType(NamedError):
    status, code = 422, "unknown_event_type"
    message = "'claim.payed' matches no event type; see docs/events.md."
    example_details: ClassVar[dict[str, Any]] = {"known": ["claim.paid", "claim.rejected"]}


class NaiveDatetime(NamedError):
    status, code = 422, "naive_datetime"
    message = "`since` needs a time zone (for example Z)."


ENDPOINT_INPUT = (InvalidWebhookUrl, UnknownEventType)
