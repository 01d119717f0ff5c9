"""Failed reviewer logins, counted per username and per client address in the database.

Each failure adds one to a fixed-window counter (``login_failures``) for ``user:<name>`` and
for ``addr:<address>``; while either counter has reached its limit, a login for that key is
refused before its password is checked, so a guessing run costs neither the Argon2 work nor
a password slot once it is stopped. The counters live in the shared database, so every
replica refuses the same key. A success clears its username's counter, not the address's.

The check and the count are separate short transactions around the password check (which
must hold no transaction): logins already in flight when a limit is reached still finish,
so a burst can overshoot a limit by the number of logins checked at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claims_api.auth.models import LoginFailure
from claims_api.config import Settings

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_KEY_LENGTH = 200


@dataclass(frozen=True)
class LoginLimits:
    per_user: int  # 0: no limit
    per_address: int
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> LoginLimits:
        return cls(
            per_user=settings.login_failures_per_user,
            per_address=settings.login_failures_per_address,
            window=timedelta(seconds=settings.login_failure_window_seconds),
        )


@dataclass(frozen=True)
class LoginKey:
    key: str
    limit: int


def user_key(username: str) -> str:
    return f"user:{username}"[:_KEY_LENGTH]


def login_keys(limits: LoginLimits, username: str, address: str | None) -> list[LoginKey]:
    """The counters a login attempt is checked against; those without a limit are left out."""
    keys = [LoginKey(user_key(username), limits.per_user)]
    if address:
        keys.append(LoginKey(f"addr:{address}"[:_KEY_LENGTH], limits.per_address))
    return [key for key in keys if key.limit > 0]


def recent_failures(
    session: Session, keys: Sequence[LoginKey], window: timedelta, now: datetime
) -> dict[str, tuple[int, datetime]]:
    """Failures and window start of each key whose window has not ended."""
    if not keys:
        return {}
    rows = session.execute(
        select(LoginFailure.key, LoginFailure.failures, LoginFailure.window_started_at).where(
            LoginFailure.key.in_([key.key for key in keys]),
            LoginFailure.window_started_at > now - window,
        )
    )
    return {key: (failures, started) for key, failures, started in rows}


def seconds_refused(
    failures: dict[str, tuple[int, datetime]],
    keys: Sequence[LoginKey],
    window: timedelta,
    now: datetime,
) -> int | None:
    """Seconds until every key's window lets a login through again; None when they do now."""
    waits = [
        (failures[key.key][1] + window - now).total_seconds()
        for key in keys
        if key.key in failures and failures[key.key][0] >= key.limit
    ]
    return max(1, math.ceil(max(waits))) if waits else None


def record_failure(
    session: Session, keys: Sequence[LoginKey], window: timedelta, now: datetime
) -> None:
    """One more failure on each key: an upsert, so concurrent failures on several replicas
    all count. Ended windows are deleted first (a key whose window has ended starts a new one
    at 1), so names that were only ever guessed do not pile up."""
    if not keys:
        return
    session.execute(delete(LoginFailure).where(LoginFailure.window_started_at <= now - window))
    insert = _INSERTS[session.get_bind().dialect.name]
    for key in sorted(keys, key=lambda k: k.key):  # one lock order for every replica
        session.execute(
            insert(LoginFailure)
            .values(key=key.key, failures=1, window_started_at=now)
            .on_conflict_do_update(
                index_elements=[LoginFailure.key],
                set_={"failures": LoginFailure.failures + 1},
            )
        )


def clear_user(session: Session, username: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.key == user_key(username)))
