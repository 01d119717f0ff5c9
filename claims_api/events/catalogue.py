"""Every event type the service emits, with the pydantic model of its ``data`` and an example.
``docs/events.md`` is generated from this module (``freshclaim docs``) and
a test keeps the two equal; webhook endpoints may only subscribe to types listed here.

Events are kept minimal on purpose: ids, amounts, codes and customer-facing reason codes. No
photos, EXIF, notes or appeal messages travel in them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from claims_api.claims.states import ALLOWED

SCHEMA_VERSION = 1


class Aggregate(BaseModel):
    type: str = Field(description="What changed: claim, customer, sku, webhook_endpoint.")
    id: str


class EventEnvelope(BaseModel):
    """The JSON document a webhook receives as its body and a stream consumer as its message."""

    id: str = Field(description="Unique per event; also the webhook-id and the Nats-Msg-Id.")
    type: str
    aggregate: Aggregate
    sequence: int = Field(
        ge=1,
        description="1, 2, 3 … per aggregate, in the order its changes happened; webhooks "
        "deliver one aggregate's events in this order.",
    )
    created_at: datetime
    data: dict[str, Any] = Field(description="The type's own document (below).")


class Actor(BaseModel):
    kind: str = Field(description="system, customer, reviewer, shop or admin.")
    id: str


class CustomerOutcome(BaseModel):
    """What the customer is told (``claims_api.rules.outcome``), so the shop can notify them
    without calling back."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="received, paid, in_review, rejected, … (docs/api.md).")
    message_key: str = Field(description="`claim.outcome.<code>`, for the shop's own wording.")
    params: dict[str, Any] = Field(description="The sentence's values (amounts, times).")
    messages: dict[str, str] = Field(description="The sentence in each language (zh, en).")
    reviewer_message: str | None = Field(
        description="The reviewer's own words to the customer, when a person decided."
    )
    review_reason: str | None = Field(description="The reviewer's reason code.")
    appeal_until: datetime | None
    respond_by: datetime | None = Field(description="While open: the answer's deadline.")


