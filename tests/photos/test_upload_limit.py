"""Photo uploads are parsed in memory, so the byte limit holds before the multipart parser
reads the body: a declared Content-Length over the limit and a chunked body that passes it
are both refused with 413 ``file_too_large``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from claims_api.config import Settings
from claims_api.container import build_container
from claims_api.main import create_app
from claims_api.photos.models import Photo
from claims_api.photos.upload_limit import MULTIPART_OVERHEAD, UploadSizeLimit
from data.synthetic import make_fruit
from tests.support.api import Api, jpeg_bytes

LIMIT = 200_000


@pytest.fixture
def small_limit_api(settings: Settings) -> Iterator[Api]:
    settings.max_upload_bytes = LIMIT
    container = build_container(settings)
    with TestClient(create_app(container=container)) as client:
        yield Api(client, container)
    container.db.dispose()


def _photo_rows(api: Api) -> int:
    with api.container.db.read_session() as session:
        return session.scalar(select(func.count()).select_from(Photo))


def test_declared_length_over_the_limit_is_refused_before_parsing(small_limit_api: Api) -> None:
    response = small_limit_api.upload(small_limit_api.customer(), b"\xff\xd8\xff" + b"\0" * 400_000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert _photo_rows(small_limit_api) == 0


def test_chunked_body_over_the_limit_is_cut_off_while_it_arrives() -> None:
    """ASGI level: the app reads a chunked body (no Content-Length) to the end; the
    middleware answers 413 once the limit is passed, stops pulling chunks and drops what the
    app answers after seeing the disconnect."""
    chunk, pulled, sent = b"\0" * 64 * 1024, 0, []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < 100}

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope: dict, receive, send) -> None:
        while (message := await receive())["type"] == "http.request" and message["more_body"]:
            pass
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"app answer"})

    limited = UploadSizeLimit(app, limit=LIMIT, paths=frozenset({"/v1/photos"}))
    scope = {"type": "http", "method": "POST", "path": "/v1/photos", "headers": []}
    asyncio.run(limited(scope, receive, send))
    assert pulled == (LIMIT + MULTIPART_OVERHEAD) // len(chunk) + 1
    assert [m.get("status") for m in sent] == [413, None]
    assert json.loads(sent[1]["body"])["error"]["code"] == "file_too_large"


def test_a_photo_over_a_megabyte_is_accepted(api: Api) -> None:
    photo = jpeg_bytes(make_fruit("apple", rotten=True, size=(2400, 1800), seed=3), quality=97)
    assert len(photo) > 1024 * 1024
    response = api.upload(api.customer(), photo)
    assert response.status_code == 201, response.text
    assert response.json()["width"] == 2400


def test_uploads_decode_at_most_one_per_core_at_once(api: Api) -> None:
    from claims_api.photos.service import processing_slots

    api.container.settings.photo_concurrency = 3
    slots = processing_slots(api.container)
    assert all(slots.acquire(blocking=False) for _ in range(3))
    assert not slots.acquire(blocking=False)
    for _ in range(3):
        slots.release()


def test_processing_slots_are_handed_out_in_arrival_order() -> None:
    import threading
    import time

    from claims_api.photos.service import FairSemaphore

    slots = FairSemaphore(1)
    assert slots.acquire()
    order: list[int] = []

    def wait_turn(i: int) -> None:
        with slots:
            order.append(i)

    threads = []
    for i in range(4):
        threads.append(threading.Thread(target=wait_turn, args=(i,)))
        threads[-1].start()
        deadline = time.monotonic() + 5
        while len(slots._waiters) < i + 1 and time.monotonic() < deadline:
            time.sleep(0.001)  # queued behind the earlier ones
    assert not slots.acquire(blocking=False)  # a newcomer does not jump the queue
    slots.release()
    for thread in threads:
        thread.join(timeout=5)
    assert order == [0, 1, 2, 3]
    assert slots.acquire(blocking=False)
    assert not slots.acquire(timeout=0.01)
    slots.release()
    with pytest.raises(ValueError):
        slots.release()


# --- the bytes all uploads hold together ---------------------------------------------------


def test_upload_budget_hands_out_bytes_in_arrival_order() -> None:
    from claims_api.photos.upload_limit import UploadBudget

    async def scenario() -> list[str]:
        budget, order = UploadBudget(100), []
        first = await budget.acquire(60, 1.0)

        async def wait(name: str, size: int) -> None:
            assert await budget.acquire(size, 1.0) == size
            order.append(name)

        large = asyncio.create_task(wait("large", 60))
        await asyncio.sleep(0)
        small = asyncio.create_task(wait("small", 10))  # fits now, but arrived later
        await asyncio.sleep(0.01)
        assert order == [] and budget.free == 40
        budget.release(first)
        await asyncio.gather(large, small)
        assert budget.free == 30
        return order

    assert asyncio.run(scenario()) == ["large", "small"]


def test_upload_budget_wait_runs_out_or_is_cancelled_without_leaking_bytes() -> None:
    from claims_api.photos.upload_limit import UploadBudget

    async def scenario() -> None:
        budget = UploadBudget(100)
        held = await budget.acquire(500, 1.0)  # more than the budget: all of it
        assert held == 100 and budget.free == 0
        assert await budget.acquire(10, 0.02) is None  # the wait ran out
        gone = asyncio.create_task(budget.acquire(10, 5.0))
        await asyncio.sleep(0.01)
        gone.cancel()  # the client left while waiting
        with pytest.raises(asyncio.CancelledError):
            await gone
        behind = asyncio.create_task(budget.acquire(30, 1.0))
        await asyncio.sleep(0)
        budget.release(held)
        assert await behind == 30
        budget.release(30)
        assert budget.free == 100 and not budget._waiters

    asyncio.run(scenario())


def test_uploads_that_do_not_fit_the_budget_wait_then_get_503() -> None:
    """ASGI level: while one upload holds the whole budget, a second waits its time and is
    answered 503 server_busy before any of its body is read; other paths are not held."""
    from claims_api.photos.upload_limit import UploadBudget

    release_first = asyncio.Event()
    reads: dict[str, int] = {"first": 0, "second": 0, "other": 0}

    async def app(scope: dict, receive, send) -> None:
        await receive()
        if scope["path"] == "/v1/photos" and scope["name"] == "first":
            await release_first.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    limited = UploadSizeLimit(
        app,
        limit=LIMIT,
        paths=frozenset({"/v1/photos"}),
        budget=UploadBudget(LIMIT),
        wait_seconds=0.05,
    )

    def request(name: str, path: str = "/v1/photos") -> tuple[dict, object, object, list]:
        sent: list[dict] = []

        async def receive() -> dict:
            reads[name] += 1
            return {"type": "http.request", "body": b"\0" * 1000, "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": path, "name": name,
                 "headers": [(b"content-length", str(LIMIT).encode())]}  # fmt: skip
        return scope, receive, send, sent

    async def scenario() -> tuple[list, list, list]:
        *first, first_sent = request("first")
        first_task = asyncio.create_task(limited(*first))
        await asyncio.sleep(0.01)
        *second, second_sent = request("second")
        *other, other_sent = request("other", "/v1/claims")
        await asyncio.gather(limited(*second), limited(*other))
        release_first.set()
        await first_task
        return first_sent, second_sent, other_sent

    first_sent, second_sent, other_sent = asyncio.run(scenario())
    assert first_sent[0]["status"] == 201 and other_sent[0]["status"] == 201
    assert second_sent[0]["status"] == 503 and reads["second"] == 0
    headers = dict(second_sent[0]["headers"])
    assert headers[b"retry-after"] == b"5" and headers[b"connection"] == b"close"
    assert json.loads(second_sent[1]["body"])["error"]["code"] == "server_busy"
    assert limited.budget.free == LIMIT
