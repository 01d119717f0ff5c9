"""SQLite write transactions of one process queue on a lock: the next writer starts as soon as
the previous one commits, and one that cannot start in time gets a clear 503."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from claims_api import db as db_module
from claims_api.db import Database, DatabaseBusy
from claims_api.errors import install_error_handlers


@pytest.fixture
def database(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'queue.db'}")
    with database.session() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    yield database
    database.dispose()


def test_a_waiting_writer_starts_right_after_the_holder_commits(database: Database) -> None:
    released_at: list[float] = []
    started_at: list[float] = []
    holding = threading.Event()

    def holder() -> None:
        with database.session() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            holding.set()
            time.sleep(0.3)
        released_at.append(time.perf_counter())

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(5)
    with database.session() as session:
        started_at.append(time.perf_counter())
        session.execute(text("INSERT INTO t VALUES (2)"))
    thread.join(5)
    # SQLite's busy handler would wake 70-80 ms after a 300 ms hold; the queue hands over
    assert started_at[0] - released_at[0] < 0.05
    with database.read_session() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 2


def test_a_writer_that_cannot_start_in_time_is_told_the_service_is_busy(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db_module, "SQLITE_BUSY_TIMEOUT_S", 0.05)
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/write")
    def write() -> dict:
        with database.session() as session:
            session.execute(text("INSERT INTO t VALUES (3)"))
        return {"ok": True}

    with database.session():
        with pytest.raises(DatabaseBusy), database.session():
            pass
        response = TestClient(app).post("/write")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_busy"
    assert response.headers["retry-after"] == "5"
    assert TestClient(app).post("/write").status_code == 200
