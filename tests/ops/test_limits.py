"""Abuse limits: a token bucket per credential on photo uploads and claim creation (in the
database, or in Redis), and a cap on the photos a customer stores per day. A refused request
is answered 429 with Retry-After before its body is read; other credentials are unaffected;
the bucket refills with time (a moved clock, not a sleep)."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from claims_api.container import Container
from claims_api.limits.service import DatabaseBuckets, Rate, RedisBuckets
from data.synthetic import make_fruit
from tests.support.api import jpeg_bytes

REDIS_URL = "redis://127.0.0.1:6379/15"


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _redis_problem() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
        return None
    except Exception as exc:
        return f"Redis at {REDIS_URL} is not reachable: {type(exc).__name__}"


needs_redis = pytest.mark.skipif(_redis_problem() is not None, reason=str(_redis_problem()))


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    if request.param == "redis" and _redis_problem():
        pytest.skip(_redis_problem())
    return request.param


@pytest.fixture
def settings(settings, store: str):
    return settings.model_copy(
        update={
            "photo_uploads_per_minute": 6.0,  # a token every 10 s
            "photo_upload_burst": 3,
            "claims_per_minute": 12.0,  # a token every 5 s
            "claim_burst": 2,
            "photos_per_day": 0,
            "redis_url": REDIS_URL if store == "redis" else None,
        }
    )


@pytest.fixture
def clock(client) -> FakeClock:
    fake = FakeClock()
    limits = client.app.state.rate_limits
    limits.clock = client.app.state.daily_photo_cap.clock = fake
    if isinstance(limits.buckets, RedisBuckets):  # every test run its own buckets
        limits.buckets.prefix = f"test:{secrets.token_hex(4)}:"
    return fake


PHOTO = jpeg_bytes(make_fruit("apple", rotten=True, seed=1))


def test_a_burst_of_uploads_from_one_customer_is_refused_and_refills(api, clock) -> None:
    pat, sam = api.customer("pat"), api.customer("sam")
    for _ in range(3):
        assert api.upload(pat, PHOTO).status_code == 201

    refused = api.upload(pat, PHOTO)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "10"
    # refused before the body is parsed: a body that is not even multipart gets the same 429
    garbage = api.client.post("/v1/photos", headers=pat, content=b"\x00" * 1000)
    assert garbage.status_code == 429

    assert api.upload(sam, PHOTO).status_code == 201  # another token is unaffected

    clock.advance(9)
    assert api.upload(pat, PHOTO).status_code == 429
    assert int(api.upload(pat, PHOTO).headers["retry-after"]) == 1
    clock.advance(1)
    assert api.upload(pat, PHOTO).status_code == 201  # one token back
    assert api.upload(pat, PHOTO).status_code == 429
    clock.advance(60)  # a full bucket, no more
    assert [api.upload(pat, PHOTO).status_code for _ in range(4)] == [201, 201, 201, 429]


def test_a_burst_of_claims_is_refused_per_customer(api, clock) -> None:
    pat, sam = api.customer("pat"), api.customer("sam")
    # claims on an unknown order: each still takes a token (the check comes first)
    assert [api.claim(pat, ["pho_x"], order_id="nope").status_code for _ in range(2)] == [
        404,
        404,
    ]
    refused = api.claim(pat, ["pho_x"], order_id="nope")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "5"
    assert api.claim(sam, ["pho_x"], order_id="nope").status_code == 404
    clock.advance(5)
    assert api.claim(pat, ["pho_x"], order_id="nope").status_code == 404


@pytest.mark.parametrize("store", ["database"], indirect=True)
def test_a_customer_stores_at_most_photos_per_day(api, client, clock) -> None:
    client.app.state.daily_photo_cap.limit = 2
    client.app.state.rate_limits.rates["photo_upload"] = Rate(0, 1)  # no rate limit here
    pat, sam = api.customer("pat"), api.customer("sam")
    assert [api.upload(pat, PHOTO).status_code for _ in range(2)] == [201, 201]
    refused = api.upload(pat, PHOTO)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "daily_photo_limit"
    # a day from the first photo (stamped by the real clock, a moment after the fake one)
    assert 86_000 < int(refused.headers["retry-after"]) <= 86_460
    assert api.upload(sam, PHOTO).status_code == 201
    clock.advance(86_401)  # the first two are more than a day old by then
    assert api.upload(pat, PHOTO).status_code == 201


@pytest.mark.parametrize("store", ["database"], indirect=True)
def test_concurrent_takes_from_one_bucket_grant_exactly_its_tokens(
    container: Container,
) -> None:
    """The upsert from many threads at once (on PostgreSQL, several replicas' worth)."""
    buckets = DatabaseBuckets(container.db, forget_after_seconds=60)
    rate = Rate(per_minute=0.001, burst=20)
    now = time.time()
    granted: list[bool] = []
    errors: list[BaseException] = []

    def take_five() -> None:
        try:
            for _ in range(5):
                granted.append(buckets.take("claim_create:customer:pat", rate, now) is None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take_five) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert granted.count(True) == 20 and len(granted) == 40


@pytest.mark.parametrize("store", ["database"], indirect=True)
def test_idle_buckets_are_forgotten(container: Container) -> None:
    from sqlalchemy import select

    from claims_api.limits.models import RateBucket

    buckets = DatabaseBuckets(container.db, forget_after_seconds=60)
    rate = Rate(per_minute=60, burst=5)
    buckets.take("a", rate, 1000.0)  # prunes (nothing yet); the next prune is due at 1060
    buckets.take("b", rate, 1050.0)
    buckets.take("c", rate, 1100.0)  # prunes what has been idle over 60 s: "a", not "b"
    with container.db.read_session() as session:
        assert set(session.scalars(select(RateBucket.key))) == {"b", "c"}


@needs_redis
def test_redis_buckets_refill_and_expire() -> None:
    buckets = RedisBuckets(REDIS_URL, prefix=f"test:{secrets.token_hex(4)}:")
    rate = Rate(per_minute=30, burst=2)  # a token every 2 s
    assert [buckets.take("k", rate, 100.0) for _ in range(3)] == [None, None, 2]
    assert buckets.take("other", rate, 100.0) is None
    assert buckets.take("k", rate, 101.0) == 1
    assert buckets.take("k", rate, 102.0) is None
    assert buckets.take("k", rate, 50.0) == 2  # an earlier clock does not refill backwards
    ttl_ms = buckets.client.pttl(buckets.prefix + "k")
    assert 0 < ttl_ms <= 5_000  # gone once it would be full again


def test_an_unreachable_redis_lets_requests_through(caplog: pytest.LogCaptureFixture) -> None:
    buckets = RedisBuckets("redis://127.0.0.1:1/0")
    assert buckets.take("k", Rate(per_minute=1, burst=1), 100.0) is None
    assert "unreachable" in caplog.text


def test_the_routes_document_the_limits(client) -> None:
    schema = client.app.openapi()
    upload = schema["paths"]["/v1/photos"]["post"]["responses"]["429"]
    assert set(upload["content"]["application/json"]["schema"]["properties"]["error"][
        "properties"]["code"]["enum"]) == {"rate_limited", "daily_photo_limit"}  # fmt: skip
    assert "Retry-After" in upload["headers"]
    claims = schema["paths"]["/v1/claims"]["post"]["responses"]["429"]
    assert "rate_limited" in claims["description"]
