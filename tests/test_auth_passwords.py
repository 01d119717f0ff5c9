"""Password checks cost ~0.2 s and 64 MB each (Argon2): they hold no database transaction and
run at most two at a time, whatever the number of logins arriving."""

from __future__ import annotations

import threading
import time

import pytest

from claims_api.auth import service
from claims_api.container import Container


@pytest.fixture
def reviewer(container: Container) -> str:
    with container.db.session() as session:
        service.create_reviewer(session, "pat", "correct-horse-1")
    return "pat"


def test_right_and_wrong_passwords(container: Container, reviewer: str) -> None:
    verified = service.authenticate_reviewer(container.db, reviewer, "correct-horse-1")
    assert verified is not None and verified.username == "pat" and verified.role == "reviewer"
    assert service.authenticate_reviewer(container.db, reviewer, "wrong-horse-1") is None
    assert service.authenticate_reviewer(container.db, "nobody", "correct-horse-1") is None


def test_password_work_runs_two_at_a_time_and_outside_any_transaction(
    container: Container, reviewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    running, most, lock = 0, 0, threading.Lock()
    real = service._passwords

    class SlowHasher:  # PasswordHasher has slots: wrap it rather than patch its method
        hash = staticmethod(real.hash)

        @staticmethod
        def verify(password_hash: str, password: str) -> bool:
            return slow_verify(password_hash, password)

    def slow_verify(password_hash: str, password: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.1)
        # a write transaction starts meanwhile: no lock or connection is held for the check
        with container.db.session() as session:
            session.connection()
        with lock:
            running -= 1
        return real.verify(password_hash, password)

    monkeypatch.setattr(service, "_passwords", SlowHasher())
    results: list[object] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(
                service.authenticate_reviewer(container.db, reviewer, "correct-horse-1")
            )
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 6 and all(r is not None for r in results)
    assert most == 2
