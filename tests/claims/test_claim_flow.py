"""The claim path end to end through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from claims_api.audit.models import AuditEntry
from claims_api.claims.models import Claim
from claims_api.compensation.models import LedgerEntry, LedgerPosting
from claims_api.events.models import OutboxEvent


def _count(container, model, *where) -> int:
    with container.db.read_session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_rotten_photo_is_auto_approved_and_paid_at_once(api, container):
    api.put_order()
    customer = api.customer()
    photo = api.upload_fruit(customer, rotten=True)

    response = api.claim(customer, [photo], quantity=2)

    assert response.status_code == 201, response.text
    claim = response.json()
    assert claim["status"] == "paid"
    assert "decision" not in claim and claim["outcome"]["code"] == "paid"
    staff = api.staff_view(claim)
    assert staff["decision"]["route"] == "auto"
    assert staff["decision"]["reasons"] == []
    assert staff["decision"]["model_version"] == "tiny-test-1"
    assert staff["decision"]["policy_version"] == container.policy.version
    assert claim["compensation"] == {
        "requested_cents": 600,
        "amount_cents": 600,
        "method": "store_credit",
        "status": "paid",
    }
    assert [t["status"] for t in claim["timeline"]] == ["submitted", "approved", "paid"]
    submitted = datetime.fromisoformat(claim["submitted_at"])
    assert datetime.fromisoformat(staff["sla_deadline"]) == submitted + timedelta(minutes=10)
    assert datetime.fromisoformat(claim["paid_at"]) < submitted + timedelta(seconds=5)

    with container.db.read_session() as session:
        postings = session.scalars(select(LedgerPosting)).all()
        assert [(p.kind, p.amount_cents) for p in postings] == [("payout", 600)]
        entries = session.scalars(select(LedgerEntry)).all()
        assert sum(e.amount_cents for e in entries) == 0
        assert {e.account for e in entries} == {
            "expense:compensation",
            "liability:store_credit:cust-1",
        }
        events = [
            e.event_type for e in session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
        ]
        assert events == ["order.delivered", "claim.submitted", "claim.approved", "claim.paid"]
        audit = session.scalars(select(AuditEntry).where(AuditEntry.entity_type == "claim")).all()
        assert [a.action for a in audit] == ["status:submitted", "status:approved", "status:paid"]
        assert audit[1].before["status"] == "submitted" and audit[1].after["status"] == "approved"


def test_fresh_photo_goes_to_review_with_its_reason(api, container):
    api.put_order()
    customer = api.customer()
    photo = api.upload_fruit(customer, rotten=False)

    claim = api.claim(customer, [photo]).json()

    assert claim["status"] == "in_review"
    staff = api.staff_view(claim)
    assert staff["decision"]["route"] == "manual"
    assert [r["code"] for r in staff["decision"]["reasons"]] == ["model_not_confident"]
    assert claim["compensation"]["status"] == "pending"
    submitted = datetime.fromisoformat(claim["submitted_at"])
    manual = timedelta(minutes=container.policy.manual_review_sla_minutes)
    assert datetime.fromisoformat(staff["sla_deadline"]) == submitted + manual
    assert datetime.fromisoformat(claim["outcome"]["respond_by"]) == submitted + manual
    assert _count(container, LedgerPosting) == 0


def test_verification_report_lists_every_signal_with_value_and_threshold(api):
    api.put_order()
    customer = api.customer()
    claim = api.claim(customer, [api.upload_fruit(customer, rotten=False)]).json()
    reviewer = api.reviewer()

    report = api.client.get(f"/v1/claims/{claim['id']}/verification", headers=reviewer).json()

    by_code = {s["code"]: s for s in report["signals"]}
    assert by_code["model_not_confident"]["fired"] is True
    assert by_code["model_not_confident"]["threshold"] == 0.9
    assert by_code["amount_over_cap"] == {
        **by_code["amount_over_cap"],
        "fired": False,
        "value": 600,
    }
    assert {"claim_window", "produce_mismatch", "claim_frequency", "photo_quality"} <= set(by_code)
    assert report["photos"][0]["scores"]["produce"] == "apple"
    customer_view = api.client.get(f"/v1/claims/{claim['id']}/verification", headers=customer)
    assert customer_view.status_code == 403


def test_wrong_produce_window_and_cap_each_route_to_a_person(api):
    customer = api.customer()
    api.put_order("ord-banana", produce="apple")
    banana = api.upload_fruit(customer, produce="banana", rotten=True)
    api.put_order("ord-old", produce="apple", delivered_hours_ago=24 * 30)
    api.put_order("ord-big", produce="apple", quantity=100, unit_price_cents=1000)

    cases = {
        "produce_mismatch": api.claim(customer, [banana], order_id="ord-banana"),
        "claim_window": api.claim(
            customer, [api.upload_fruit(customer, seed=1)], order_id="ord-old"
        ),
        "amount_over_cap": api.claim(
            customer, [api.upload_fruit(customer, seed=2)], order_id="ord-big", quantity=50
        ),
    }
    for code, response in cases.items():
        body = response.json()
        assert response.status_code == 201, body
        assert body["status"] == "in_review", (code, body)
        assert code in api.reasons(body)


def test_claim_frequency_limit_sends_the_next_claim_to_review(api, container):
    customer = api.customer()
    limit = container.policy.max_claims_30d
    for i in range(limit):
        api.put_order(f"ord-{i}")
        assert (
            api.claim(customer, [api.upload_fruit(customer, seed=i)], order_id=f"ord-{i}").json()[
                "status"
            ]
            == "paid"
        )
    api.put_order("ord-next")
    body = api.claim(customer, [api.upload_fruit(customer, seed=99)], order_id="ord-next").json()
    assert body["status"] == "in_review"
    assert api.reasons(body) == ["claim_frequency"]


def test_model_unavailable_sends_claims_to_people_instead_of_failing(
    api, container, unloaded_models
):
    api.put_order()
    customer = api.customer()
    container.models = unloaded_models
    photo = api.upload_fruit(customer)

    body = api.claim(customer, [photo]).json()

    assert body["status"] == "in_review"
    assert "model_unavailable" in api.reasons(body)
    ready = api.client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["model"].startswith("error")


def test_same_idempotency_key_returns_the_same_claim_and_pays_once(api, container):
    api.put_order()
    customer = api.customer()
    photo = api.upload_fruit(customer)

    first = api.claim(customer, [photo], key="key-1")
    again = api.claim(customer, [photo], key="key-1")
    different = api.claim(customer, [photo], key="key-1", quantity=1)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert different.status_code == 409
    assert different.json()["error"]["code"] == "idempotency_key_reused"
    assert _count(container, Claim) == 1
    assert _count(container, LedgerPosting) == 1


@pytest.mark.parametrize("rotten", [True, False], ids=["auto", "manual"])
def test_a_new_claims_answer_is_what_reading_it_back_returns(api, rotten):
    """The submit answer is built from what its transaction wrote, not read back: it must
    still be the very document a later GET returns."""
    api.put_order()
    customer = api.customer()
    created = api.claim(customer, [api.upload_fruit(customer, rotten=rotten)])
    assert created.status_code == 201, created.text
    body = created.json()
    assert api.staff_view(body)["decision"]["route"] == ("auto" if rotten else "manual")

    read = api.client.get(f"/v1/claims/{body['id']}", headers=customer)

    assert read.status_code == 200 and read.json() == body
    moves = [entry["status"] for entry in body["timeline"]]
    assert moves == ["submitted", *(["approved", "paid"] if rotten else ["in_review"])]
    if rotten:
        assert body["timeline"][-1]["at"] == body["paid_at"]
        assert body["compensation"]["status"] == "paid"


def test_a_paid_line_cannot_be_claimed_again_beyond_its_value(api):
    api.put_order(quantity=2)
    customer = api.customer()
    assert api.claim(customer, [api.upload_fruit(customer)], quantity=2).json()["status"] == "paid"

    second = api.claim(customer, [api.upload_fruit(customer, seed=5)], quantity=1)

    assert second.status_code == 409
    assert second.json()["error"]["code"] == "line_fully_compensated"


def test_customers_see_only_their_own_claims_and_photos(api, container):
    api.put_order()
    api.put_order("ord-2", customer_id="cust-2")
    alice, bob = api.customer("cust-1"), api.customer("cust-2")
    alice_photo = api.upload_fruit(alice)
    claim = api.claim(alice, [alice_photo]).json()

    assert api.client.get(f"/v1/claims/{claim['id']}", headers=bob).status_code == 404
    assert api.client.get(f"/v1/photos/{alice_photo}", headers=bob).status_code == 404
    assert api.client.get(f"/v1/photos/{alice_photo}/content", headers=bob).status_code == 404
    stolen = api.claim(bob, [alice_photo], order_id="ord-2")
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "photo_not_found"
    foreign_order = api.claim(bob, [api.upload_fruit(bob)], order_id="ord-1")
    assert (
        foreign_order.status_code == 404
        and foreign_order.json()["error"]["code"] == "order_not_found"
    )
    assert api.client.get("/v1/claims", headers=bob).json()["items"] == []
    assert [c["id"] for c in api.client.get("/v1/claims", headers=alice).json()["items"]] == [
        claim["id"]
    ]
    assert _count(container, Claim) == 1


def test_claim_listing_pages_with_a_cursor(api):
    customer = api.customer()
    ids = []
    for i in range(5):
        api.put_order(f"ord-{i}")
        ids.append(
            api.claim(
                customer, [api.upload_fruit(customer, rotten=False, seed=i)], order_id=f"ord-{i}"
            ).json()["id"]
        )
    seen, cursor = [], None
    while True:
        page = api.client.get(
            "/v1/claims",
            headers=customer,
            params={"limit": 2, **({"cursor": cursor} if cursor else {})},
        ).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert (
        api.client.get("/v1/claims", headers=customer, params={"cursor": "garbage!"}).status_code
        == 400
    )


def test_authentication_is_required_and_roles_are_enforced(api):
    api.put_order()
    customer = api.customer()
    assert api.client.get("/v1/claims").status_code == 401
    assert (
        api.client.get("/v1/claims", headers={"Authorization": "Bearer nonsense"}).json()["error"][
            "code"
        ]
        == "invalid_token"
    )
    assert api.client.put("/v1/orders/x", headers=customer, json={}).status_code == 403
    assert api.client.get("/v1/review/queue", headers=customer).status_code == 403
    assert (
        api.client.post("/v1/auth/login", json={"username": "nobody", "password": "x"}).status_code
        == 401
    )


def test_ops_endpoints(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["ready"] is True and ready["model_version"] == "tiny-test-1"
    api.client.get("/v1/claims")
    assert "freshclaim_http_request_seconds" in api.client.get("/metrics").text


def _metric(api, line_start: str) -> float:
    """A sample's value from /metrics (0 when absent); counters only grow, so tests compare
    before and after (the registry is shared by every app in this process)."""
    for line in api.client.get("/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_photos_claims_by_route_and_time_each_photo_stage(api):
    api.put_order()
    api.put_order("ord-2")
    customer = api.customer()
    auto = 'freshclaim_claims_decided_total{route="auto"}'
    manual = 'freshclaim_claims_decided_total{route="manual"}'
    good = 'freshclaim_photos_uploaded_total{quality_ok="true"}'
    decodes = 'freshclaim_photo_stage_seconds_count{stage="decode"}'
    decode_cpu = 'freshclaim_photo_stage_cpu_seconds_total{stage="decode"}'
    total_cpu = 'freshclaim_photo_stage_cpu_seconds_total{stage="total"}'
    before = {
        name: _metric(api, name) for name in (auto, manual, good, decodes, decode_cpu, total_cpu)
    }

    key = "metrics-1"
    api.claim(customer, [api.upload_fruit(customer)], key=key)
    api.claim(customer, [api.upload_fruit(customer)], key=key)  # a replay decides nothing
    api.claim(customer, [api.upload_fruit(customer, rotten=False, seed=4)], order_id="ord-2")

    after = {name: _metric(api, name) for name in before}
    assert after[auto] - before[auto] == 1 and after[manual] - before[manual] == 1
    assert after[good] - before[good] == 3 and after[decodes] - before[decodes] == 3
    assert _metric(api, 'freshclaim_photo_stage_seconds_sum{stage="total"}') > 0
    # CPU per stage: the decode is part of the photo's total, which holds every thread's share
    spent = {name: after[name] - before[name] for name in (decode_cpu, total_cpu)}
    assert 0 < spent[decode_cpu] < spent[total_cpu]


def test_a_slow_model_leaves_the_photo_unscored_and_the_claim_goes_to_a_person(
    api, container, monkeypatch
):
    import time

    api.put_order()
    customer = api.customer()
    classifier = container.models.classifier
    real_score = classifier.score
    monkeypatch.setattr(classifier, "score", lambda image: (time.sleep(0.5), real_score(image))[1])
    container.settings.decision_budget_seconds = 0.05

    photo = api.upload_fruit(customer)
    body = api.claim(customer, [photo]).json()

    assert body["status"] == "in_review"
    assert "model_unavailable" in api.reasons(body)


def test_an_admin_reverses_a_payout_with_a_reason_and_the_ledger_nets_to_zero(api, container):
    from claims_api.auth.service import create_api_key

    api.put_order()
    customer = api.customer()
    claim = api.claim(customer, [api.upload_fruit(customer)]).json()
    with container.db.session() as session:
        _, admin_key = create_api_key(session, "admin")
    admin = {"Authorization": f"Bearer {admin_key}"}
    url = f"/v1/claims/{claim['id']}/reversal"

    assert (
        api.client.post(
            url, headers=api.shop_headers(), json={"reason": "duplicate order"}
        ).status_code
        == 403
    )
    reversed_ = api.client.post(url, headers=admin, json={"reason": "paid twice by the shop"})
    again = api.client.post(url, headers=admin, json={"reason": "paid twice by the shop"})

    assert reversed_.status_code == 200, reversed_.text
    body = reversed_.json()
    assert body["status"] == "reversed" and body["compensation"]["status"] == "reversed"
    assert again.status_code == 409
    with container.db.read_session() as session:
        postings = session.scalars(select(LedgerPosting).order_by(LedgerPosting.created_at)).all()
        assert [(p.kind, p.amount_cents) for p in postings] == [("payout", 600), ("reversal", 600)]
        assert sum(e.amount_cents for e in session.scalars(select(LedgerEntry))) == 0
        [event] = session.scalars(
            select(OutboxEvent).where(OutboxEvent.event_type == "claim.reversed")
        ).all()
        assert event.payload["reason"] == "payout_reversed"
        assert "paid twice" not in str(event.payload)
        credit = [
            e for e in session.scalars(select(LedgerEntry)) if e.account.startswith("liability")
        ]
        assert sum(e.amount_cents for e in credit) == 0
