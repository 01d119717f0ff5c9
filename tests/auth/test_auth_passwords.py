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


def test_logins_waiting_for_a_password_slot_hold_no_request_thread(
    client, container: Container, reviewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logins past LOGIN_THREADS wait on the event loop: a flood of them cannot take every
    threadpool thread from the other routes."""
    from claims_api.deps import LOGIN_THREADS

    inside, most, lock, gate = 0, 0, threading.Lock(), threading.Event()
    real = service.authenticate_reviewer

    def gated(*args, **kwargs):
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            gate.wait(timeout=30)
            return real(*args, **kwargs)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(service, "authenticate_reviewer", gated)
    answers: list[int] = []

    def wrong_login(username: str) -> None:
        answer = client.post("/v1/auth/login", json={"username": username, "password": "nope"})
        answers.append(answer.status_code)

    threads = [
        threading.Thread(target=wrong_login, args=(f"{reviewer}{i}",))
        for i in range(3 * LOGIN_THREADS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while most < LOGIN_THREADS and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # give any thread beyond the limit time to show up
    assert most == LOGIN_THREADS
    assert client.get("/healthz").status_code == 200  # the others' routes still answer
    gate.set()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [401] * (3 * LOGIN_THREADS)
