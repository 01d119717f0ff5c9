from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# Supplier and batch ids come from the shop's ERP: printable, no spaces, like order ids.
ExternalId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$"
    ),
]
# A category is a grouping key for rates and rules (fruit, vegetables, baby_food): a slug, so
# that "Baby Food" and "baby_food" do not split one category in two.
CategorySlug = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",  # lowered after the check
    ),
]
ProduceKind = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)
]


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: Identifier
    sku: Identifier
    produce: ProduceKind = Field(description="Produce kind as the model names it, e.g. 'apple'.")
    quantity: int = Field(ge=1, le=100_000)
    unit_price_cents: int = Field(ge=0, le=10_000_000)
    category: CategorySlug | None = Field(
        default=None, description="A short slug such as 'fruit', 'vegetables' or 'baby_food'."
    )
    supplier_id: ExternalId | None = Field(default=None, description="The supplier's id.")
    batch_id: ExternalId | None = Field(
        default=None, description="The supplier batch (lot) the goods came from."
    )


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Identifier
    delivered_at: AwareDatetime
    pickup_point_id: Identifier | None = None
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)

    @field_validator("lines")
    @classmethod
    def _unique_lines(cls, lines: list[OrderLineIn]) -> list[OrderLineIn]:
        ids = [line.line_id for line in lines]
        if len(set(ids)) != len(ids):
            raise ValueError("line_id must be unique within an order")
        return lines


class OrderOut(OrderIn):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: str
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime
