"""Migration 0005 numbers the events written before it, per aggregate in the order they were
written, and the next event of each aggregate continues from there (both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from claims_api.db import Database
from claims_api.events import service as events
from claims_api.migrate import alembic_config, current_revision, upgrade
from tests.conftest import migrated_postgres_schema


@pytest.fixture(params=["sqlite", "postgres"])
def url_at_0004(request, tmp_path) -> Iterator[str]:
    """A database migrated to the head and back down to 0004 (the downgrade is tested too)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url)
        command.downgrade(alembic_config(url), "0004")
        yield url
        return
    with migrated_postgres_schema() as url:
        command.downgrade(alembic_config(url), "0004")
        yield url


def test_existing_events_are_numbered_per_aggregate(url_at_0004):
    assert current_revision(url_at_0004) == "0004"
    engine = create_engine(url_at_0004)
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

    upgrade(url_at_0004)

    db = Database(url_at_0004)
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
