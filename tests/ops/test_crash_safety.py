"""Crash safety of the real ``freshclaim serve`` process on PostgreSQL.

Clients submit claims without pause (rotten photos are paid at once, fresh ones wait for a
person; each claim carries an Idempotency-Key that the client retries after a connection
error) while the server is killed with SIGKILL at seeded random moments and restarted. Then the
database must show: every acknowledged claim with its photos, no claim paid twice, no line paid
beyond its value, a ledger that sums to zero, every outbox event applied once to each in-process
consumer, and no review lease past its expiry. SIGTERM, by contrast, lets an in-flight request
finish and the process exit 0."""

from __future__ import annotations

import http.client
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.common import free_port
from claims_api.auth.service import create_api_key, create_reviewer
from claims_api.claims.models import Claim, ClaimPhoto
from claims_api.compensation.models import LedgerEntry, LedgerPosting
from claims_api.config import Settings
from claims_api.db import Database, utcnow
from claims_api.events.models import ConsumedEvent, OutboxEvent
from claims_api.events.registry import registered_consumers
from claims_api.orders.models import OrderLine
from claims_api.photos.models import Photo
from claims_api.photos.storage import LocalPhotoStorage
from data.synthetic import make_fruit
from tests.conftest import migrated_postgres_schema
from tests.support.api import jpeg_bytes
from tests.support.paths import REPO
from tests.support.server import wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLI = [sys.executable, "-m", "claims_api.cli"]
LEASE_SECONDS = 3
KILLS = 3
REVIEWER_PASSWORD = "correct-horse-1"
# a client gives up a request after this long: a killed server's connections are refused or
# reset at once, so only a hung server would reach it
REQUEST_TIMEOUT = 20.0


