"""Token buckets per credential, shared by every replica, and the daily photo cap.

A bucket holds up to ``burst`` tokens and gains ``per_minute / 60`` a second; each request
takes one, and a request that finds less than one is refused with the seconds until one is
there. One bucket per ``<action>:<credential kind>:<credential id>``, so one customer token
(or shop key) running a script is stopped while every other credential goes on as before.

Two stores, the same arithmetic:

- the database (default): one ``rate_buckets`` row per key, refilled, taken from and read back
  by one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (SQLite and PostgreSQL), so replicas
  taking from the same bucket at once serialise on its row and none is lost;
- Redis, where ``FRESHCLAIM_REDIS_URL`` is set: the same steps in a Lua script, which Redis runs
  atomically. A Redis that does not answer lets requests through (logged): the limits guard
  the service's CPU, and refusing every upload because of them would be the outage they are
  there to prevent.

The clock is injected (seconds since the epoch) so tests move time instead of sleeping.
Replicas' clocks only need to agree roughly: a bucket never refills backwards.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Double, case, delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from claims_api.auth.principal import Principal
from claims_api.config import Settings
from claims_api.db import Database
from claims_api.limits.errors import DailyPhotoLimit, RateLimited
from claims_api.limits.models import RateBucket
from claims_api.photos.models import Photo

log = logging.getLogger(__name__)

Clock = Callable[[], float]
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_KEY_LENGTH = 200
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Rate:
    per_minute: float  # 0: no limit
    burst: int

    @property
    def per_second(self) -> float:
        return self.per_minute / 60.0

    @property
    def capacity(self) -> float:
        return float(max(1, self.burst))

    @property
    def refill_seconds(self) -> float:
        """From empty to full: a bucket idle this long is the same as no bucket."""
        return self.capacity / self.per_second if self.per_second else 0.0


def seconds_until_a_token(tokens: float, rate: Rate) -> int:
    # less a rounding error's worth: 0.9 tokens at 0.1 a second reads 1.0000000000000002 s
    return max(1, math.ceil((1.0 - tokens) / rate.per_second - 1e-6))


class Buckets(Protocol):
    def take(self, key: str, rate: Rate, now: float) -> int | None:
        """Take one token from ``key``'s bucket: None when there was one, else the seconds
        until there is."""


class DatabaseBuckets:
    """Buckets in the ``rate_buckets`` table; buckets idle past their refill time are deleted
    now and then (they read the same as absent ones), in a transaction of their own."""

    PRUNE_EVERY_SECONDS = 60.0

    def __init__(self, db: Database, forget_after_seconds: float) -> None:
        self.db = db
        self.forget_after = max(forget_after_seconds, 60.0)
        self._next_prune = 0.0

    def take(self, key: str, rate: Rate, now: float) -> int | None:
        if now >= self._next_prune:
            self._next_prune = now + self.PRUNE_EVERY_SECONDS
            with self.db.session() as session:
                session.execute(
                    delete(RateBucket).where(RateBucket.updated_at < now - self.forget_after)
                )
        with self.db.session() as session:
            insert = _INSERTS[session.get_bind().dialect.name]
            tokens, allowed = session.execute(_take_statement(insert, key, rate, now)).one()
        return None if allowed else seconds_until_a_token(tokens, rate)


def _take_statement(insert: Any, key: str, rate: Rate, now: float) -> Any:
    bucket = RateBucket.__table__.c
    at = literal(now, Double)
    elapsed = case((at > bucket.updated_at, at - bucket.updated_at), else_=literal(0.0, Double))
    grown = bucket.tokens + elapsed * literal(rate.per_second, Double)
    capacity = literal(rate.capacity, Double)
    refilled = case((grown > capacity, capacity), else_=grown)
    has_token = refilled >= 1.0
    return (
        insert(RateBucket)
        .values(key=key, tokens=rate.capacity - 1.0, updated_at=now, allowed=True)
        .on_conflict_do_update(
            index_elements=[RateBucket.key],
            set_={
                "tokens": case((has_token, refilled - 1.0), else_=refilled),
                "updated_at": case((bucket.updated_at > at, bucket.updated_at), else_=at),
                "allowed": has_token,
            },
        )
        .returning(RateBucket.tokens, RateBucket.allowed)
    )


# KEYS[1]: the bucket; ARGV: capacity, tokens per second, now. Returns {allowed, tokens}
# (tokens as a string: Redis turns a Lua number into an integer).
TAKE_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'updated_at')
local tokens = tonumber(state[1])
local updated = tonumber(state[2])
if tokens == nil or updated == nil then
  tokens = capacity
  updated = now
end
tokens = math.min(capacity, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
-- %.17g: tostring keeps 14 digits, a tenth of a millisecond of an epoch time
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'updated_at',
           string.format('%.17g', math.max(now, updated)))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""


class RedisBuckets:
    """Buckets as Redis hashes that expire once full; see the module's note on failures."""

    def __init__(self, url: str, prefix: str = "freshclaim:bucket:") -> None:
        import redis

        self._errors: tuple[type[Exception], ...] = (redis.RedisError,)
        # short timeouts: a Redis that hangs must not hold every upload
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix
        self._take = self.client.register_script(TAKE_SCRIPT)

    def take(self, key: str, rate: Rate, now: float) -> int | None:
        try:
            allowed, tokens = self._take(
                keys=[self.prefix + key], args=[rate.capacity, rate.per_second, repr(now)]
            )
        except self._errors as exc:
            log.warning("rate limit store unreachable, request let through: %s", exc)
            return None
        return None if int(allowed) else seconds_until_a_token(float(tokens), rate)


