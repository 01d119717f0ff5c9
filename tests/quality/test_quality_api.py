"""Order lines' sourcing, the order.delivered event, damage rates with delivered lines as the
denominator, and incidents opened off the request path by the quality consumer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select

from claims_api.audit.models import AuditEntry
from claims_api.events.models import OutboxEvent
from claims_api.events.registry import registered_consumers
from claims_api.events.relay import OutboxRelay


def _line(line_id: str, sku: str = "SKU-apple", **sourcing) -> dict:
    return {
        "line_id": line_id,
        "sku": sku,
        "produce": "apple",
        "quantity": 1,
        "unit_price_cents": 300,
        "category": "fruit",
        **sourcing,
    }


def _put(api, order_id: str, customer_id: str, lines: list[dict], **extra):
    body = {
        "customer_id": customer_id,
        "delivered_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
        "lines": lines,
        **extra,
    }
    return api.client.put(f"/v1/orders/{order_id}", json=body, headers=api.shop_headers())


def _batch_order(api, order_id: str, customer_id: str, batch: str, count: int, **extra):
    lines = [_line(f"L{i}", supplier_id="sup-orchard", batch_id=batch) for i in range(1, count + 1)]
    response = _put(api, order_id, customer_id, lines, **extra)
    assert response.status_code == 201, response.text
    return response.json()


def _claim(api, order_id: str, customer_id: str, seed: int) -> dict:
    customer = api.customer(customer_id)
    response = api.claim(
        customer, [api.upload_fruit(customer, seed=seed)], order_id=order_id, quantity=1
    )
    assert response.status_code == 201, response.text
    return response.json()


def _relay(container) -> None:
    relay = OutboxRelay(container.db, registered_consumers())
    while relay.run_once():
        pass


def _events(container, prefix: str) -> list[OutboxEvent]:
    with container.db.read_session() as session:
        rows = session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        return [e for e in rows if e.event_type.startswith(prefix)]


def test_order_lines_carry_their_sourcing_and_a_delivery_is_announced_once(api, container):
    lines = [_line("L1", category="Baby_Food", supplier_id="sup-1", batch_id="B-2026.12:03")]
    created = _put(api, "ord-1", "cust-1", lines, pickup_point_id="pp-7")
    assert created.status_code == 201, created.text
    assert created.json()["lines"][0] | {"category": "baby_food"} == created.json()["lines"][0]
    assert created.json()["lines"][0]["batch_id"] == "B-2026.12:03"

    body = created.json()
    resend = {k: body[k] for k in ("customer_id", "delivered_at", "pickup_point_id", "lines")}
    resend["delivered_at"] = (
        datetime.fromisoformat(body["delivered_at"])
        .astimezone(timezone(timedelta(hours=8)))
        .isoformat()
    )  # the same instant in Beijing time
    again = api.client.put("/v1/orders/ord-1", json=resend, headers=api.shop_headers())
    assert again.status_code == 200, again.text
    assert len(_events(container, "order.")) == 1  # an identical re-send is no new delivery

    resend["lines"][0]["batch_id"] = "B-2026.12:04"
    assert api.client.put("/v1/orders/ord-1", json=resend, headers=api.shop_headers()).is_success
    delivered = _events(container, "order.")
    assert [e.event_type for e in delivered] == ["order.delivered", "order.delivered"]
    assert delivered[-1].payload["lines"][0]["batch_id"] == "B-2026.12:04"
    assert delivered[-1].payload["pickup_point_id"] == "pp-7"


def test_sourcing_fields_are_validated(api):
    for bad in ({"category": "Baby Food"}, {"batch_id": "B 1"}, {"supplier_id": "x" * 101}):
        response = _put(api, "ord-1", "cust-1", [_line("L1", **bad)])
        assert response.status_code == 422, bad
        assert response.json()["error"]["code"] == "validation_error"


def test_damage_rates_count_claimed_lines_over_delivered_lines(api, container):
    _batch_order(api, "ord-a", "cust-a", "B-1", 4, pickup_point_id="pp-1")
    _batch_order(api, "ord-b", "cust-b", "B-2", 6)
    _claim(api, "ord-a", "cust-a", seed=1)
    shop = api.shop_headers()

    def rates(by: str) -> list[dict]:
        response = api.client.get(f"/v1/quality/rates?by={by}&days=7", headers=shop)
        assert response.status_code == 200, response.text
        return [(r["key"], r["delivered_lines"], r["claimed_lines"]) for r in response.json()]

    assert rates("sku") == [({"sku": "SKU-apple"}, 10, 1)]
    assert rates("batch") == [
        ({"sku": "SKU-apple", "batch_id": "B-1"}, 4, 1),
        ({"sku": "SKU-apple", "batch_id": "B-2"}, 6, 0),
    ]
    assert rates("supplier") == [({"supplier_id": "sup-orchard"}, 10, 1)]
    assert sorted(rates("pickup_point"), key=str) == sorted(
        [({"pickup_point_id": "pp-1"}, 4, 1), ({"pickup_point_id": None}, 6, 0)], key=str
    )
    sku = api.client.get("/v1/quality/rates?by=sku", headers=shop).json()[0]
    assert sku["rate"] == 0.1
    customer = api.customer("cust-a")
    assert api.client.get("/v1/quality/rates", headers=customer).status_code == 403
    assert api.client.get("/v1/quality/rates?by=day", headers=shop).status_code == 422


def test_a_bad_batch_opens_one_incident_that_staff_acknowledge_and_resolve(api, container):
    _batch_order(api, "ord-base", "cust-base", "B-good", 200)
    for i in range(1, 4):
        _batch_order(api, f"ord-bad-{i}", f"cust-bad-{i}", "B-bad", 7)
    _claim(api, "ord-base", "cust-base", seed=10)  # normal traffic
    _claim(api, "ord-bad-1", "cust-bad-1", seed=11)
    _claim(api, "ord-bad-2", "cust-bad-2", seed=12)
    _relay(container)
    shop = api.shop_headers()
    assert api.client.get("/v1/quality/incidents", headers=shop).json() == []

    _claim(api, "ord-bad-3", "cust-bad-3", seed=13)  # 3 of 21 lines against 1 of 200
    _relay(container)
    [incident] = api.client.get("/v1/quality/incidents?status=open", headers=shop).json()
    assert incident["scope"] == "batch" and incident["subject_id"] == "B-bad"
    assert incident["supplier_id"] == "sup-orchard" and incident["sku"] == "SKU-apple"
    assert (incident["claims"], incident["lines"]) == (3, 21)
    assert incident["p_value"] < 0.001

    reviewer = api.reviewer()
    path = f"/v1/quality/incidents/{incident['id']}"
    acked = api.client.post(f"{path}/acknowledge", headers=reviewer)
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    resolved = api.client.post(
        f"{path}/resolve", headers=shop, json={"resolution": "batch_withdrawn", "note": "pulled"}
    )
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    again = api.client.post(f"{path}/acknowledge", headers=reviewer)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "incident_transition_not_allowed"
    missing = api.client.post("/v1/quality/incidents/qin_x/acknowledge", headers=shop)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "incident_not_found"
    bad_code = api.client.post(f"{path}/resolve", headers=shop, json={"resolution": "shrug"})
    assert bad_code.status_code == 422

    _batch_order(api, "ord-bad-4", "cust-bad-4", "B-bad", 7)
    _claim(api, "ord-bad-4", "cust-bad-4", seed=14)  # a resolved batch is not re-opened
    _relay(container)
    assert len(api.client.get("/v1/quality/incidents", headers=shop).json()) == 1

    moves = _events(container, "quality.incident_")
    assert [e.event_type for e in moves] == [
        "quality.incident_opened",
        "quality.incident_acknowledged",
        "quality.incident_resolved",
    ]
    assert moves[-1].payload["resolution"] == "batch_withdrawn"
    assert "note" not in moves[-1].payload  # free text stays out of events
    with container.db.read_session() as session:
        audit = session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == incident["id"])
            .order_by(AuditEntry.id)
        ).all()
    assert audit == ["opened", "acknowledged", "resolved"]


def test_a_pickup_point_with_many_claims_on_a_sku_opens_an_incident(api, container):
    base = [_line(f"L{i}") for i in range(1, 201)]  # no batch ids: only pickup points differ
    assert _put(api, "ord-base", "cust-base", base, pickup_point_id="pp-ok").status_code == 201
    for i in range(1, 4):
        lines = [_line(f"L{n}") for n in range(1, 8)]
        created = _put(api, f"ord-pp-{i}", f"cust-pp-{i}", lines, pickup_point_id="pp-warm")
        assert created.status_code == 201, created.text
        _claim(api, f"ord-pp-{i}", f"cust-pp-{i}", seed=20 + i)
    _relay(container)

    [incident] = api.client.get("/v1/quality/incidents", headers=api.shop_headers()).json()
    assert (incident["scope"], incident["subject_id"]) == ("pickup_point", "pp-warm")
    assert (incident["claims"], incident["lines"], incident["supplier_id"]) == (3, 21, None)
