from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    customer_id: str
    claims_submitted: int
    claims_paid: int
    claims_rejected: int
    compensation_cents: int
    last_claim_at: datetime | None
    last_bad_experience_at: datetime | None
    tags: list[str]
    training_consent: bool = False


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    training: bool


class ErasureOut(BaseModel):
    photos_erased: int
    files_deleted: int
    claims_redacted: int


class QualityAlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    claims_in_window: int
    window_hours: int
    claim_ids: list[str]
    raised_at: datetime