PHOTO_UPLOAD = "photo_upload"
CLAIM_CREATE = "claim_create"


class RateLimits:
    """The token buckets one process applies, read from the settings once."""

    def __init__(self, settings: Settings, buckets: Buckets, clock: Clock = time.time) -> None:
        self.buckets = buckets
        self.clock = clock
        self.rates = {
            PHOTO_UPLOAD: Rate(settings.photo_uploads_per_minute, settings.photo_upload_burst),
            CLAIM_CREATE: Rate(settings.claims_per_minute, settings.claim_burst),
        }

    def take(self, action: str, principal: Principal) -> None:
        """Raises :class:`RateLimited` when ``principal`` has no token left for ``action``."""
        rate = self.rates[action]
        if rate.per_minute <= 0:
            return
        key = f"{action}:{principal.kind}:{principal.id}"[:_KEY_LENGTH]
        wait = self.buckets.take(key, rate, self.clock())
        if wait is not None:
            raise RateLimited.retry_in(wait)


class DailyPhotoCap:
    """Photos one customer may store in any 24 hours, counted from the photos themselves."""

    def __init__(self, limit: int, db: Database, clock: Clock = time.time) -> None:
        self.limit = limit
        self.db = db
        self.clock = clock

    def check(self, customer_id: str) -> None:
        """Raises :class:`DailyPhotoLimit` when the customer stored ``limit`` photos in the
        last 24 hours. Uploads checked at the same moment may each pass, so a burst can
        overshoot by the uploads in flight (the rate limit bounds those)."""
        if self.limit <= 0:
            return
        now = datetime.fromtimestamp(self.clock(), UTC)
        with self.db.read_session() as session:
            stored, oldest = session.execute(
                select(func.count(), func.min(Photo.created_at)).where(
                    Photo.customer_id == customer_id, Photo.created_at > now - DAY
                )
            ).one()
        if stored >= self.limit:
            oldest = oldest.replace(tzinfo=UTC) if oldest.tzinfo is None else oldest
            wait = max(1, math.ceil((oldest + DAY - now).total_seconds()))
            raise DailyPhotoLimit.retry_in(wait, self.limit)


def build_buckets(settings: Settings, db: Database) -> Buckets:
    if settings.redis_url:
        return RedisBuckets(settings.redis_url)
    forget_after = max(
        Rate(settings.photo_uploads_per_minute, settings.photo_upload_burst).refill_seconds,
        Rate(settings.claims_per_minute, settings.claim_burst).refill_seconds,
    )
    return DatabaseBuckets(db, forget_after)
