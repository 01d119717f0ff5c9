"""The admin's webhooks page in the workbench (TestClient): endpoints with their health, the
delivery log, and retry and recover through its CSRF-protected forms, against a real HTTP
receiver on 127.0.0.1. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from claims_api.audit.models import AuditEntry
from claims_api.auth.service import create_api_key
from claims_api.background import outbox_relay
from claims_api.db import utcnow
from claims_api.web.text import disabled_reason
from claims_api.web.webhooks import BadSince, parse_since
from claims_api.webhooks.dispatch import RETRY_SCHEDULE_S
from claims_api.webhooks.models import WebhookDelivery
from tests.support.webhook_receiver import Receiver, ReceiverServer
from tests.web.test_web import location, signed_in, visible_text

PAGE = "/web/admin/webhooks"
SNAKE_CASE = re.compile(r"\b[a-z]{2,}(?:_[a-z]{2,})+\b")


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"webhook_allow_private_addresses": True})


@pytest.fixture
def client(client):
    client.follow_redirects = False
    return client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ReceiverServer()
    yield server.receiver
    server.close()


def _register(api, container, url: str) -> str:
    with container.db.session() as session:
        _, key = create_api_key(session, "admin", "test admin")
    response = api.client.post(
        "/v1/webhooks",
        headers={"Authorization": f"Bearer {key}"},
        json={"url": url, "event_types": ["claim.*"], "description": "shop backend refunds"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _paid_claim(api) -> None:
    """claim.submitted, claim.approved and claim.paid for one claim."""
    customer = api.customer()
    api.put_order("ord-1")
    claim = api.claim(customer, [api.upload_fruit(customer, seed=0)], order_id="ord-1").json()
    assert claim["status"] == "paid", claim


def _deliveries(container, endpoint_id: str) -> list[WebhookDelivery]:
    with container.db.read_session() as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
                .order_by(WebhookDelivery.sequence)
            )
        )


@pytest.fixture
def dead_delivery(api, container, receiver, dispatcher, clock) -> tuple[str, WebhookDelivery]:
    """An endpoint whose receiver failed every attempt at the claim's first event: that
    delivery is dead, the two after it wait behind it. Then the receiver answers 204."""
    receiver.script.extend([500] * len(RETRY_SCHEDULE_S))
    endpoint_id = _register(api, container, receiver.url)
    _paid_claim(api)
    relay = outbox_relay(container.db)
    while relay.run_once():
        pass
    for _ in range(len(RETRY_SCHEDULE_S) + 1):
        dispatcher.drain()
        clock.offset += timedelta(hours=11)
    rows = _deliveries(container, endpoint_id)
    assert [(r.status, r.attempts) for r in rows] == [
        ("dead", len(RETRY_SCHEDULE_S)),
        ("pending", 0),
        ("pending", 0),
    ]
    return endpoint_id, rows[0]


def test_the_page_lists_an_endpoint_with_its_health_and_delivery_log(
    client, container, receiver, dead_delivery
):
    endpoint_id, dead = dead_delivery
    signed_in(client, container, "boss", role="admin")
    assert 'href="/web/admin/webhooks"' in client.get("/web/admin").text  # linked for admins

    page = client.get(PAGE)
    assert page.status_code == 200
    row = re.search(rf'data-endpoint="{endpoint_id}".*?</tr>', page.text, re.S).group(0)
    assert receiver.url in row and "shop backend refunds" in row and "claim.*" in row
    assert "Enabled" in row
    attempts = len(RETRY_SCHEDULE_S)
    rate = re.search(r"data-success-rate>(.*?)</td>", row, re.S).group(1)
    assert "0.0%" in rate and f"(0/{attempts})" in rate
    assert re.search(r"data-dead>\s*1\s*<", row)
    assert "HTTP 500" in re.search(r"data-last-failure>(.*?)</td>", row, re.S).group(1)

    log = re.search(rf'data-delivery="{dead.id}".*?</tr>', page.text, re.S).group(0)
    assert "claim.submitted" in log and "Dead" in log and "/retry" in log
    assert log.count("<li") == attempts and "500" in log and " ms" in log
    # a delivery that was never attempted is waiting, not failed: nothing to retry
    waiting = _deliveries(container, endpoint_id)[1]
    log = re.search(rf'data-delivery="{waiting.id}".*?</tr>', page.text, re.S).group(0)
    assert "/retry" not in log and "Not sent yet" in log

    only_dead = client.get(PAGE, params={"endpoint": endpoint_id, "status": "dead"}).text
    assert only_dead.count("data-delivery=") == 1
    assert client.get(PAGE, params={"endpoint": "whe_nope"}).status_code == 404


def test_retry_through_the_form_requeues_the_delivery_and_audits_it(
    client, container, receiver, dispatcher, dead_delivery
):
    endpoint_id, dead = dead_delivery
    token = signed_in(client, container, "boss", role="admin")

    response = client.post(
        f"{PAGE}/{endpoint_id}/deliveries/{dead.id}/retry", data={"csrf": token, "status": "dead"}
    )
    assert location(response) == f"{PAGE}?endpoint={endpoint_id}&status=dead&notice=retried"
    first = _deliveries(container, endpoint_id)[0]
    assert (first.id, first.status, first.attempts) == (dead.id, "pending", 0)
    with container.db.read_session() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == dead.id, AuditEntry.action == "retry")
        ).one()
        assert entry.actor_type == "reviewer"
    assert "queued to be sent again" in client.get(location(response)).text

    dispatcher.drain()  # the receiver answers 204 now; the held-back events follow in order
    assert [r.status for r in _deliveries(container, endpoint_id)] == ["succeeded"] * 3
    assert [r.document["type"] for r in receiver.accepted] == [
        "claim.submitted",
        "claim.approved",
        "claim.paid",
    ]
    missing = client.post(f"{PAGE}/{endpoint_id}/deliveries/dlv_nope/retry", data={"csrf": token})
    assert missing.status_code == 404 and "No such delivery" in missing.text


def test_recover_since_through_the_form_requeues_what_failed(
    client, container, receiver, dispatcher, dead_delivery
):
    endpoint_id, dead = dead_delivery
    token = signed_in(client, container, "boss", role="admin")
    # the form's datetime-local value: minutes, no time zone (the page says UTC)
    since = (dead.created_at - timedelta(minutes=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")

    response = client.post(f"{PAGE}/{endpoint_id}/recover", data={"csrf": token, "since": since})
    assert location(response) == f"{PAGE}?endpoint={endpoint_id}&notice=recovered&count=1"
    assert "1 deliveries are queued" in client.get(location(response)).text
    assert _deliveries(container, endpoint_id)[0].status == "pending"
    with container.db.read_session() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "recover")).one()
        assert entry.entity_id == endpoint_id and entry.details["since"].startswith(since)

    dispatcher.drain()
    assert [r.status for r in _deliveries(container, endpoint_id)] == ["succeeded"] * 3

    later = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(f"{PAGE}/{endpoint_id}/recover", data={"csrf": token, "since": later})
    assert location(response).endswith("count=0")
    for bad in ("", "yesterday", "2026-13-40T99:00"):
        refused = client.post(f"{PAGE}/{endpoint_id}/recover", data={"csrf": token, "since": bad})
        assert refused.status_code == 422 and "Enter the date and time" in refused.text


def test_the_forms_need_the_session_csrf_token(client, container, dead_delivery):
    endpoint_id, dead = dead_delivery
    token = signed_in(client, container, "boss", role="admin")
    since = "2000-01-01T00:00"
    for url, data in (
        (f"{PAGE}/{endpoint_id}/deliveries/{dead.id}/retry", {}),
        (f"{PAGE}/{endpoint_id}/recover", {"since": since}),
    ):
        assert client.post(url, data=data).status_code == 403
        assert client.post(url, data={**data, "csrf": token + "x"}).status_code == 403
    assert _deliveries(container, endpoint_id)[0].status == "dead"
    with container.db.read_session() as session:
        assert not session.scalars(
            select(AuditEntry).where(AuditEntry.action.in_(("retry", "recover")))
        ).all()


def test_a_reviewer_who_is_not_an_admin_cannot_see_or_use_it(client, container, dead_delivery):
    endpoint_id, dead = dead_delivery
    token = signed_in(client, container, "ana")
    assert 'href="/web/admin/webhooks"' not in client.get("/web/queue").text

    page = client.get(PAGE)
    assert page.status_code == 403 and "Only admins" in page.text
    assert endpoint_id not in page.text
    retried = client.post(f"{PAGE}/{endpoint_id}/deliveries/{dead.id}/retry", data={"csrf": token})
    recovered = client.post(
        f"{PAGE}/{endpoint_id}/recover", data={"csrf": token, "since": "2000-01-01T00:00"}
    )
    assert retried.status_code == recovered.status_code == 403
    assert _deliveries(container, endpoint_id)[0].status == "dead"
    client.cookies.clear()
    assert location(client.get(PAGE)).startswith("/web/login")


def test_the_chinese_page_is_translated_and_shows_no_snake_case(client, container, dead_delivery):
    signed_in(client, container, "boss", role="admin")
    client.get("/web/lang?to=zh&back=/web/queue")
    text = visible_text(client.get(PAGE).text)
    assert "投递记录" in text and "已放弃" in text and "成功率" in text and "重试" in text
    codes = SNAKE_CASE.findall(text)  # ids are hex: not matched
    assert not codes, sorted(set(codes))
    assert "Webhook" in visible_text(client.get("/web/admin").text)


def test_an_empty_page_says_there_are_no_endpoints(client, container):
    signed_in(client, container, "boss", role="admin")
    page = client.get(PAGE)
    assert page.status_code == 200 and "No webhook endpoints are registered" in page.text


def test_disabled_reasons_are_shown_in_the_ui_language():
    assert disabled_reason("zh", "the endpoint answered 410 Gone") == "端点返回了 410 Gone"
    assert disabled_reason("en", "disabled by admin key_1") == "Disabled by admin key_1"
    assert disabled_reason("zh", "disabled by reviewer rev_1") == "由审核员 rev_1 停用"
    failing = disabled_reason("zh", "no successful delivery since 2026-12-01T08:00:00+00:00")
    assert failing == "自 2026-12-01 08:00 UTC 起没有一次成功投递"
    assert disabled_reason("en", "something new") == "something new"
    assert disabled_reason("en", None) == ""


def test_recover_since_reads_the_form_value_as_utc():
    assert parse_since("2026-12-04T10:30") == datetime(2026, 12, 4, 10, 30, tzinfo=UTC)
    assert parse_since("2026-12-04T10:30+08:00").utcoffset() == timedelta(hours=8)
    for bad in (None, "", "now"):
        with pytest.raises(BadSince):
            parse_since(bad)
