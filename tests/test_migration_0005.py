"""Migration 0005 numbers the events written before it, per aggregate in the order they were
written, and the next event of each aggregate continues from there (both backends)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from claims_api.db import Database
from claims_api.events import service as events
from claims_api.migrate import upgrade
from tests.conftest import POSTGRES_URL, REQUIRE_POSTGRES, _postgres_available


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    problem = _postgres_available()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"fcm_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_existing_events_are_numbered_per_aggregate(empty_url):
    upgrade(empty_url, "0004")
    engine = create_engine(empty_url)
    with engine.begin() as conn:
        for n, (kind, aggregate) in enumerate(
            [("claim", "a"), ("claim", "b"), ("claim", "a"), ("sku", "a"), ("claim", "a")]
        ):
            conn.execute(
                text(
                    "INSERT INTO outbox_events (event_id, event_type, aggregate_type, "
                    "aggregate_id, payload, created_at, next_attempt_at, attempts) VALUES "
                    "(:id, 'x.y', :kind, :aggregate, '{}', :at, :at, 0)"
                ),
                {"id": f"evt_{n}", "kind": kind, "aggregate": aggregate, "at": "2026-12-01"},
            )
    engine.dispose()

    upgrade(empty_url)

    db = Database(empty_url)
    try:
        with db.session() as session:
            numbered = session.execute(
                text("SELECT event_id, sequence FROM outbox_events ORDER BY id")
            ).all()
            assert [tuple(row) for row in numbered] == [
                ("evt_0", 1), ("evt_1", 1), ("evt_2", 2), ("evt_3", 1), ("evt_4", 3),
            ]  # fmt: skip
            assert events.emit(session, "claim.paid", "claim", "a", {}).sequence == 4
            assert events.emit(session, "claim.paid", "claim", "c", {}).sequence == 1
    finally:
        db.dispose()
