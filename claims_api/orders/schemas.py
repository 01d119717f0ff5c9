from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class OrderLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    line_id: str = Field(min_length=1, max_length=100)
    sku: str = Field(min_length=1, max_length=100)
    produce: str = Field(min_length=1, max_length=50, description="Produce kind, e.g. 'apple'.")
    quantity: int = Field(ge=1, le=100_000)
    unit_price_cents: int = Field(ge=0, le=10_000_000)

    @field_validator("produce")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return value.strip().lower()


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=100)
    delivered_at: AwareDatetime
    pickup_point_id: str | None = Field(default=None, max_length=100)
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
