"""``/metrics``: the figures read from the database at scrape time (review queue, SLA,
payouts, outbox), and, from a real ``freshclaim serve --workers 2``, every worker's counts
summed whichever worker answers the scrape."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from bench.common import free_port
from claims_api.claims.models import Claim
from claims_api.container import Container
from claims_api.db import Database, utcnow
from claims_api.observability import OperationsCollector
from tests.support.paths import REPO
from tests.support.server import wait_until_ready

# (the ledger's series appear with its first posting: the in-process test sees them)
NEW_SERIES = (
    "freshclaim_review_queue_depth",
    "freshclaim_review_queue_oldest_age_seconds",
    "freshclaim_review_claims_past_sla",
    "freshclaim_outbox_backlog",
    "freshclaim_outbox_lag_seconds",
    "freshclaim_metrics_database_up",
    "freshclaim_model_loaded",
)


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict, name: str, **labels: str) -> float:
    matching = [
        v for sample_labels, v in found.get(name, []) if labels.items() <= sample_labels.items()
    ]
    assert len(matching) == 1, (name, labels, found.get(name))
    return matching[0]


def test_the_database_figures_at_scrape_time(api, container: Container) -> None:
    customer = api.customer()
    api.put_order("ord-review")
    waiting = api.claim(
        customer, [api.upload_fruit(customer, rotten=False, seed=3)], order_id="ord-review"
    ).json()
    assert waiting["status"] == "in_review"
    api.put_order("ord-paid")
    paid = api.claim(customer, [api.upload_fruit(customer, seed=4)], order_id="ord-paid").json()
    assert paid["status"] == "paid"
    with container.db.session() as session:  # the waiting claim is an hour past its SLA
        session.execute(
            update(Claim)
            .where(Claim.id == waiting["id"])
            .values(
                sla_deadline=utcnow() - timedelta(hours=1),
                submitted_at=utcnow() - timedelta(hours=5),
            )
        )

    found = samples(api.client.get("/metrics").text)

    assert value(found, "freshclaim_metrics_database_up") == 1
    assert value(found, "freshclaim_review_queue_depth") == 1
    assert value(found, "freshclaim_review_claims_past_sla") == 1
    assert 5 * 3600 <= value(found, "freshclaim_review_queue_oldest_age_seconds") < 5 * 3600 + 60
    assert value(found, "freshclaim_ledger_postings_total", kind="payout") == 1
    with container.db.read_session() as session:
        approved = session.get(Claim, paid["id"]).approved_cents
    assert value(found, "freshclaim_ledger_posted_cents_total", kind="payout") == approved > 0
    assert value(found, "freshclaim_outbox_backlog") >= 2  # no relay runs in these tests
    assert value(found, "freshclaim_outbox_lag_seconds") >= 0
    assert value(found, "freshclaim_claims_decided_total", route="auto") >= 1
    version = container.models.classifier.version
    assert value(found, "freshclaim_model_loaded", model_version=version) == 1


def test_an_unreachable_database_is_reported_not_raised() -> None:
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        families = {family.name: family for family in OperationsCollector(db).collect()}
    finally:
        db.dispose()
    assert list(families) == ["freshclaim_metrics_database_up"]
    assert families["freshclaim_metrics_database_up"].samples[0].value == 0


@pytest.mark.slow
def test_two_workers_counts_are_summed_in_every_scrape(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = {
        **os.environ,
        "FRESHCLAIM_HOME": str(home),
        "FRESHCLAIM_MODEL_PATH": str(tiny_model_path),
        "FRESHCLAIM_SECRET_KEY": "metrics-test-" + "x" * 32,
        "FRESHCLAIM_BACKGROUND_WORKERS": "false",
        "FRESHCLAIM_LOG_FORMAT": "json",
    }
    for variable in ("FRESHCLAIM_DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(variable, None)
    stale = home / "prometheus" / "counter_1.db"  # a previous run's file is not counted
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\0" * 8)
    command = [sys.executable, "-m", "claims_api.cli"]
    subprocess.run([*command, "migrate"], env=env, check=True, capture_output=True, cwd=REPO)
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"{base}/readyz", server, log=log_path)
        requests = 40
        for _ in range(requests):  # a new connection each: the kernel spreads them by port
            assert httpx.get(f"{base}/healthz").status_code == 200
        missing = httpx.get(f"{base}/v1/nothing", headers={"X-Request-ID": "scrape-test-1"})
        assert missing.status_code == 404

        for _ in range(6):  # whichever worker answers, the same totals
            found = samples(httpx.get(f"{base}/metrics").text)
            count = value(
                found, "freshclaim_http_request_seconds_count", route="/healthz", status="200"
            )
            assert count == requests
            for series in NEW_SERIES:
                assert series in found, series
        writers = {p.stem.rsplit("_", 1)[1] for p in (home / "prometheus").glob("histogram_*.db")}
        assert len(writers) == 2, writers  # both workers served some of them
        assert not stale.exists()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("request_id") == "scrape-test-1"]
    assert len(access) == 1, access  # one line per request (uvicorn's own stays off)
    assert access[0]["logger"] == "claims_api.access"
    assert access[0]["http"]["status"] == 404 and access[0]["http"]["route"] == "unmatched"
