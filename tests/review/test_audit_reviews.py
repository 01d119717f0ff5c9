"""Audit reviews: an auto-approved claim is paid at once and, by a recorded random draw,
also queued for a person whose verdict is a label; the claim stays paid."""

from __future__ import annotations

import json
import zlib

import pytest
from sqlalchemy import select

from claims_api.claims.models import Claim
from claims_api.config import Settings
from claims_api.container import build_container
from claims_api.main import create_app
from claims_api.retraining.audit import sample_auto_approval, share_for
from claims_api.rules.policy import Policy
from tests.support.api import Api


def _paid_claim(api: Api, order_id: str = "ord-1") -> str:
    """A paid claim of its own customer (one customer's many claims would go to a person)."""
    customer_id = f"cust-{order_id}"
    api.put_order(order_id=order_id, customer_id=customer_id)
    customer = api.customer(customer_id)
    photo = api.upload_fruit(customer, rotten=True, seed=zlib.crc32(order_id.encode()) % 100)
    claim = api.claim(customer, [photo], order_id=order_id).json()
    assert claim["status"] == "paid"
    return claim["id"]


def test_uncertified_approvals_are_all_audited_by_default(api, container):
    claim_id = _paid_claim(api)
    reviewer = api.reviewer()
    queue = api.client.get("/v1/review/audit", headers=reviewer).json()
    assert queue["total"] == 1
    item = queue["items"][0]
    assert item["claim_id"] == claim_id and item["share"] == 1.0
    assert item["certification"] == "validated, uncertified"
    # the audit queue is not the review queue: nothing waits for a person there
    assert api.client.get("/v1/review/queue", headers=reviewer).json()["total"] == 0

    lease = api.client.post("/v1/review/audit/lease", headers=reviewer)
    assert lease.status_code == 200 and lease.json()["claim_id"] == claim_id
    other = api.reviewer()
    assert api.client.post("/v1/review/audit/lease", headers=other).status_code == 204
    refused = api.client.post(
        f"/v1/review/audit/{claim_id}/verdict", json={"verdict": "fresh"}, headers=other
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "audit_lease_not_held"

    verdict = api.client.post(
        f"/v1/review/audit/{claim_id}/verdict",
        json={"verdict": "fresh", "produce": "apple", "note": "looks fine"},
        headers=reviewer,
    )
    assert verdict.status_code == 200, verdict.text
    assert verdict.json()["auto_approval_correct"] is False
    again = api.client.post(
        f"/v1/review/audit/{claim_id}/verdict", json={"verdict": "rotten"}, headers=reviewer
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "audit_already_done"

    # the label is stored; the claim and its payout are untouched
    staff = api.staff_view(claim_id)
    assert staff["status"] == "paid" and staff["compensation"]["status"] == "paid"
    with container.db.read_session() as session:
        audit = session.get(Claim, claim_id).decision["audit"]
    assert audit["state"] == "done" and audit["verdict"]["verdict"] == "fresh"
    assert api.client.get("/v1/review/audit", headers=reviewer).json()["total"] == 0


def test_a_claim_not_audited_has_no_verdict_to_give(api):
    reviewer = api.reviewer()
    missing = api.client.post(
        "/v1/review/audit/clm_nope/verdict", json={"verdict": "rotten"}, headers=reviewer
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "audit_not_found"


def test_no_share_no_audit(tmp_path, database_url, tiny_model_path):
    from fastapi.testclient import TestClient

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"audit_share_uncertified": 0}))
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        model_path=tiny_model_path,
        policy_file=policy,
        secret_key="test-secret-" + "x" * 32,
        background_workers=False,
    )
    container = build_container(settings)
    with TestClient(create_app(container=container)) as client:
        api = Api(client, container)
        claim_id = _paid_claim(api)
        assert api.client.get("/v1/review/audit", headers=api.reviewer()).json()["total"] == 0
    with container.db.read_session() as session:
        record = session.scalar(select(Claim).where(Claim.id == claim_id)).decision["audit"]
    container.db.dispose()
    assert record == {"share": 0.0, "selected": False}


@pytest.mark.parametrize(
    ("status", "share"), [("certified", 0.02), ("not_certified", 1.0), (None, 1.0)]
)
def test_the_share_follows_the_certification(status, share):
    certification = {"status": status} if status else None
    assert share_for(certification, Policy()) == share


def test_the_draw_decides_and_is_recorded():
    claim = Claim(decision={"certification": {"status": "certified"}})
    assert not sample_auto_approval(claim, Policy(), draw=0.5)
    assert claim.decision["audit"] == {"share": 0.02, "selected": False}
    assert sample_auto_approval(claim, Policy(), draw=0.01)
    assert claim.decision["audit"]["state"] == "pending"


def test_each_reviewer_gets_their_own_audit_and_keeps_it(api):
    first_claim, second_claim = _paid_claim(api, "ord-1"), _paid_claim(api, "ord-2")
    one, two = api.reviewer(), api.reviewer()
    lease = api.client.post("/v1/review/audit/lease", headers=one).json()
    assert lease["claim_id"] == first_claim
    assert api.client.post("/v1/review/audit/lease", headers=two).json()["claim_id"] == second_claim
    again = api.client.post("/v1/review/audit/lease", headers=one).json()
    assert again["claim_id"] == first_claim
    assert again["lease_expires_at"] >= lease["lease_expires_at"]
    queue = api.client.get("/v1/review/audit", headers=one).json()
    assert {i["lease_holder"] is not None for i in queue["items"]} == {True}


def test_the_summary_measures_precision_per_kind_with_its_bound(api):
    reviewer = api.reviewer()
    verdicts = ["rotten", "rotten", "fresh", "unclear"]
    for i, verdict in enumerate(verdicts):
        claim_id = _paid_claim(api, f"ord-{i}")
        assert api.client.post("/v1/review/audit/lease", headers=reviewer).status_code == 200
        given = api.client.post(
            f"/v1/review/audit/{claim_id}/verdict", json={"verdict": verdict}, headers=reviewer
        )
        assert given.status_code == 200, given.text
    _paid_claim(api, "ord-pending")

    summary = api.client.get("/v1/review/audit/summary", headers=reviewer).json()

    assert summary["pending"] == 1
    (apple,) = summary["kinds"]
    assert (apple["produce"], apple["certification"]) == ("apple", "validated, uncertified")
    assert (apple["audited"], apple["correct"], apple["wrong"], apple["unclear"]) == (4, 2, 1, 1)
    assert apple["precision"] == pytest.approx(2 / 3)
    # exact: the lower bound p solves P(X >= 2; 3, p) = 0.05, i.e. 3p^2 - 2p^3 = 0.05
    p = apple["precision_lower_bound"]
    assert 3 * p**2 - 2 * p**3 == pytest.approx(0.05, abs=1e-5)
