"""Erasure that erases: after ``DELETE /v1/customers/{id}/personal-data`` no table holds the
customer's words, the reviewers' words to them, the EXIF facts of their photos or their
pixels; the ledger and the decisions' facts stay."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select, text

from claims_api.compensation.models import LedgerEntry
from claims_api.models import Base
from data.synthetic import make_fruit
from tests.support.api import jpeg_bytes
from tests.support.real_photos import with_exif

NOTE = "My neighbour Mrs Zhang saw the courier drop the box"
APPEAL = "Please call me on 138-0000-1234, the apples were mushy"
REJECTION = "Dear Mr Wang, the apples at 12 Garden Road look fine to us"
ASK = "Mr Wang, please photograph the bruise near the stem"
SOFTWARE = "Snapseed 2.19 (Wang's phone)"
CAPTURED = datetime(2026, 12, 3, 21, 7, 33, tzinfo=UTC)
SECRETS = (NOTE, APPEAL, REJECTION, ASK, SOFTWARE, "Snapseed", "21:07:33", "2026:12:03")


def _decide(api, claim_id: str, body: dict) -> None:
    reviewer = api.reviewer()
    lease = api.client.post("/v1/review/lease", headers=reviewer)
    assert lease.status_code == 200 and lease.json()["claim_id"] == claim_id, lease.text
    decided = api.client.post(f"/v1/review/claims/{claim_id}/decision", headers=reviewer, json=body)
    assert decided.status_code == 200, decided.text


def _every_row_as_text(container) -> str:
    """Every row of every table, as one text to search."""
    rows = []
    with container.db.read_session() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(text(f"SELECT * FROM {table.name}")):
                rows.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(rows)


def test_an_erasure_leaves_nothing_that_identifies_the_customer(api, container):
    api.put_order(delivered_hours_ago=30)
    customer = api.customer()
    photo_bytes = with_exif(
        jpeg_bytes(make_fruit("apple", rotten=False, seed=4)),
        CAPTURED.astimezone(),
        software=SOFTWARE,
    )
    upload = api.upload(customer, photo_bytes)
    assert upload.status_code == 201, upload.text
    claim = api.claim(customer, [upload.json()["id"]], note=NOTE).json()
    assert claim["status"] == "in_review"
    ask = {"outcome": "request_photos", "reason_code": "more_photos_needed", "message": ASK}
    _decide(api, claim["id"], ask)
    extra = api.upload_fruit(customer, rotten=False, seed=5)
    added = api.client.post(
        f"/v1/claims/{claim['id']}/photos", headers=customer, json={"photo_ids": [extra]}
    )
    assert added.status_code == 200, added.text
    reject = {"outcome": "reject", "reason_code": "not_spoiled", "message": REJECTION}
    _decide(api, claim["id"], reject)
    appeal = api.client.post(
        f"/v1/claims/{claim['id']}/appeal", headers=customer, json={"message": APPEAL}
    )
    assert appeal.status_code == 200, appeal.text
    _decide(api, claim["id"], {"outcome": "approve", "reason_code": "spoiled_confirmed"})
    before = _every_row_as_text(container)
    assert all(secret in before for secret in (NOTE, APPEAL, REJECTION, ASK)), "seeded"
    assert "Snapseed" in before

    erased = api.client.delete("/v1/customers/cust-1/personal-data", headers=api.shop_headers())

    assert erased.status_code == 200, erased.text
    after = _every_row_as_text(container)
    leaks = [secret for secret in SECRETS if secret in after]
    assert not leaks, leaks
    # the facts accounting and audit need are still there
    staff = api.client.get(f"/v1/claims/{claim['id']}", headers=api.shop_headers()).json()
    assert staff["status"] == "paid" and staff["compensation"]["amount_cents"] == 600
    assert [t["status"] for t in staff["timeline"]][-2:] == ["approved", "paid"]
    with container.db.read_session() as session:
        entries = session.scalars(select(LedgerEntry)).all()
        assert entries and sum(e.amount_cents for e in entries) == 0
