from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from claims_api.webhooks.urls import MAX_URL_LENGTH

EVENT_TYPES_FIELD = Field(
    default_factory=list,
    max_length=50,
    description="Event types or patterns (`claim.*`) to receive; empty: every type.",
)


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_URL_LENGTH, description="http(s) URL the events are POSTed to.")
    event_types: list[str] = EVENT_TYPES_FIELD
    description: str = Field(default="", max_length=500)


class EndpointPatch(BaseModel):
    """Only the fields sent change. Enabling an endpoint clears why it was disabled; its
    deliveries held while it was disabled are sent from then on."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)
    event_types: list[str] | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class EndpointHealth(BaseModel):
    pending: int
    succeeded: int
    dead: int
    last_failure_at: datetime | None
    last_failure: str | None


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    health: EndpointHealth | None = None

    @classmethod
    def of(cls, endpoint: Any, health: EndpointHealth) -> EndpointOut:
        return cls.model_validate(endpoint).model_copy(update={"health": health})


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Shown only now: store it to verify signatures.")


class SecretOut(BaseModel):
    secret: str = Field(description="The new secret, shown only now.")
    previous_secret_expires_at: datetime = Field(
        description="Until then deliveries carry a signature with the old secret as well."
    )


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    aggregate_type: str
    aggregate_id: str
    sequence: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    attempt_log: list[AttemptOut] = []

    @classmethod
    def of(cls, delivery: Any, attempts: Iterable[Any]) -> DeliveryOut:
        out = cls.model_validate(delivery)
        return out.model_copy(
            update={"attempt_log": [AttemptOut.model_validate(a) for a in attempts]}
        )


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime = Field(description="Resend every failed or dead delivery created since then.")


class RecoverOut(BaseModel):
    requeued: int
