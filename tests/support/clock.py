"""A clock tests can move: the webhook retry schedule spans about 27 hours, and the tests move
through it instead of sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta

from claims_api.db import utcnow


class Clock:
    """The real time plus however far the test has moved it on."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    @property
    def now(self) -> datetime:
        return self()

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)
