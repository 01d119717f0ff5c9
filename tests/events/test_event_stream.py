"""Events published to NATS JetStream: once each across a relay restart, against the real
server on 127.0.0.1:4222 (skipped with the reason where none is reachable)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
from collections.abc import Iterator

import nats
import pytest
from sqlalchemy import func, select

from claims_api.events import service as events
from claims_api.events.models import OutboxEvent
from claims_api.events.stream import JetStreamPublisher, StreamRelay

NATS_URL = os.environ.get("FRESHCLAIM_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _nats_reachable() -> str | None:
    host_port = NATS_URL.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError as exc:
        return f"no NATS server at {NATS_URL} ({exc})"
    return None


@pytest.fixture
def stream_names() -> Iterator[tuple[str, str]]:
    """A stream and subject prefix of this test's own, deleted after."""
    problem = _nats_reachable()
    if problem:
        pytest.skip(problem)
    token = secrets.token_hex(4)
    names = (f"FRESHCLAIM_TEST_{token}", f"fctest{token}")
    yield names

    async def delete() -> None:
        connection = await nats.connect(NATS_URL)
        try:
            await connection.jetstream().delete_stream(names[0])
        finally:
            await connection.close()

    asyncio.run(delete())


def _stream_messages(stream: str) -> list[tuple[str, dict, dict]]:
    async def read() -> list[tuple[str, dict, dict]]:
        connection = await nats.connect(NATS_URL)
        try:
            jetstream = connection.jetstream()
            info = await jetstream.stream_info(stream)
            messages = []
            for sequence in range(info.state.first_seq, info.state.last_seq + 1):
                message = await jetstream.get_msg(stream, sequence)
                messages.append((message.subject, message.headers or {}, json.loads(message.data)))
            return messages
        finally:
            await connection.close()

    return asyncio.run(read())


def _emit_claim_events(container, claims: int = 3) -> list[str]:
    with container.db.session() as session:
        emitted = [
            events.emit(session, f"claim.{status}", "claim", f"clm_{n}", {"claim_id": f"clm_{n}"})
            for n in range(claims)
            for status in ("approved", "paid")
        ]
        emitted.append(events.emit(session, "quality.sku_alert", "sku", "SKU-apple", {}))
        return [e.event_id for e in emitted]


def test_events_reach_the_stream_once_each_across_a_relay_restart(
    container, stream_names, monkeypatch
):
    stream, prefix = stream_names
    event_ids = _emit_claim_events(container)
    first = JetStreamPublisher(NATS_URL, stream=stream, subject_prefix=prefix)
    crashing = StreamRelay(container.db, first, batch_size=4)

    def die_before_marking(*args, **kwargs):
        raise SystemExit("killed after publishing, before marking the events streamed")

    monkeypatch.setattr(container.db, "session", die_before_marking)
    with pytest.raises(SystemExit):
        crashing.run_once()
    monkeypatch.undo()
    first.close()

    restarted = JetStreamPublisher(NATS_URL, stream=stream, subject_prefix=prefix)
    try:
        assert StreamRelay(container.db, restarted, batch_size=4).drain() == len(event_ids)
    finally:
        restarted.close()

    messages = _stream_messages(stream)
    assert [m[2]["id"] for m in messages] == event_ids  # once each, in the outbox's order
    assert [m[1]["Nats-Msg-Id"] for m in messages] == event_ids
    assert messages[0][0] == f"{prefix}.claim.approved"
    assert messages[1][0] == f"{prefix}.claim.paid"
    assert messages[-1][0] == f"{prefix}.sku.quality.sku_alert"
    assert [m[2]["sequence"] for m in messages[:2]] == [1, 2]
    with container.db.read_session() as session:
        unstreamed = select(func.count()).where(OutboxEvent.streamed_at.is_(None))
        assert session.scalar(unstreamed) == 0
