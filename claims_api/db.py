"""Engine, sessions and column types shared by every domain.

SQLite (embedded default) runs in WAL mode and every write transaction starts with
``BEGIN IMMEDIATE`` so writers queue on the database lock instead of failing half-way;
PostgreSQL uses row locks (``SELECT … FOR UPDATE [SKIP LOCKED]``) where the domain asks.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDoc = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def flushed_connection(session: Session) -> Connection:
    """The session's connection, for hot-path statements built once and run without the ORM's
    row loading. A connection does not autoflush as ``session.execute`` does, so the session
    is flushed first: rows added in this transaction are seen (a no-op when nothing is
    pending)."""
    session.flush()
    return session.connection()


def new_id(prefix: str) -> str:
    """A readable, unguessable id such as ``clm_3h5k…``."""
    return f"{prefix}_{secrets.token_hex(12)}"


SQLITE_BUSY_TIMEOUT_S = 30


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get("read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class DatabaseBusy(Exception):
    """No write transaction could start within the busy timeout."""


class Database:
    """Owns the engine and hands out sessions: one short transaction per unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = url.startswith("sqlite")
        # SQLite takes one writer at a time. A BEGIN IMMEDIATE that finds the file locked is
        # retried by SQLite's busy handler, which sleeps 1, 2, 5, 10 ... 100 ms between tries,
        # so under load a claim could wait many times longer than the lock was held. This process's
        # writers queue on a lock instead and start the moment the previous one commits; the
        # busy handler still arbitrates between processes (the CLI, a second worker).
        self._sqlite_writer = threading.Lock() if self.is_sqlite else None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(read_only=True), expire_on_commit=False
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction, committed on success and rolled back on any error."""
        with self._writer_turn(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        # A plain Lock, not an RLock: FastAPI may end a dependency's transaction on another
        # threadpool thread than the one that began it.
        lock = self._sqlite_writer
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            raise DatabaseBusy(f"no write transaction within {SQLITE_BUSY_TIMEOUT_S} s")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
