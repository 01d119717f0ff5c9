from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IncidentStatus = Literal["open", "acknowledged", "resolved"]
Resolution = Literal["batch_withdrawn", "supplier_notified", "process_fixed", "false_alarm"]


class IncidentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    scope: Literal["batch", "pickup_point"]
    sku: str
    subject_id: str = Field(description="The batch id or the pickup point id.")
    supplier_id: str | None
    status: IncidentStatus
    claims: int = Field(description="Claimed lines of the subject when the incident opened.")
    lines: int = Field(description="Delivered lines of the subject in its window.")
    baseline_rate: float = Field(description="The SKU's claim rate the subject was tested against.")
    p_value: float
    window_days: int
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    note: str | None


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: Resolution
    note: str | None = Field(default=None, max_length=2000)


class RateOut(BaseModel):
    key: dict[str, str | None] = Field(description="The group: sku, batch_id, supplier_id, …")
    delivered_lines: int
    claimed_lines: int = Field(description="Delivered lines with a claim not rejected.")
    rate: float
