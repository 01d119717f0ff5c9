from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Problem(BaseModel):
    code: str
    message: str


class QualityOut(BaseModel):
    ok: bool
    problems: list[Problem]


class PhotoOut(BaseModel):
    id: str
    sha256: str
    width: int
    height: int
    format: str
    quality: QualityOut
    created_at: datetime
