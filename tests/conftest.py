"""Fixtures shared by the service tests. Every database test runs twice: on an SQLite file
and on the real PostgreSQL (127.0.0.1:5432, database ``test``, a schema of its own)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from claims_api.config import Settings
from claims_api.container import Container, build_container
from claims_api.inference.service import ModelHolder
from claims_api.main import create_app
from claims_api.migrate import upgrade
from claims_api.models import Base
from data.paths import default_dataset_dir
from tests.support.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "FRESHCLAIM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("FRESHCLAIM_REQUIRE_POSTGRES") == "1"


def dataset_dir() -> Path:
    return default_dataset_dir()


def _postgres_available() -> str | None:
    try:
        engine = create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable: {type(exc).__name__}"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def migrated_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'freshclaim.db'}"
        upgrade(url)
        yield url
        return
    with migrated_postgres_schema() as url:
        yield url


@contextmanager
def migrated_postgres_schema() -> Iterator[str]:
    """A URL of a fresh, migrated schema of its own in the test PostgreSQL, dropped after;
    skips (fails under FRESHCLAIM_REQUIRE_POSTGRES=1) where PostgreSQL is not reachable."""
    problem = _postgres_available()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(problem)
        pytest.skip(problem)
    schema = f"fct_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _empty_tables(url: str) -> None:
    engine = create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if url.startswith("sqlite"):
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
        else:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(migrated_url: str) -> str:
    _empty_tables(migrated_url)
    return migrated_url


@pytest.fixture
def backend(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgres"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, tiny_model_path: Path) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        model_path=tiny_model_path,
        secret_key="test-secret-" + "x" * 32,
        background_workers=False,
    )


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    container = build_container(settings)
    yield container
    container.db.dispose()


@pytest.fixture
def client(container: Container):
    from fastapi.testclient import TestClient

    with TestClient(create_app(container=container)) as test_client:
        yield test_client


@pytest.fixture
def api(client, container: Container):
    from tests.support.api import Api

    return Api(client, container)


@pytest.fixture
def unloaded_models() -> ModelHolder:
    return ModelHolder(None)


@pytest.fixture
def clock():
    from tests.support.clock import Clock

    return Clock()


@pytest.fixture
def dispatcher(container: Container, clock):
    """A webhook dispatcher on the test's movable clock, with fixed jitter."""
    from claims_api.webhooks.dispatch import WebhookDispatcher

    sender = WebhookDispatcher(container.db, timeout_s=5, clock=clock, jitter=lambda: 0.5)
    yield sender
    sender.close()