class ClaimStatusChanged(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a new field is a catalogue change

    claim_id: str
    customer_id: str
    order_id: str
    line_id: str
    status: str = Field(description="The status the claim moved to (the type's last part).")
    previous_status: str | None = Field(description="None for `claim.submitted`.")
    approved_cents: int | None = Field(description="Compensation approved so far, if any.")
    requested_cents: int
    actor: Actor
    reason: str | None = Field(description="A reason code, never free text.")
    at: datetime
    outcome: CustomerOutcome


class CustomerErased(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a new field is a catalogue change

    customer_id: str
    at: datetime


class SkuQualityAlert(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a new field is a catalogue change

    sku: str
    produce: str
    claims: int = Field(description="Claims on the SKU within the window.")
    window_hours: int
    claim_ids: list[str]


class DeliveredLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: str
    sku: str
    produce: str
    category: str | None
    supplier_id: str | None
    batch_id: str | None
    quantity: int
    unit_price_cents: int


class OrderDelivered(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a new field is a catalogue change

    order_id: str
    customer_id: str
    delivered_at: datetime
    pickup_point_id: str | None
    lines: list[DeliveredLine]


class QualityIncidentChanged(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a new field is a catalogue change

    incident_id: str
    scope: str = Field(description="batch or pickup_point.")
    sku: str
    subject_id: str = Field(description="The batch id or the pickup point id.")
    supplier_id: str | None
    status: str = Field(description="open, acknowledged or resolved.")
    claims: int = Field(description="Claimed lines of the subject when the incident opened.")
    lines: int = Field(description="Delivered lines of the subject in its window.")
    baseline_rate: float = Field(description="The SKU's claim rate it was tested against.")
    p_value: float = Field(description="One-sided exact binomial test.")
    resolution: str | None = Field(description="A resolution code, once resolved.")
    actor: Actor
    at: datetime


class WebhookEndpointDisabled(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a new field is a catalogue change

    endpoint_id: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class EventType:
    name: str
    aggregate: str
    model: type[BaseModel]
    summary: str
    example: dict[str, Any]


_EXAMPLE_OUTCOMES: dict[str, dict[str, Any]] = {
    "submitted": {
        "code": "received",
        "params": {},
        "messages": {
            "zh": "我们已收到您的售后申请，正在处理。",
            "en": "We have received your claim and are checking it.",
        },
    },
    "paid": {
        "code": "paid",
        "params": {"amount_cents": 600, "method": "store_credit"},
        "messages": {
            "zh": "已向您的账户余额退款 ¥6.00。",
            "en": "We have refunded ¥6.00 to your store credit.",
        },
    },
}


def _example_outcome(status: str) -> dict[str, Any]:
    outcome = _EXAMPLE_OUTCOMES.get(status, _EXAMPLE_OUTCOMES["submitted"])
    return {
        **outcome,
        "message_key": f"claim.outcome.{outcome['code']}",
        "reviewer_message": None,
        "review_reason": None,
        "appeal_until": None,
        "respond_by": None,
    }


def _claim_example(status: str, previous: str | None) -> dict[str, Any]:
    return {
        "claim_id": "clm_5f1c0e9a2b7d4c3e8a6f0b1d",
        "customer_id": "cust-1",
        "order_id": "ord-1",
        "line_id": "L1",
        "status": status,
        "previous_status": previous,
        "approved_cents": 600 if status in ("approved", "paid") else None,
        "requested_cents": 600,
        "actor": {"kind": "system", "id": "policy"},
        "reason": "auto_approved" if status == "approved" else None,
        "at": "2026-12-04T09:30:00+00:00",
        "outcome": _example_outcome(status),
    }


def _incident_example(status: str, actor: dict[str, str], resolution: str | None) -> dict:
    return {
        "incident_id": "qin_7d2a9c4e1b3f5a6d8c0e2f4a",
        "scope": "batch",
        "sku": "SKU-apple",
        "subject_id": "B-2026-12-03",
        "supplier_id": "sup-orchard",
        "status": status,
        "claims": 6,
        "lines": 28,
        "baseline_rate": 0.05,
        "p_value": 0.00043,
        "resolution": resolution,
        "actor": actor,
        "at": "2026-12-04T09:30:00+00:00",
    }


_STAFF = {"kind": "reviewer", "id": "rev_1"}
_INCIDENT_TYPES = (
    EventType(
        "quality.incident_opened",
        "quality_incident",
        QualityIncidentChanged,
        "A batch's or a pickup point's claim rate on a SKU is significantly above the SKU's.",
        _incident_example("open", {"kind": "system", "id": "policy"}, None),
    ),
    EventType(
        "quality.incident_acknowledged",
        "quality_incident",
        QualityIncidentChanged,
        "Staff acknowledged a quality incident.",
        _incident_example("acknowledged", _STAFF, None),
    ),
    EventType(
        "quality.incident_resolved",
        "quality_incident",
        QualityIncidentChanged,
        "Staff resolved a quality incident, with a resolution code.",
        _incident_example("resolved", _STAFF, "batch_withdrawn"),
    ),
)


def _claim_types() -> list[EventType]:
    moves: dict[str, str | None] = {"submitted": None}  # a claim enters as submitted
    for source, targets in ALLOWED.items():
        for target in targets:
            moves.setdefault(str(target), str(source))
    return [
        EventType(
            f"claim.{status}",
            "claim",
            ClaimStatusChanged,
            f"A claim moved to `{status}`.",
            _claim_example(status, moves[status]),
        )
        for status in sorted(moves)
    ]


EVENT_TYPES: tuple[EventType, ...] = (
    *_claim_types(),
    EventType(
        "customer.erased",
        "customer",
        CustomerErased,
        "A customer's photos, photo metadata and free text were erased.",
        {"customer_id": "cust-1", "at": "2026-12-04T09:30:00+00:00"},
    ),
    EventType(
        "order.delivered",
        "order",
        OrderDelivered,
        "An order was delivered (first stored, or what was delivered changed): the "
        "denominator of damage rates.",
        {
            "order_id": "ord-1",
            "customer_id": "cust-1",
            "delivered_at": "2026-12-04T08:00:00+00:00",
            "pickup_point_id": "pp-7",
            "lines": [
                {
                    "line_id": "L1",
                    "sku": "SKU-apple",
                    "produce": "apple",
                    "category": "fruit",
                    "supplier_id": "sup-orchard",
                    "batch_id": "B-2026-12-03",
                    "quantity": 5,
                    "unit_price_cents": 300,
                }
            ],
        },
    ),
    *_INCIDENT_TYPES,
    EventType(
        "quality.sku_alert",
        "sku",
        SkuQualityAlert,
        "One SKU collected many claims in a short window (a bad batch, a cold-chain break).",
        {
            "sku": "SKU-apple",
            "produce": "apple",
            "claims": 5,
            "window_hours": 24,
            "claim_ids": ["clm_1", "clm_2", "clm_3", "clm_4", "clm_5"],
        },
    ),
    EventType(
        "webhook.endpoint_disabled",
        "webhook_endpoint",
        WebhookEndpointDisabled,
        "A webhook endpoint was disabled by the service (it answered 410, or failed for days).",
        {
            "endpoint_id": "whe_0a1b2c3d4e5f60718293a4b5",
            "reason": "failing since 2026-11-29T09:30:00+00:00",
            "at": "2026-12-04T09:30:00+00:00",
        },
    ),
)
AGGREGATE_ID_FIELD = {
    "claim": "claim_id",
    "customer": "customer_id",
    "order": "order_id",
    "quality_incident": "incident_id",
    "sku": "sku",
    "webhook_endpoint": "endpoint_id",
}
TYPE_NAMES = tuple(t.name for t in EVENT_TYPES)


def matching_types(pattern: str) -> list[str]:
    return [name for name in TYPE_NAMES if fnmatchcase(name, pattern)]


def example_document(event_type: EventType, sequence: int = 1) -> dict[str, Any]:
    return EventEnvelope(
        id="evt_9c2e4b7a1f3d5e6c8b0a2d4f",
        type=event_type.name,
        aggregate=Aggregate(
            type=event_type.aggregate,
            id=event_type.example[AGGREGATE_ID_FIELD[event_type.aggregate]],
        ),
        sequence=sequence,
        created_at=datetime.fromisoformat("2026-12-04T09:30:00+00:00"),
        data=event_type.model.model_validate(event_type.example).model_dump(mode="json"),
    ).model_dump(mode="json")


def _json_block(document: dict[str, Any]) -> list[str]:
    return ["```json", json.dumps(document, indent=2, ensure_ascii=False), "```", ""]


def render_markdown() -> str:
    lines = [
        "# Events",
        "",
        "<!-- Generated by `freshclaim docs`; edit claims_api/events/catalogue.py instead. -->",
        "",
        f"Schema version {SCHEMA_VERSION}. Every event travels in the same envelope: as the body "
        "of a webhook (signed to the Standard Webhooks spec: `webhook-id` = the event id, "
        "`webhook-timestamp`, `webhook-signature`) and as a NATS JetStream message (stream "
        "`FRESHCLAIM`, subject `freshclaim.<aggregate>.<type without its aggregate prefix>`, "
        "`Nats-Msg-Id` = the event id).",
        "",
        "Delivery is at least once: a receiver de-duplicates by `id`. Per aggregate (a claim), "
        "webhooks deliver events in `sequence` order: a later event waits until the earlier one "
        "succeeded at that endpoint.",
        "",
        "## Envelope",
        "",
        *_json_block(EventEnvelope.model_json_schema()),
        "## Types",
        "",
        "| type | aggregate | when |",
        "| --- | --- | --- |",
        *(f"| `{t.name}` | {t.aggregate} | {t.summary} |" for t in EVENT_TYPES),
        "",
    ]
    documented: set[str] = set()
    for event_type in EVENT_TYPES:
        lines += [f"### `{event_type.name}`", "", event_type.summary, ""]
        model_name = event_type.model.__name__
        if model_name in documented:
            lines.append(f"`data` follows the `{model_name}` schema above.")
            lines.append("")
        else:
            documented.add(model_name)
            lines += [
                f"`data` schema (`{model_name}`):",
                "",
                *_json_block(event_type.model.model_json_schema()),
            ]
        lines += ["Example:", "", *_json_block(example_document(event_type))]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