@dataclass
class Service:
    """One database and home folder, and the ``freshclaim serve`` process running on them."""

    url: str
    home: Path
    model_path: Path
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "FRESHCLAIM_HOME": str(self.home),
            "FRESHCLAIM_DATABASE_URL": self.url,
            "FRESHCLAIM_MODEL_PATH": str(self.model_path),
            "FRESHCLAIM_SECRET_KEY": "crash-test-" + "x" * 32,
            "FRESHCLAIM_BACKGROUND_WORKERS": "true",
            "FRESHCLAIM_REVIEW_LEASE_SECONDS": str(LEASE_SECONDS),
            # the abuse limits are another test's subject: a script this fast would meet them
            "FRESHCLAIM_PHOTO_UPLOADS_PER_MINUTE": "0",
            "FRESHCLAIM_CLAIMS_PER_MINUTE": "0",
            "FRESHCLAIM_PHOTOS_PER_DAY": "0",
        }
        for variable in ("PROMETHEUS_MULTIPROC_DIR", "FRESHCLAIM_REDIS_URL", "FRESHCLAIM_NATS_URL"):
            env.pop(variable, None)
        return env

    def start(self) -> None:
        with self.log.open("ab") as log_file:
            self.process = subprocess.Popen(
                [*CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env(),
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        wait_until_ready(f"{self.base}/readyz", self.process, log=self.log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def drain(self) -> None:
        """``freshclaim worker --once`` until the outbox has nothing left to publish."""
        for _ in range(10):
            done = subprocess.run(
                [*CLI, "worker", "--once"], env=self.env(), cwd=REPO, capture_output=True
            )
            assert done.returncode == 0, done.stderr.decode()[-2000:]
            if done.stdout.startswith(b"published 0 events"):
                return
        raise AssertionError("the outbox did not drain in 10 passes")


@pytest.fixture
def service(tmp_path: Path, tiny_model_path: Path) -> Iterator[Service]:
    with migrated_postgres_schema() as url:
        running = Service(url, tmp_path / "home", tiny_model_path, tmp_path / "server.log")
        try:
            yield running
        finally:
            if running.process is not None and running.process.poll() is None:
                running.process.kill()
                running.process.wait(timeout=10)


def shop_key(url: str) -> str:
    db = Database(url)
    try:
        with db.session() as session:
            return create_api_key(session, "shop", "crash test")[1]
    finally:
        db.dispose()


@dataclass
class Acknowledged:
    claim_id: str
    photo_ids: list[str]
    status: str


class Client:
    """A shop backend and one customer's mini-program in one loop: put an order, upload a
    photo, submit the claim; any request that meets a dead server is retried (the claim with
    its same Idempotency-Key) until it is answered or the test stops."""

    def __init__(self, base: str, key: str, name: str, seed: int, stop: threading.Event) -> None:
        self.base = base
        self.shop = {"Authorization": f"Bearer {key}"}
        self.customer_id = f"cust-{name}"
        self.rng = random.Random(seed)
        self.stop = stop
        self.acknowledged: list[Acknowledged] = []
        self.retries = 0
        self.failures: list[str] = []

    def send(self, http: httpx.Client, method: str, path: str, **kwargs) -> httpx.Response | None:
        """The answer, or None when the test stopped first; retries connection errors and
        the 503 a starting server may give."""
        while not self.stop.is_set():
            try:
                response = http.request(method, f"{self.base}{path}", **kwargs)
            except httpx.TransportError:
                self.retries += 1
                time.sleep(0.2)
                continue
            if response.status_code != 503:
                return response
            time.sleep(0.2)
        return None

    def run(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            token = self.send(http, "POST", f"/v1/customers/{self.customer_id}/tokens",
                              headers=self.shop)  # fmt: skip
            if token is None:
                return
            customer = {"Authorization": f"Bearer {token.json()['token']}"}
            while not self.stop.is_set():
                try:
                    self.one_claim(http, customer)
                except AssertionError as exc:
                    self.failures.append(str(exc))
                    return

    def one_claim(self, http: httpx.Client, customer: dict[str, str]) -> None:
        order_id = f"ord-{self.customer_id}-{secrets.token_hex(4)}"
        delivered = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        order = {
            "customer_id": self.customer_id,
            "delivered_at": delivered,
            "lines": [{"line_id": "L1", "sku": "SKU-apple", "produce": "apple",
                       "quantity": 5, "unit_price_cents": 300}],
        }  # fmt: skip
        response = self.send(http, "PUT", f"/v1/orders/{order_id}", json=order, headers=self.shop)
        if response is None:
            return
        assert response.status_code in (200, 201), response.text
        rotten = self.rng.random() < 0.6
        photo = jpeg_bytes(make_fruit("apple", rotten=rotten, seed=self.rng.randrange(10_000)))
        files = {"file": ("photo.jpg", photo, "image/jpeg")}
        response = self.send(http, "POST", "/v1/photos", files=files, headers=customer)
        if response is None:
            return
        assert response.status_code == 201, response.text
        photo_id = response.json()["id"]
        # 3 of 5: the same claim made twice (a retried key not honoured) would overpay the line
        body = {"order_id": order_id, "line_id": "L1", "issue": "rotten",
                "affected_quantity": 3, "photo_ids": [photo_id]}  # fmt: skip
        headers = {**customer, "Idempotency-Key": secrets.token_hex(12)}
        response = self.send(http, "POST", "/v1/claims", json=body, headers=headers)
        if response is None:
            return
        assert response.status_code in (200, 201), response.text
        claim = response.json()
        self.acknowledged.append(Acknowledged(claim["id"], claim["photo_ids"], claim["status"]))


class Reviewer:
    """Leases the most urgent claim and walks away (a closed browser tab): each lease must end
    by its expiry, whatever happened to the server meanwhile."""

    def __init__(self, base: str, username: str, stop: threading.Event) -> None:
        self.base = base
        self.username = username
        self.stop = stop
        self.leases = 0

    def run(self) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            token: str | None = None
            while not self.stop.wait(0.5):
                try:
                    if token is None:
                        login = http.post(f"{self.base}/v1/auth/login", json={
                            "username": self.username, "password": REVIEWER_PASSWORD})  # fmt: skip
                        if login.status_code != 200:
                            continue
                        token = login.json()["token"]
                    leased = http.post(f"{self.base}/v1/review/lease",
                                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                    self.leases += leased.status_code == 200
                except httpx.TransportError:
                    continue


def add_reviewer(url: str) -> str:
    username = f"rev-{secrets.token_hex(3)}"
    db = Database(url)
    try:
        with db.session() as session:
            create_reviewer(session, username, REVIEWER_PASSWORD)
    finally:
        db.dispose()
    return username


def test_sigkill_at_random_moments_loses_no_acknowledged_claim_and_pays_nothing_twice(
    service: Service,
) -> None:
    key = shop_key(service.url)
    username = add_reviewer(service.url)
    service.start()
    stop = threading.Event()
    clients = [Client(service.base, key, f"c{i}", seed=i, stop=stop) for i in range(3)]
    reviewer = Reviewer(service.base, username, stop)
    threads = [threading.Thread(target=c.run, daemon=True) for c in [*clients, reviewer]]
    for thread in threads:
        thread.start()
    rng = random.Random(24)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.5, 4.0))
            service.kill()
            service.start()
        time.sleep(2.0)  # the clients get through after the last restart
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)
    assert service.stop() == 0, service.log.read_text()[-3000:]

    acknowledged = [ack for client in clients for ack in client.acknowledged]
    for client in clients:
        assert not client.failures, client.failures
    assert len(acknowledged) >= 10, "too few claims went through to test anything"
    assert sum(client.retries for client in clients) > 0, "no request met a killed server"
    statuses = {ack.status for ack in acknowledged}
    assert {"paid", "in_review"} <= statuses, statuses

    time.sleep(LEASE_SECONDS + 0.5)  # every lease taken has expired by now
    service.drain()
    db = Database(service.url)
    try:
        with db.read_session() as session:
            check_acknowledged_claims(session, acknowledged, Settings(home=service.home))
            check_ledger(session)
            check_events_consumed_once(session)
            expired = session.scalar(
                select(func.count())
                .select_from(Claim)
                .where(Claim.lease_holder.is_not(None), Claim.lease_expires_at < utcnow())
            )
            assert expired == 0, f"{expired} review leases outlived their expiry"
    finally:
        db.dispose()


def check_acknowledged_claims(
    session: Session, acknowledged: list[Acknowledged], settings: Settings
) -> None:
    storage = LocalPhotoStorage(settings.photo_dir)
    for ack in acknowledged:
        claim = session.get(Claim, ack.claim_id)
        assert claim is not None, f"acknowledged claim {ack.claim_id} is gone"
        assert claim.photo_ids == ack.photo_ids
        for photo_id in ack.photo_ids:
            photo = session.get(Photo, photo_id)
            assert photo is not None and storage.exists(photo.storage_key), photo_id
    # each order gets one claim, retried under one key: a second claim on a line is a retry
    # that was not recognised as one
    made_twice = session.execute(
        select(Claim.order_id).group_by(Claim.order_id, Claim.line_id).having(func.count() > 1)
    ).all()
    assert made_twice == [], "claims made twice from one Idempotency-Key"
    orphans = session.scalar(
        select(func.count())
        .select_from(ClaimPhoto)
        .where(ClaimPhoto.photo_id.not_in(select(Photo.id)))
    )
    assert orphans == 0


def check_ledger(session: Session) -> None:
    assert session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))) == 0
    unbalanced = session.execute(
        select(LedgerEntry.posting_id)
        .group_by(LedgerEntry.posting_id)
        .having(func.sum(LedgerEntry.amount_cents) != 0)
    ).all()
    assert unbalanced == []
    twice = session.execute(
        select(LedgerPosting.claim_id)
        .where(LedgerPosting.kind == "payout")
        .group_by(LedgerPosting.claim_id)
        .having(func.count() > 1)
    ).all()
    assert twice == [], "claims paid twice"
    paid_per_line = (
        select(Claim.order_id, Claim.line_id, func.sum(LedgerPosting.amount_cents).label("paid"))
        .join(LedgerPosting, LedgerPosting.claim_id == Claim.id)
        .where(LedgerPosting.kind == "payout")
        .group_by(Claim.order_id, Claim.line_id)
        .subquery()
    )
    overpaid = session.execute(
        select(paid_per_line.c.order_id, paid_per_line.c.paid)
        .join(
            OrderLine,
            (OrderLine.order_id == paid_per_line.c.order_id)
            & (OrderLine.line_id == paid_per_line.c.line_id),
        )
        .where(paid_per_line.c.paid > OrderLine.quantity * OrderLine.unit_price_cents)
    ).all()
    assert overpaid == []
    paid_claims = session.scalars(select(Claim).where(Claim.status == "paid")).all()
    assert paid_claims, "no claim was paid"
    for claim in paid_claims:
        payouts = [
            p.amount_cents
            for p in session.scalars(
                select(LedgerPosting).where(
                    LedgerPosting.claim_id == claim.id, LedgerPosting.kind == "payout"
                )
            )
        ]
        assert payouts == [claim.approved_cents], (claim.id, payouts, claim.approved_cents)


