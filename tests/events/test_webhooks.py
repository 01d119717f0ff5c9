"""Webhooks delivered as a payments platform delivers them: managed endpoints, Standard
Webhooks signatures (checked with the reference ``standardwebhooks`` package), delivery outside
any transaction, per-claim order, retries on a schedule, dead letters and replay. Every test
runs on SQLite and PostgreSQL, against a real HTTP receiver on 127.0.0.1; time moves on a clock
the test holds instead of being slept through."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import standardwebhooks
import standardwebhooks.webhooks
from sqlalchemy import select

from claims_api.auth.service import create_api_key
from claims_api.background import outbox_relay
from claims_api.db import utcnow
from claims_api.events import service as events
from claims_api.events.catalogue import TYPE_NAMES
from claims_api.events.models import OutboxEvent
from claims_api.webhooks import dispatch
from claims_api.webhooks.dispatch import RETRY_SCHEDULE_S, WebhookDispatcher
from claims_api.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.support.webhook_receiver import Receiver, ReceiverServer


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"webhook_allow_private_addresses": True})


@pytest.fixture
def admin(container) -> dict[str, str]:
    with container.db.session() as session:
        _, key = create_api_key(session, "admin", "test admin")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def receivers() -> Iterator[list[ReceiverServer]]:
    started: list[ReceiverServer] = []
    yield started
    for server in started:
        server.close()


@pytest.fixture
def new_receiver(receivers):
    def start(*script: int) -> Receiver:
        server = ReceiverServer()
        server.receiver.script.extend(script)
        receivers.append(server)
        return server.receiver

    return start


def _register(api, admin, url: str, **extra) -> dict:
    # every type but orders': the order.delivered before each claim is not what these tests
    # are about
    not_orders = [name for name in TYPE_NAMES if not name.startswith("order.")]
    subscribed = {"event_types": not_orders, **extra}
    response = api.client.post("/v1/webhooks", headers=admin, json={"url": url, **subscribed})
    assert response.status_code == 201, response.text
    return response.json()


def _auto_approved_claim(api, order_id: str = "ord-1", seed: int = 0) -> str:
    """A claim the policy approves and pays at once: claim.submitted, claim.approved, then
    claim.paid."""
    customer = api.customer()
    api.put_order(order_id)
    claim = api.claim(customer, [api.upload_fruit(customer, seed=seed)], order_id=order_id).json()
    assert claim["status"] == "paid", claim
    return claim["id"]


def _relay(container) -> None:
    relay = outbox_relay(container.db)
    while relay.run_once():
        pass


def _events(container) -> list[OutboxEvent]:
    with container.db.read_session() as session:
        events = select(OutboxEvent).where(OutboxEvent.aggregate_type != "order")
        return list(session.scalars(events.order_by(OutboxEvent.id)))


def _deliveries(container, endpoint_id: str) -> list[WebhookDelivery]:
    with container.db.read_session() as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
                .order_by(WebhookDelivery.sequence)
            )
        )


def _run_schedule(dispatcher, clock, passes: int = len(RETRY_SCHEDULE_S) + 2) -> None:
    """Sends what is due, then moves past the longest retry delay, ``passes`` times."""
    for _ in range(passes):
        dispatcher.drain()
        clock.advance(hours=11)


def test_deliveries_carry_standard_webhooks_signatures_and_per_claim_sequences(
    api, container, admin, dispatcher, new_receiver, monkeypatch
):
    receiver = new_receiver()
    endpoint = _register(api, admin, receiver.url, event_types=["claim.*"])
    assert endpoint["secret"].startswith("whsec_")
    claim_id = _auto_approved_claim(api)
    _relay(container)

    assert dispatcher.drain() == 3

    verifier = standardwebhooks.Webhook(endpoint["secret"])
    documents = [verifier.verify(r.body, r.headers) for r in receiver.requests]
    assert [d["type"] for d in documents] == ["claim.submitted", "claim.approved", "claim.paid"]
    assert [d["sequence"] for d in documents] == [1, 2, 3]
    assert all(d["aggregate"] == {"type": "claim", "id": claim_id} for d in documents)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [d["id"] for d in documents]
    paid = receiver.requests[2]
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # a tampered body
        verifier.verify(paid.body.replace(b'"approved_cents":600', b'"approved_cents":9600'),
                        paid.headers)  # fmt: skip
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # someone else's secret
        standardwebhooks.Webhook("whsec_" + "QUJD" * 8).verify(paid.body, paid.headers)

    class TenMinutesLater(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(minutes=10)

    monkeypatch.setattr(standardwebhooks.webhooks, "datetime", TenMinutesLater)
    with pytest.raises(standardwebhooks.WebhookVerificationError):  # a replay, 10 minutes on
        verifier.verify(paid.body, paid.headers)


def test_a_rotated_secret_signs_beside_the_old_one_for_a_day(
    api, container, admin, dispatcher, new_receiver, clock
):
    receiver = new_receiver()
    endpoint = _register(api, admin, receiver.url)
    rotated = api.client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", headers=admin)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != endpoint["secret"]
    _auto_approved_claim(api)
    _relay(container)

    dispatcher.drain()

    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new_secret):
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    with container.db.session() as session:  # a day later only the new one signs
        row = session.get(WebhookEndpoint, endpoint["id"])
        row.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
    api.put_order("ord-2")
    _auto_approved_claim(api, "ord-2", seed=1)
    _relay(container)
    dispatcher.drain()
    later = receiver.requests[-1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    standardwebhooks.Webhook(new_secret).verify(later.body, later.headers)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(endpoint["secret"]).verify(later.body, later.headers)


def test_a_receiver_failing_three_times_gets_each_event_once_in_claim_order(
    api, container, admin, dispatcher, new_receiver, clock
):
    receiver = new_receiver(500, 503, 502)
    endpoint = _register(api, admin, receiver.url)
    first = _auto_approved_claim(api)
    second = _auto_approved_claim(api, "ord-2", seed=1)
    _relay(container)

    dispatcher.drain()  # the first event of each claim fails; the second of each waits
    assert len(receiver.requests) == 2 and not receiver.accepted
    _run_schedule(dispatcher, clock)

    events = {e.event_id: e for e in _events(container)}
    accepted = receiver.accepted_ids()
    assert sorted(accepted) == sorted(events)  # every event, exactly once
    for claim_id in (first, second):
        sequences = [events[i].sequence for i in accepted if events[i].aggregate_id == claim_id]
        assert sequences == [1, 2, 3]
    assert len(receiver.requests) == len(events) + 3
    rows = _deliveries(container, endpoint["id"])
    assert all(row.status == "succeeded" for row in rows)
    assert sorted(row.attempts for row in rows) == [1, 1, 1, 1, 2, 3]
    listed = api.client.get(
        f"/v1/webhooks/{endpoint['id']}/deliveries?status=succeeded", headers=admin
    ).json()
    assert len(listed) == 6
    retried = next(d for d in listed if d["attempts"] == 3)
    assert [a["status_code"] for a in retried["attempt_log"]] in ([500, 502, 204], [503, 502, 204])


def test_a_failing_endpoint_causes_no_duplicates_at_a_healthy_one(
    api, container, admin, dispatcher, new_receiver, clock
):
    healthy, broken = new_receiver(), new_receiver(*[500] * 100)
    _register(api, admin, healthy.url)
    _register(api, admin, broken.url)
    _auto_approved_claim(api)
    _relay(container)

    _run_schedule(dispatcher, clock, passes=4)

    assert healthy.accepted_ids() == [e.event_id for e in _events(container)]
    assert len(healthy.requests) == 3
    assert len(broken.requests) == 4 and not broken.accepted  # only the claim's first event


def test_a_dead_delivery_is_kept_counted_and_recovered_in_order(
    api, container, admin, dispatcher, new_receiver, clock
):
    receiver = new_receiver(*[500] * len(RETRY_SCHEDULE_S))
    endpoint = _register(api, admin, receiver.url)
    started = utcnow()
    _auto_approved_claim(api)
    _relay(container)

    _run_schedule(dispatcher, clock)

    rows = _deliveries(container, endpoint["id"])
    assert [(r.event_type, r.status, r.attempts) for r in rows] == [
        ("claim.submitted", "dead", len(RETRY_SCHEDULE_S)),
        # held back behind the dead one, never overtaking it
        ("claim.approved", "pending", 0),
        ("claim.paid", "pending", 0),
    ]
    dead = api.client.get(f"/v1/webhooks/{endpoint['id']}/deliveries?status=dead", headers=admin)
    assert len(dead.json()) == 1 and len(dead.json()[0]["attempt_log"]) == len(RETRY_SCHEDULE_S)
    health = api.client.get(f"/v1/webhooks/{endpoint['id']}", headers=admin).json()["health"]
    assert health["dead"] == 1 and health["last_failure"] == "HTTP 500"

    recovered = api.client.post(
        f"/v1/webhooks/{endpoint['id']}/recover",
        headers=admin,
        json={"since": started.isoformat()},
    )
    assert recovered.status_code == 202 and recovered.json() == {"requeued": 1}
    dispatcher.drain()

    types = [r.document["type"] for r in receiver.accepted]
    assert types == ["claim.submitted", "claim.approved", "claim.paid"]
    assert all(r.status == "succeeded" for r in _deliveries(container, endpoint["id"]))


def test_retry_resends_one_delivery_with_the_same_id(
    api, container, admin, dispatcher, new_receiver
):
    receiver = new_receiver()
    endpoint = _register(api, admin, receiver.url, event_types=["claim.paid"])
    _auto_approved_claim(api)
    _relay(container)
    dispatcher.drain()
    [delivery] = _deliveries(container, endpoint["id"])

    retried = api.client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/{delivery.id}/retry", headers=admin
    )
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    dispatcher.drain()

    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.event_id] * 2
    missing = api.client.post(
        f"/v1/webhooks/{endpoint['id']}/deliveries/dlv_x/retry", headers=admin
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "delivery_not_found"


def test_a_relay_dying_between_post_and_record_loses_nothing(
    api, container, admin, clock, new_receiver, monkeypatch
):
    receiver = new_receiver()
    endpoint = _register(api, admin, receiver.url)
    _auto_approved_claim(api)
    _relay(container)
    crashing = WebhookDispatcher(container.db, timeout_s=5, clock=clock)

    def crash(*args):
        raise SystemExit("killed after the POST")

    monkeypatch.setattr(crashing, "_record", crash)
    with pytest.raises(SystemExit):
        crashing.run_once()
    crashing.close()
    assert len(receiver.requests) == 1  # sent, never recorded
    assert _deliveries(container, endpoint["id"])[0].status == "sending"

    restarted = WebhookDispatcher(container.db, timeout_s=5, clock=clock)
    try:
        assert restarted.drain() == 0  # the lease still holds the delivery
        clock.advance(minutes=2)
        restarted.drain()
    finally:
        restarted.close()

    ids = [r.headers["webhook-id"] for r in receiver.requests]
    events = [e.event_id for e in _events(container)]
    assert ids == [events[0], events[0], *events[1:]]  # a duplicate of the first, then the rest
    assert all(r.status == "succeeded" for r in _deliveries(container, endpoint["id"]))


def test_410_disables_the_endpoint_and_says_so_in_an_event(
    api, container, admin, dispatcher, new_receiver, clock
):
    receiver = new_receiver(410)
    endpoint = _register(api, admin, receiver.url)
    _auto_approved_claim(api)
    _relay(container)

    _run_schedule(dispatcher, clock, passes=3)

    assert len(receiver.requests) == 1  # nothing more is sent to a disabled endpoint
    shown = api.client.get(f"/v1/webhooks/{endpoint['id']}", headers=admin).json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    disabled = [e for e in _events(container) if e.event_type == "webhook.endpoint_disabled"]
    assert len(disabled) == 1 and disabled[0].payload["endpoint_id"] == endpoint["id"]

    enabled = api.client.patch(
        f"/v1/webhooks/{endpoint['id']}", headers=admin, json={"enabled": True}
    )
    assert enabled.json()["enabled"] is True and enabled.json()["disabled_reason"] is None
    _relay(container)
    _run_schedule(dispatcher, clock, passes=2)
    accepted = [r.document["type"] for r in receiver.accepted]
    assert sorted(accepted) == [
        "claim.approved",
        "claim.paid",
        "claim.submitted",
        "webhook.endpoint_disabled",
    ]
    assert accepted.index("claim.submitted") < accepted.index("claim.approved")
    assert accepted.index("claim.approved") < accepted.index("claim.paid")


def test_retry_after_is_honoured_and_a_redirect_is_a_failure(
    api, container, admin, dispatcher, new_receiver, clock
):
    throttled = new_receiver(429)
    throttled.extra_headers["Retry-After"] = "3600"
    moved = new_receiver(301)
    first = _register(api, admin, throttled.url, event_types=["claim.approved"])
    second = _register(api, admin, moved.url, event_types=["claim.approved"])
    _auto_approved_claim(api)
    _relay(container)

    dispatcher.drain()

    [waiting] = _deliveries(container, first["id"])
    assert waiting.status == "pending" and waiting.last_status_code == 429
    assert waiting.next_attempt_at >= clock.now + timedelta(seconds=3590)
    [redirected] = _deliveries(container, second["id"])
    assert redirected.status == "pending" and redirected.last_error == "HTTP 301"
    clock.advance(seconds=10)
    dispatcher.drain()
    assert len(throttled.requests) == 1 and len(moved.requests) == 2


def test_an_endpoint_failing_for_five_days_is_disabled(
    api, container, admin, dispatcher, new_receiver, clock
):
    receiver = new_receiver(*[500] * 50)
    endpoint = _register(api, admin, receiver.url)
    for day in range(6):
        with container.db.session() as session:
            events.emit(session, "customer.erased", "customer", f"cust-{day}", {})
        _relay(container)
        dispatcher.drain()
        clock.advance(days=1)
    shown = api.client.get(f"/v1/webhooks/{endpoint['id']}", headers=admin).json()
    assert shown["enabled"] is False and "no successful delivery since" in shown["disabled_reason"]


def test_endpoint_management(api, admin, container, monkeypatch):
    hooks = "/v1/webhooks"
    created = _register(
        api, admin, "https://hooks.example.com/freshclaim", event_types=["claim.*"],
        description="shop backend",
    )  # fmt: skip
    listed = api.client.get(hooks, headers=admin).json()
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0] and listed[0]["health"]["pending"] == 0
    patched = api.client.patch(
        f"{hooks}/{created['id']}", headers=admin, json={"event_types": ["claim.paid"]}
    )
    assert patched.status_code == 200 and patched.json()["event_types"] == ["claim.paid"]

    def refused(body: dict, code: str) -> None:
        response = api.client.post(hooks, headers=admin, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == code

    refused({"url": "ftp://example.com/x"}, "invalid_webhook_url")
    refused({"url": "https://user:pw@example.com/x"}, "invalid_webhook_url")
    refused({"url": "https:///nohost"}, "invalid_webhook_url")
    refused({"url": "https://example.com/x", "event_types": ["claim.payd"]}, "unknown_event_type")
    assert api.client.get(hooks, headers=api.shop_headers()).status_code == 403
    assert api.client.get(hooks).status_code == 401

    container.settings.webhook_allow_private_addresses = False
    for url in ("http://127.0.0.1:8080/x", "http://10.1.2.3/x", "http://[::1]/x",
                "http://169.254.169.254/latest/meta-data", "http://localhost/x"):  # fmt: skip
        refused({"url": url}, "invalid_webhook_url")

    assert api.client.delete(f"{hooks}/{created['id']}", headers=admin).status_code == 204
    gone = api.client.get(f"{hooks}/{created['id']}", headers=admin)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "webhook_not_found"


def test_sequences_count_per_aggregate(container):
    with container.db.session() as session:
        numbers = [
            events.emit(session, "claim.paid", "claim", claim, {}).sequence
            for claim in ("a", "b", "a", "a", "b")
        ]
    assert numbers == [1, 1, 2, 3, 2]


def test_dispatch_module_keeps_svix_schedule():
    assert RETRY_SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert sum(RETRY_SCHEDULE_S) / 3600 == pytest.approx(27.6, abs=0.1)
    assert dispatch.FAILING_DAYS_BEFORE_DISABLE == 5


def _cli(settings, *args: str) -> str:
    from typer.testing import CliRunner

    from claims_api.cli import app
    from claims_api.config import get_settings

    env = {
        "FRESHCLAIM_HOME": str(settings.home),
        "FRESHCLAIM_DATABASE_URL": settings.database_url,
        "FRESHCLAIM_SECRET_KEY": settings.secret_key,
        "FRESHCLAIM_WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
    }
    get_settings.cache_clear()  # the CLI reads its settings from this environment
    try:
        result = CliRunner().invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


def test_the_cli_manages_endpoints_and_replays_deliveries(
    api, container, settings, dispatcher, new_receiver, clock
):
    import json

    receiver = new_receiver(*[500] * len(RETRY_SCHEDULE_S))
    created = _cli(settings, "webhooks", "create", "--url", receiver.url, "--event-type", "claim.*")
    secret = created.strip().splitlines()[-1]
    [endpoint] = json.loads(_cli(settings, "webhooks", "list"))
    assert endpoint["url"] == receiver.url and endpoint["event_types"] == ["claim.*"]
    _auto_approved_claim(api)
    _relay(container)
    _run_schedule(dispatcher, clock)

    dead = json.loads(_cli(settings, "webhooks", "deliveries", endpoint["id"], "--status", "dead"))
    assert len(dead) == 1 and len(dead[0]["attempt_log"]) == len(RETRY_SCHEDULE_S)
    since = (utcnow() - timedelta(hours=1)).isoformat()
    assert "requeued 1 deliveries" in _cli(
        settings, "webhooks", "recover", endpoint["id"], "--since", since
    )
    dispatcher.drain()
    for request in receiver.accepted:
        standardwebhooks.Webhook(secret).verify(request.body, request.headers)
    types = [r.document["type"] for r in receiver.accepted]
    assert types == ["claim.submitted", "claim.approved", "claim.paid"]

    _cli(settings, "webhooks", "retry", endpoint["id"], dead[0]["id"])
    dispatcher.drain()
    assert receiver.accepted[-1].headers["webhook-id"] == dead[0]["event_id"]
    rotated = _cli(settings, "webhooks", "rotate-secret", endpoint["id"])
    assert rotated.strip().splitlines()[-1].startswith("whsec_")
    disabled = json.loads(_cli(settings, "webhooks", "update", endpoint["id"], "--disable"))
    assert disabled["enabled"] is False
    _cli(settings, "webhooks", "delete", endpoint["id"])
    assert json.loads(_cli(settings, "webhooks", "list")) == []


def test_a_slow_receiver_holds_no_database_lock(api, container, admin, dispatcher, new_receiver):
    """On SQLite one open write transaction would stop every upload and claim: a delivery in
    flight must leave the database free."""
    import threading
    import time

    receiver = new_receiver()
    receiver.delay_s = 3.0
    _register(api, admin, receiver.url, event_types=["claim.paid"])
    _auto_approved_claim(api)
    _relay(container)
    sending = threading.Thread(target=dispatcher.run_once)
    sending.start()
    try:
        assert receiver.in_request.wait(10)
        started = time.perf_counter()
        api.put_order("ord-2")
        claim = _auto_approved_claim(api, "ord-2", seed=1)  # upload + claim + payout, committed
        elapsed = time.perf_counter() - started
    finally:
        sending.join()
    assert claim and elapsed < 2.0, f"upload + claim took {elapsed:.2f} s behind a slow receiver"
    assert receiver.accepted and sending.is_alive() is False
