"""The manual-review API: leases, decisions, partial approval, appeals."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from claims_api.claims.models import Claim
from claims_api.compensation.models import LedgerPosting
from claims_api.db import utcnow
from claims_api.review.models import ReviewDecision


def _manual_claim(api, customer, order_id="ord-1", seed=0):
    api.put_order(order_id)
    body = api.claim(
        customer, [api.upload_fruit(customer, rotten=False, seed=seed)], order_id=order_id
    ).json()
    assert body["status"] == "in_review"
    return body


def test_queue_is_ordered_by_sla_deadline(api, container):
    customer = api.customer()
    first = _manual_claim(api, customer, "ord-a", 1)
    second = _manual_claim(api, customer, "ord-b", 2)
    with container.db.session() as session:  # make the second one more urgent
        session.execute(update(Claim).where(Claim.id == second["id"]).values(sla_deadline=utcnow()))
    reviewer = api.reviewer()

    queue = api.client.get("/v1/review/queue", headers=reviewer).json()

    assert [i["claim_id"] for i in queue["items"]] == [second["id"], first["id"]]
    assert queue["total"] == 2 and queue["leased"] == 0
    assert queue["items"][1]["reasons"] == ["model_not_confident"]
    lease = api.client.post("/v1/review/lease", headers=reviewer).json()
    assert lease["claim_id"] == second["id"]


def test_reviewer_approves_part_of_a_claim(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer = api.reviewer()
    lease = api.client.post("/v1/review/lease", headers=reviewer)
    assert lease.status_code == 200 and lease.json()["claim_id"] == claim["id"]

    decided = api.client.post(
        f"/v1/review/claims/{claim['id']}/decision",
        headers=reviewer,
        json={"outcome": "approve", "amount_cents": 300, "reason_code": "partly_spoiled"},
    )

    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["status"] == "paid"
    assert [t["status"] for t in body["timeline"]] == [
        "submitted",
        "in_review",
        "partially_approved",
        "paid",
    ]
    assert body["compensation"]["amount_cents"] == 300
    again = api.client.post(
        f"/v1/review/claims/{claim['id']}/decision",
        headers=reviewer,
        json={"outcome": "approve", "reason_code": "spoiled_confirmed"},
    )
    assert again.status_code == 409
    with container.db.read_session() as session:
        decision = session.scalars(select(ReviewDecision)).one()
        assert decision.model_version == "tiny-test-1" and decision.leased_at is not None
        assert any(s["code"] == "model_not_confident" for s in decision.seen["signals"])
        assert session.scalar(select(LedgerPosting.amount_cents)) == 300
    assert api.client.post("/v1/review/lease", headers=reviewer).status_code == 204


def test_amount_above_the_claim_is_refused(api):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer = api.reviewer()
    api.client.post("/v1/review/lease", headers=reviewer)
    response = api.client.post(
        f"/v1/review/claims/{claim['id']}/decision",
        headers=reviewer,
        json={"outcome": "approve", "amount_cents": 10_000, "reason_code": "spoiled_confirmed"},
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "amount_too_high"


def test_only_the_lease_holder_decides(api):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    holder, other = api.reviewer(), api.reviewer()
    api.client.post("/v1/review/lease", headers=holder)

    assert api.client.post("/v1/review/lease", headers=other).status_code == 204
    response = api.client.post(
        f"/v1/review/claims/{claim['id']}/decision",
        headers=other,
        json={"outcome": "approve", "reason_code": "spoiled_confirmed"},
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "lease_not_held"
    assert (
        api.client.post(f"/v1/review/claims/{claim['id']}/release", headers=other).status_code
        == 409
    )
    assert (
        api.client.post(f"/v1/review/claims/{claim['id']}/release", headers=holder).status_code
        == 204
    )
    assert api.client.post("/v1/review/lease", headers=other).json()["claim_id"] == claim["id"]


def test_an_expired_lease_returns_the_claim_to_the_queue(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    first, second = api.reviewer(), api.reviewer()
    api.client.post("/v1/review/lease", headers=first)
    with container.db.session() as session:
        session.execute(update(Claim).values(lease_expires_at=utcnow() - timedelta(seconds=1)))

    assert api.client.post("/v1/review/lease", headers=second).json()["claim_id"] == claim["id"]
    late = api.client.post(
        f"/v1/review/claims/{claim['id']}/decision",
        headers=first,
        json={"outcome": "approve", "reason_code": "spoiled_confirmed"},
    )
    assert late.status_code == 409


def test_heartbeat_extends_the_lease(api):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer = api.reviewer()
    first = api.client.post("/v1/review/lease", headers=reviewer).json()["lease_expires_at"]
    beat = api.client.post(f"/v1/review/claims/{claim['id']}/heartbeat", headers=reviewer)
    assert beat.status_code == 200 and beat.json()["lease_expires_at"] >= first


def test_rejection_needs_a_message_and_an_appeal_goes_to_another_reviewer(api):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    first, second = api.reviewer(), api.reviewer()
    api.client.post("/v1/review/lease", headers=first)
    url = f"/v1/review/claims/{claim['id']}/decision"
    no_message = api.client.post(
        url, headers=first, json={"outcome": "reject", "reason_code": "not_spoiled"}
    )
    assert no_message.status_code == 422
    rejected = api.client.post(
        url,
        headers=first,
        json={
            "outcome": "reject",
            "reason_code": "not_spoiled",
            "message": "The apples in the photo look fresh.",
        },
    )
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["compensation"]["status"] == "none"

    appeal = api.client.post(
        f"/v1/claims/{claim['id']}/appeal",
        headers=customer,
        json={"message": "Look at the underside."},
    )
    assert (
        appeal.status_code == 200
        and appeal.json()["status"] == "in_review"
        and appeal.json()["appealed"]
    )
    assert (
        api.client.post(
            f"/v1/claims/{claim['id']}/appeal", headers=customer, json={"message": "again"}
        ).status_code
        == 409
    )

    assert api.client.post("/v1/review/lease", headers=first).status_code == 204
    assert api.client.post("/v1/review/lease", headers=second).json()["claim_id"] == claim["id"]
    approved = api.client.post(
        url, headers=second, json={"outcome": "approve", "reason_code": "spoiled_confirmed"}
    )
    assert approved.json()["status"] == "paid"


def test_request_photos_then_customer_adds_them(api):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer = api.reviewer()
    api.client.post("/v1/review/lease", headers=reviewer)
    asked = api.client.post(
        f"/v1/review/claims/{claim['id']}/decision",
        headers=reviewer,
        json={
            "outcome": "request_photos",
            "reason_code": "more_photos_needed",
            "message": "Please send a close-up of the damage.",
        },
    )
    assert asked.json()["status"] == "photos_requested"

    extra = api.upload_fruit(customer, rotten=True, seed=7)
    added = api.client.post(
        f"/v1/claims/{claim['id']}/photos", headers=customer, json={"photo_ids": [extra]}
    )

    assert added.status_code == 200 and added.json()["status"] == "in_review"
    assert added.json()["photo_ids"][-1] == extra
    assert api.client.post("/v1/review/lease", headers=reviewer).json()["claim_id"] == claim["id"]


def test_reviewer_labels_a_photo(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer = api.reviewer()
    url = f"/v1/review/photos/{claim['photo_ids'][0]}/label"
    assert (
        api.client.put(
            url, headers=reviewer, json={"condition": "fresh", "produce": "apple"}
        ).status_code
        == 204
    )
    assert api.client.put(url, headers=reviewer, json={"condition": "mouldy"}).status_code == 422


def test_queue_filters_by_reason_produce_and_amount(api):
    customer = api.customer()
    _manual_claim(api, customer, "ord-a", 1)
    api.put_order("ord-old", delivered_hours_ago=24 * 30, produce="apple")
    api.claim(customer, [api.upload_fruit(customer, rotten=True, seed=3)], order_id="ord-old")
    reviewer = api.reviewer()

    def ids(**params):
        page = api.client.get("/v1/review/queue", headers=reviewer, params=params).json()
        return page["total"], [i["order_id"] for i in page["items"]]

    assert ids() == (2, ["ord-a", "ord-old"])
    assert ids(reason="claim_window") == (1, ["ord-old"])
    assert ids(reason="model_not_confident") == (1, ["ord-a"])
    assert ids(produce="banana") == (0, [])
    assert ids(min_cents=601) == (0, [])
    assert ids(limit=1, offset=1) == (2, ["ord-old"])
