"""``freshclaim worker``: the outbox relay and the lease sweeper in a process of their own, for
replicas that run with FRESHCLAIM_BACKGROUND_WORKERS=false."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import func, select, update
from typer.testing import CliRunner

from claims_api.claims.models import Claim
from claims_api.cli import app
from claims_api.config import get_settings
from claims_api.db import utcnow
from claims_api.events.models import OutboxEvent
from tests.conftest import REPO


def _worker_once(settings) -> str:
    get_settings.cache_clear()  # the CLI reads its settings from this environment
    try:
        result = CliRunner().invoke(app, ["worker", "--once"], env=_env(settings))
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


def _env(settings) -> dict[str, str]:
    return {
        "FRESHCLAIM_HOME": str(settings.home),
        "FRESHCLAIM_DATABASE_URL": settings.database_url,
        "FRESHCLAIM_SECRET_KEY": settings.secret_key,
    }


def _pending(container) -> int:
    with container.db.read_session() as session:
        return session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )


def _profile(api) -> dict:
    response = api.client.get("/v1/customers/cust-1/profile", headers=api.shop_headers())
    assert response.status_code == 200, response.text
    return response.json()


def test_worker_once_delivers_pending_events_and_releases_expired_leases(api, container, settings):
    customer = api.customer()
    api.put_order()
    api.claim(customer, [api.upload_fruit(customer)])  # submitted, approved, paid
    api.put_order("ord-2")
    manual = api.claim(
        customer, [api.upload_fruit(customer, rotten=False, seed=3)], order_id="ord-2"
    ).json()
    assert manual["status"] == "in_review"
    leased = api.client.post("/v1/review/lease", headers=api.reviewer()).json()
    with container.db.session() as session:  # the reviewer walked away long ago
        session.execute(
            update(Claim)
            .where(Claim.id == leased["claim_id"])
            .values(lease_expires_at=utcnow() - timedelta(minutes=5))
        )
    assert _pending(container) == 7  # nothing runs in the background in tests

    output = _worker_once(settings)

    assert "published 7 events, released 1 expired leases" in output
    assert _pending(container) == 0
    with container.db.read_session() as session:
        assert session.get(Claim, leased["claim_id"]).lease_holder is None
    profile = _profile(api)
    assert profile["claims_submitted"] == 2 and profile["claims_paid"] == 1
    assert "published 0 events, released 0 expired leases" in _worker_once(settings)


def test_worker_process_delivers_while_it_runs_and_stops_on_sigterm(api, container, settings):
    customer = api.customer()
    api.put_order()
    api.claim(customer, [api.upload_fruit(customer)])
    env = {**os.environ, **_env(settings), "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "claims_api.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _pending(container) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _pending(container) == 0
        assert _profile(api)["claims_paid"] == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    assert "worker running against" in output