def check_events_consumed_once(session: Session) -> None:
    pending = session.scalar(
        select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
    )
    assert pending == 0
    events = session.execute(select(OutboxEvent.event_id, OutboxEvent.event_type)).all()
    assert events
    consumed = set(session.execute(select(ConsumedEvent.consumer, ConsumedEvent.event_id)).all())
    expected = {
        (consumer.name, event_id)
        for consumer in registered_consumers()
        for event_id, event_type in events
        if consumer.wants(event_type)
    }
    assert expected, "no event is meant for an in-process consumer"
    # (consumer, event_id) is the table's primary key: a set equality means exactly once each
    assert consumed == expected, (len(consumed - expected), len(expected - consumed))


def test_sigterm_lets_an_in_flight_upload_finish_then_exits_0(service: Service) -> None:
    key = shop_key(service.url)
    service.start()
    token = httpx.post(f"{service.base}/v1/customers/cust-term/tokens",
                       headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert token.status_code == 201, token.text
    boundary = "crash-test-boundary"
    photo = jpeg_bytes(make_fruit("apple", rotten=True, seed=1))
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    connection.putrequest("POST", "/v1/photos")
    connection.putheader("Authorization", f"Bearer {token.json()['token']}")
    connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    half = len(body) // 2
    connection.send(body[:half])  # the request is in flight: its body is half sent
    time.sleep(0.5)
    assert service.process is not None
    service.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)  # the server is shutting down while the client is still sending
    connection.send(body[half:])
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    assert response.status == 201, answer[-500:]
    started = time.monotonic()
    assert service.stop(timeout=10) == 0, service.log.read_text()[-3000:]
    assert time.monotonic() - started < 10
