"""Failed reviewer logins are counted per username and per client address in the database:
past a limit, logins for that key are refused with 429 before any password is checked, until
the window ends; a success clears its username's count."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from claims_api.auth import service, throttle
from claims_api.auth.models import LoginFailure
from claims_api.auth.throttle import LoginKey, LoginLimits
from claims_api.container import Container
from claims_api.db import utcnow
from tests.web.test_web import login as sign_in_page

PASSWORD = "correct-horse-1"
LIMITS = LoginLimits(per_user=3, per_address=5, window=timedelta(minutes=15))


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={"login_failures_per_user": 3, "login_failures_per_address": 5}
    )


@pytest.fixture
def reviewers(container: Container) -> None:
    with container.db.session() as session:
        for name in ("pat", "sam", "kim"):
            service.create_reviewer(session, name, PASSWORD)


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords actually checked with Argon2."""
    checked: list[str] = []
    real = service._password_matches

    def counting(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(service, "_password_matches", counting)
    return checked


def login(container: Container, username: str, password: str, address: str = "10.0.0.1"):
    return service.authenticate_reviewer(
        container.db, username, password, address=address, limits=LIMITS
    )


def failures(container: Container) -> dict[str, int]:
    with container.db.read_session() as session:
        return dict(session.execute(select(LoginFailure.key, LoginFailure.failures)).all())


def age_windows(container: Container, by: timedelta) -> None:
    with container.db.session() as session:
        for row in session.scalars(select(LoginFailure)):
            row.window_started_at -= by


def test_a_guessed_username_is_refused_even_with_the_right_password_until_the_window_ends(
    container: Container, reviewers: None, password_checks: list[str]
) -> None:
    for attempt in range(3):
        assert login(container, "pat", f"guess-{attempt}") is None
    assert failures(container) == {"user:pat": 3, "addr:10.0.0.1": 3}

    with pytest.raises(service.LoginRefused) as refused:
        login(container, "pat", PASSWORD, address="10.0.0.2")
    assert 890 <= refused.value.retry_after <= 900
    assert PASSWORD not in password_checks  # refused before the Argon2 work

    assert login(container, "sam", PASSWORD) is not None  # other usernames are not locked

    age_windows(container, timedelta(minutes=15, seconds=1))
    assert login(container, "pat", PASSWORD, address="10.0.0.2") is not None
    assert login(container, "pat", "guess-3") is None
    assert failures(container)["user:pat"] == 1  # a new window


def test_a_success_clears_the_usernames_count_but_not_the_addresss(
    container: Container, reviewers: None
) -> None:
    assert login(container, "pat", "guess-1") is None
    assert login(container, "pat", "guess-2") is None
    assert login(container, "pat", PASSWORD) is not None
    assert failures(container) == {"addr:10.0.0.1": 2}
    assert login(container, "pat", "guess-3") is None
    assert failures(container)["user:pat"] == 1


def test_one_address_trying_many_usernames_is_refused(
    container: Container, reviewers: None
) -> None:
    for attempt, name in enumerate(["pat", "sam", "kim", "nobody", "root"]):
        assert login(container, name, f"guess-{attempt}") is None
    with pytest.raises(service.LoginRefused):
        login(container, "sam", PASSWORD)
    assert login(container, "sam", PASSWORD, address="10.0.0.9") is not None


def test_ended_windows_start_again_at_one_and_are_deleted(
    container: Container, reviewers: None
) -> None:
    assert login(container, "nobody", "guess", address="10.0.0.7") is None
    assert login(container, "pat", "guess") is None
    age_windows(container, timedelta(minutes=16))
    assert login(container, "pat", "guess") is None
    assert failures(container) == {"user:pat": 1, "addr:10.0.0.1": 1}


def test_limits_of_zero_count_nothing(container: Container, reviewers: None) -> None:
    off = LoginLimits(per_user=0, per_address=0, window=LIMITS.window)
    for attempt in range(5):
        assert (
            service.authenticate_reviewer(
                container.db, "pat", f"guess-{attempt}", address="10.0.0.1", limits=off
            )
            is None
        )
    assert failures(container) == {}


def test_concurrent_failures_all_count(container: Container) -> None:
    """The upsert, from many threads at once (on PostgreSQL, several replicas' worth)."""
    keys = [LoginKey("user:pat", 100), LoginKey("addr:10.0.0.1", 100)]
    errors: list[BaseException] = []

    def fail_five_times() -> None:
        try:
            for _ in range(5):
                with container.db.session() as session:
                    throttle.record_failure(session, keys, LIMITS.window, utcnow())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fail_five_times) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert failures(container) == {"user:pat": 40, "addr:10.0.0.1": 40}


def test_the_api_answers_429_with_retry_after(client, container: Container, reviewers) -> None:
    for attempt in range(3):
        wrong = client.post("/v1/auth/login", json={"username": "pat", "password": f"x{attempt}"})
        assert wrong.status_code == 401
    refused = client.post("/v1/auth/login", json={"username": "pat", "password": PASSWORD})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "too_many_login_attempts"
    assert 1 <= int(refused.headers["retry-after"]) <= 900


def test_the_sign_in_page_says_so(client, container: Container, reviewers) -> None:
    for attempt in range(3):
        assert sign_in_page(client, "pat", f"guess-{attempt}").status_code == 401
    refused = sign_in_page(client, "pat", PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    assert "fc_session" not in refused.cookies


def test_the_cli_unlocks_a_username(container: Container, settings, reviewers) -> None:
    from typer.testing import CliRunner

    from claims_api.cli import app
    from claims_api.config import get_settings

    for attempt in range(3):
        assert login(container, "pat", f"guess-{attempt}") is None

    def unlock(username: str):
        get_settings.cache_clear()  # the CLI reads its settings from this environment
        try:
            return CliRunner().invoke(
                app,
                ["reviewers", "unlock", "--username", username],
                env={
                    "FRESHCLAIM_HOME": str(settings.home),
                    "FRESHCLAIM_DATABASE_URL": settings.database_url,
                },
            )
        finally:
            get_settings.cache_clear()

    unknown = unlock("nosuch")
    assert unknown.exit_code == 1 and "no reviewer is named 'nosuch'" in unknown.output
    result = unlock("pat")
    assert result.exit_code == 0, result.output
    assert login(container, "pat", PASSWORD, address="10.0.0.2") is not None
