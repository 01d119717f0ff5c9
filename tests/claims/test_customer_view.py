"""What the customer and the shop see: the decision in words and in the customer's language,
the reviewer's message, no internals, and no way round a person's "no"."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from claims_api.claims.models import Claim
from claims_api.compensation.models import LedgerPosting
from claims_api.db import utcnow
from claims_api.events.models import OutboxEvent
from claims_api.rules import RULES
from claims_api.rules.review_reasons import REVIEW_REASONS

REJECTION = "The apples in your photo look firm and fresh to us."


def _manual_claim(api, customer, order_id="ord-1", seed=0, customer_id="cust-1", **headers):
    api.put_order(order_id, customer_id=customer_id)
    photo = api.upload_fruit(customer, rotten=False, seed=seed)
    response = api.claim({**customer, **headers}, [photo], order_id=order_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "in_review"
    return body


def _leased(api, claim_id: str) -> dict[str, str]:
    """A new reviewer holding the lease of ``claim_id`` (the only claim waiting)."""
    reviewer = api.reviewer()
    lease = api.client.post("/v1/review/lease", headers=reviewer)
    assert lease.status_code == 200 and lease.json()["claim_id"] == claim_id, lease.text
    return reviewer


def _decide(
    api,
    claim_id: str,
    outcome: str,
    reason: str,
    message: str | None = None,
    reviewer: dict[str, str] | None = None,
):
    reviewer = reviewer or _leased(api, claim_id)
    body = {"outcome": outcome, "reason_code": reason}
    if message is not None:
        body["message"] = message
    return api.client.post(f"/v1/review/claims/{claim_id}/decision", headers=reviewer, json=body)


def _reject(api, claim_id: str):
    decided = _decide(api, claim_id, "reject", "not_spoiled", REJECTION)
    assert decided.status_code == 200, decided.text
    return decided.json()


def _events(container, claim_id: str) -> list[OutboxEvent]:
    with container.db.read_session() as session:
        return list(
            session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.aggregate_id == claim_id)
                .order_by(OutboxEvent.id)
            )
        )


# --- 1. the reviewer's message reaches the customer --------------------------------------


def test_the_reviewers_message_reaches_the_customer_and_the_event(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    _reject(api, claim["id"])

    view = api.client.get(
        f"/v1/claims/{claim['id']}", headers={**customer, "Accept-Language": "en"}
    ).json()
    outcome = view["outcome"]
    assert outcome["code"] == "rejected" and outcome["reviewer_message"] == REJECTION
    assert outcome["review_reason"] == "not_spoiled"
    assert "appeal once" in outcome["message"] and outcome["appeal_until"]

    rejected = [e for e in _events(container, claim["id"]) if e.event_type == "claim.rejected"]
    event_outcome = rejected[0].payload["outcome"]
    assert event_outcome["code"] == "rejected"
    assert event_outcome["message_key"] == "claim.outcome.rejected"
    assert event_outcome["reviewer_message"] == REJECTION
    assert event_outcome["messages"]["zh"] and event_outcome["messages"]["en"]
    assert datetime.fromisoformat(event_outcome["appeal_until"]) == datetime.fromisoformat(
        outcome["appeal_until"]
    )


def test_a_request_for_photos_says_which_and_needs_a_message(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer = _leased(api, claim["id"])
    silent = _decide(api, claim["id"], "request_photos", "more_photos_needed", reviewer=reviewer)
    assert silent.status_code == 422 and silent.json()["error"]["code"] == "message_required"

    ask = "Please photograph the underside of the apple, close up."
    asked = _decide(
        api, claim["id"], "request_photos", "more_photos_needed", ask, reviewer=reviewer
    )
    assert asked.status_code == 200, asked.text

    view = api.client.get(f"/v1/claims/{claim['id']}", headers=customer).json()
    assert view["status"] == "photos_requested"
    assert view["outcome"]["code"] == "photos_requested"
    assert view["outcome"]["reviewer_message"] == ask
    event = [e for e in _events(container, claim["id"]) if e.event_type.endswith("requested")]
    assert event[0].payload["outcome"]["reviewer_message"] == ask


# --- 2. a person's "no" holds ---------------------------------------------------------------


def test_a_new_claim_on_a_rejected_line_points_to_the_appeal(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    _reject(api, claim["id"])

    again = api.claim(customer, [api.upload_fruit(customer, rotten=True, seed=7)])

    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["code"] == "claim_rejected_appeal_instead"
    assert error["details"]["claim_id"] == claim["id"] and error["details"]["appeal_until"]
    with container.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 1


def test_after_the_appeal_window_a_new_claim_goes_to_a_person_never_the_machine(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    _reject(api, claim["id"])
    window = timedelta(hours=container.policy.appeal_window_hours)
    with container.db.session() as session:  # the rejection is older than the window
        session.execute(
            update(Claim)
            .where(Claim.id == claim["id"])
            .values(decided_at=utcnow() - window - timedelta(minutes=1))
        )

    late_appeal = api.client.post(
        f"/v1/claims/{claim['id']}/appeal", headers=customer, json={"message": "Please look again."}
    )
    assert late_appeal.status_code == 409
    assert late_appeal.json()["error"]["code"] == "appeal_window_closed"

    again = api.claim(customer, [api.upload_fruit(customer, rotten=True, seed=8)])
    assert again.status_code == 201, again.text
    body = again.json()
    assert body["status"] == "in_review"
    assert "refused_on_line" in api.reasons(body)
    with container.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(LedgerPosting)) == 0


def test_a_new_claim_racing_an_appeal_is_never_paid(api, container, backend):
    """The appeal and a new claim on the same line at once: whichever wins, the new claim is
    refused (the rejection is appealable, or the appeal made the line's claim open again)."""
    for round_ in range(3):
        customer_id = f"cust-race-{round_}"
        customer = api.customer(customer_id)
        order_id = f"ord-race-{round_}"
        api.put_order(order_id, customer_id=customer_id)
        photo = api.upload_fruit(customer, rotten=False, seed=round_)
        claim = api.claim(customer, [photo], order_id=order_id).json()
        _reject(api, claim["id"])
        rotten = api.upload_fruit(customer, rotten=True, seed=50 + round_)
        barrier = threading.Barrier(2)
        results: dict[str, int] = {}

        def appeal(customer=customer, claim=claim, barrier=barrier, results=results):
            barrier.wait()
            results["appeal"] = api.client.post(
                f"/v1/claims/{claim['id']}/appeal", headers=customer, json={"message": "Again."}
            ).status_code

        def new_claim(
            customer=customer, order_id=order_id, rotten=rotten, barrier=barrier, results=results
        ):
            barrier.wait()
            results["claim"] = api.claim(customer, [rotten], order_id=order_id).status_code

        threads = [threading.Thread(target=appeal), threading.Thread(target=new_claim)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert results == {"appeal": 200, "claim": 409}, (backend, round_, results)
        _reject(api, claim["id"])  # the appeal, decided: the queue is empty for the next round
    with container.db.read_session() as session:
        assert session.scalar(select(func.count()).select_from(LedgerPosting)) == 0


# --- 3. the review reasons are the catalogue's ---------------------------------------------


def test_an_unknown_reason_code_is_refused_with_the_allowed_ones(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer = _leased(api, claim["id"])

    refused = _decide(api, claim["id"], "reject", "customer_is_annoying", "No.", reviewer)

    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "unknown_reason_code"
    assert error["details"]["allowed"] == list(REVIEW_REASONS["reject"])
    wrong_outcome = _decide(api, claim["id"], "approve", "not_spoiled", reviewer=reviewer)
    assert wrong_outcome.status_code == 422
    assert wrong_outcome.json()["error"]["details"]["allowed"] == list(REVIEW_REASONS["approve"])
    assert [e.event_type for e in _events(container, claim["id"])][-1] == "claim.in_review"


# --- 4. the customer's language --------------------------------------------------------------


def test_accept_language_gives_the_customer_chinese_and_english(api):
    customer = api.customer()
    zh = _manual_claim(api, customer, **{"Accept-Language": "zh-CN,zh;q=0.9"})
    assert "审核" in zh["outcome"]["message"]

    en = api.client.get(f"/v1/claims/{zh['id']}", headers={**customer, "Accept-Language": "en"})
    assert "checking your claim" in en.json()["outcome"]["message"]
    default = api.client.get(f"/v1/claims/{zh['id']}", headers=customer).json()
    assert default["outcome"]["message"] == zh["outcome"]["message"]  # the mini-program's zh

    staff = api.client.get(
        f"/v1/claims/{zh['id']}", headers={**api.shop_headers(), "Accept-Language": "zh-CN"}
    ).json()
    [reason] = staff["decision"]["reasons"]
    assert reason == {"code": "model_not_confident", "message": "系统无法确定商品已经变质。"}


def test_a_paid_claim_says_how_much_and_where_in_the_customers_language(api):
    api.put_order()
    customer = {**api.customer(), "Accept-Language": "zh-CN"}
    paid = api.claim(customer, [api.upload_fruit(customer, rotten=True)], quantity=2).json()
    assert paid["status"] == "paid"
    assert paid["outcome"]["code"] == "paid"
    assert paid["outcome"]["message"] == "已向您的账户余额退款 ¥6.00。"


# --- 5. no internals in the customer's view --------------------------------------------------


def test_the_customers_view_names_no_internal_check_score_or_staff_member(api, container):
    customer = api.customer()
    claim = _manual_claim(api, customer)
    reviewer_view = _reject(api, claim["id"])
    reviewer_id = reviewer_view["decision"]["decided_by"]
    assert reviewer_id.startswith("rev_") and reviewer_view["decision"]["decided_by_name"]

    texts = []
    for language in ("en", "zh-CN"):
        headers = {**customer, "Accept-Language": language}
        texts.append(api.client.get(f"/v1/claims/{claim['id']}", headers=headers).text)
        texts.append(api.client.get("/v1/claims", headers=headers).text)
    texts.append(json.dumps(claim))
    for text in texts:
        for code in RULES:
            assert f'"{code}"' not in text and f"{code}," not in text, code
        assert reviewer_id not in text
        assert reviewer_view["decision"]["decided_by_name"] not in text
        for internal in ("p_rotten", "threshold", "model_version", "policy_version", "decision"):
            assert internal not in text, internal


# --- 6. the shop's customer service, and a customer's own orders -------------------------------


def test_the_shop_lists_and_reads_claims_by_customer_order_and_status(api):
    first, second = api.customer("cust-a"), api.customer("cust-b")
    a1 = _manual_claim(api, first, order_id="ord-a1", customer_id="cust-a")
    api.put_order("ord-b1", customer_id="cust-b")
    b1 = api.claim(second, [api.upload_fruit(second, rotten=True, seed=3)], order_id="ord-b1")
    assert b1.json()["status"] == "paid"
    shop = api.shop_headers()

    def ids(**query) -> list[str]:
        response = api.client.get("/v1/claims", headers=shop, params=query)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids(customer_id="cust-a") == [a1["id"]]
    assert ids(order_id="ord-b1") == [b1.json()["id"]]
    assert ids(status="in_review") == [a1["id"]]
    assert set(ids()) == {a1["id"], b1.json()["id"]}
    page = api.client.get("/v1/claims", headers=shop, params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    full = api.client.get(f"/v1/claims/{a1['id']}", headers=shop).json()
    assert full["decision"]["reasons"] and full["customer_id"] == "cust-a"
    bad = api.client.get("/v1/claims", headers=shop, params={"status": "lost"})
    assert bad.status_code == 422

    # a customer's listing is their own, whatever they ask for
    own = api.client.get("/v1/claims", headers=first, params={"customer_id": "cust-b"}).json()
    assert [item["id"] for item in own["items"]] == [a1["id"]]


def test_a_customer_reads_their_own_orders_and_no_one_elses(api):
    api.put_order("ord-mine", customer_id="cust-a")
    api.put_order("ord-theirs", customer_id="cust-b")
    customer = api.customer("cust-a")

    mine = api.client.get("/v1/orders/ord-mine", headers=customer)
    theirs = api.client.get("/v1/orders/ord-theirs", headers=customer)

    assert mine.status_code == 200 and mine.json()["customer_id"] == "cust-a"
    assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "order_not_found"
