"""Velocity, amount and earned trust through the HTTP API: each
signal against its Policy limit, with value, threshold and fired in the stored report."""

from __future__ import annotations

from claims_api.rules.policy import Policy
from claims_api.rules.review_reasons import REVIEW_REASONS

# Synthetic photos are simple blobs: two of one produce can pass for the same photo. Tests
# whose claims must differ only in the signal under test give each claim another produce.
KINDS = ("apple", "banana", "orange")


def _use_policy(container, **changes) -> Policy:
    container.policy = Policy(**{**Policy().model_dump(), **changes})
    return container.policy


def _claim(
    api,
    headers,
    order_id: str,
    *,
    rotten: bool = True,
    quantity: int = 2,
    produce: str = "apple",
    seed: int = 0,
) -> dict:
    photo = api.upload_fruit(headers, produce=produce, rotten=rotten, seed=seed)
    response = api.claim(headers, [photo], order_id=order_id, quantity=quantity)
    assert response.status_code == 201, response.text
    return response.json()


def _signals(api, claim: dict) -> dict[str, dict]:
    report = api.client.get(f"/v1/claims/{claim['id']}/verification", headers=api.reviewer())
    assert report.status_code == 200, report.text
    return {s["code"]: s for s in report.json()["signals"]}


def _review(api, claim: dict, outcome: str) -> None:
    reviewer = api.reviewer()
    lease = api.client.post("/v1/review/lease", headers=reviewer)
    assert lease.status_code == 200 and lease.json()["claim_id"] == claim["id"], lease.text
    decided = api.client.post(
        f"/v1/review/claims/{claim['id']}/decision",
        headers=reviewer,
        json={
            "outcome": outcome,
            "reason_code": REVIEW_REASONS[outcome][0],
            "message": "Checked the photos.",
        },
    )
    assert decided.status_code == 200, decided.text


def _reviewed_claims(api, headers, outcomes: list[str]) -> None:
    for i, outcome in enumerate(outcomes):
        kind = KINDS[1 + i % 2]  # never the apple of the claim under test
        api.put_order(f"ord-r{i}", produce=kind)
        claim = _claim(api, headers, f"ord-r{i}", rotten=False, produce=kind, seed=i)
        assert claim["status"] == "in_review"
        _review(api, claim, outcome)


def test_every_new_signal_is_in_the_report_with_value_and_threshold(api):
    api.put_order(pickup_point_id="pp-1")
    customer = api.customer()

    signals = _signals(api, _claim(api, customer, "ord-1"))

    for code in (
        "paid_amount_30d",
        "claim_rate",
        "pickup_point_claim_rate",
        "pickup_point_claims_30d",
        "trust",
        "photo_reused_own",
        "photo_reused_other_customer",
        "captured_before_delivery",
        "edited_photo",
    ):
        assert {"fired", "value", "threshold", "message"} <= set(signals[code]), code
        assert signals[code]["fired"] is False, signals[code]


def test_compensation_paid_in_30_days_above_the_limit_goes_to_a_person(api, container):
    _use_policy(container, max_paid_cents_30d=1_000)
    customer = api.customer()
    api.put_order("ord-1")
    api.put_order("ord-2", produce="banana")
    first = _claim(api, customer, "ord-1")
    assert first["status"] == "paid"
    assert _signals(api, first)["paid_amount_30d"]["value"] == 600

    second = _claim(api, customer, "ord-2", produce="banana")

    signal = _signals(api, second)["paid_amount_30d"]
    assert (signal["fired"], signal["value"], signal["threshold"]) == (True, 1_200, 1_000)
    assert signal["details"]["paid_30d_cents"] == 600
    assert second["status"] == "in_review" and api.reasons(second) == ["paid_amount_30d"]


def test_claim_rate_is_judged_only_from_enough_orders(api, container):
    _use_policy(container, claim_rate_min_orders=4, max_claim_rate=0.5)
    customer = api.customer()
    for i in range(3):
        api.put_order(f"ord-{i}")
    early = _signals(api, _claim(api, customer, "ord-0"))["claim_rate"]
    assert early["fired"] is False and early["details"]["judged"] is False
    assert early["value"] == round(1 / 3, 4)

    api.put_order("ord-3")
    half = _signals(api, _claim(api, customer, "ord-1", seed=1))["claim_rate"]
    assert (half["fired"], half["value"], half["threshold"]) == (False, 0.5, 0.5)
    third = _claim(api, customer, "ord-2", seed=2)

    signal = _signals(api, third)["claim_rate"]
    assert (signal["fired"], signal["value"]) == (True, 0.75)
    assert signal["details"] | {"orders": 4, "claimed_orders": 3} == signal["details"]
    assert "claim_rate" in api.reasons(third)


def test_a_pickup_points_claim_rate_and_claim_count_are_limited(api, container):
    _use_policy(
        container,
        pickup_point_min_orders=4,
        max_pickup_point_claim_rate=0.5,
        max_pickup_point_claims_30d=2,
    )
    customers = [api.customer(f"cust-{i}") for i in range(4)]
    for i in range(4):
        api.put_order(f"ord-{i}", customer_id=f"cust-{i}", pickup_point_id="pp-1")
    api.put_order("ord-elsewhere", customer_id="cust-0", pickup_point_id="pp-2")
    first = _signals(api, _claim(api, customers[0], "ord-0"))
    assert first["pickup_point_claim_rate"]["value"] == 0.25
    assert first["pickup_point_claims_30d"]["value"] == 0
    _claim(api, customers[1], "ord-1", seed=1)

    third = _claim(api, customers[2], "ord-2", seed=2)

    signals = _signals(api, third)
    rate, count = signals["pickup_point_claim_rate"], signals["pickup_point_claims_30d"]
    assert (rate["fired"], rate["value"], rate["threshold"]) == (True, 0.75, 0.5)
    assert (count["fired"], count["value"], count["threshold"]) == (True, 2, 2)
    assert rate["details"]["pickup_point_id"] == "pp-1"
    assert {"pickup_point_claim_rate", "pickup_point_claims_30d"} <= set(api.reasons(third))
    other = _signals(api, _claim(api, customers[0], "ord-elsewhere", seed=3))
    assert other["pickup_point_claims_30d"]["value"] == 0


def test_an_order_without_pickup_point_has_no_pickup_signals(api):
    api.put_order()
    customer = api.customer()

    signals = _signals(api, _claim(api, customer, "ord-1"))

    assert "pickup_point_claim_rate" not in signals


def test_a_new_customer_gets_the_base_cap(api, container):
    api.put_order()
    customer = api.customer()

    signals = _signals(api, _claim(api, customer, "ord-1"))

    trust = signals["trust"]
    assert (trust["fired"], trust["value"]) == (False, "new")
    assert trust["threshold"] == container.policy.auto_approve_cap_cents
    assert signals["amount_over_cap"]["threshold"] == container.policy.auto_approve_cap_cents
    assert signals["amount_over_cap"]["details"]["trust_level"] == "new"


def test_claims_confirmed_by_reviewers_raise_the_cap(api, container):
    policy = _use_policy(container, max_claims_30d=10)
    customer = api.customer()
    _reviewed_claims(api, customer, ["approve"] * policy.trust_confirmed_min)
    api.put_order("ord-big", quantity=10, unit_price_cents=1_000)

    claim = _claim(api, customer, "ord-big", quantity=8)  # 8000 > base cap 5000

    signals = _signals(api, claim)
    assert signals["trust"]["value"] == "trusted"
    assert signals["trust"]["details"]["confirmed_claims"] == policy.trust_confirmed_min
    cap = signals["amount_over_cap"]
    assert (cap["fired"], cap["value"], cap["threshold"]) == (False, 8_000, 10_000)
    assert api.reasons(claim) == [], claim
    assert claim["status"] == "paid"


def test_a_rejected_claim_lowers_the_cap(api, container):
    _use_policy(container, max_claims_30d=10)
    customer = api.customer()
    _reviewed_claims(api, customer, ["approve", "reject"])
    api.put_order("ord-next", quantity=10, unit_price_cents=1_000)

    claim = _claim(api, customer, "ord-next", quantity=3)  # 3000: under 5000, over 2500

    signals = _signals(api, claim)
    assert (signals["trust"]["value"], signals["trust"]["threshold"]) == ("reduced", 2_500)
    assert signals["trust"]["details"]["rejected_claims"] == 1
    cap = signals["amount_over_cap"]
    assert (cap["fired"], cap["value"], cap["threshold"]) == (True, 3_000, 2_500)
    assert cap["details"]["trust_level"] == "reduced"
    assert api.reasons(claim) == ["amount_over_cap"]


def test_repeated_rejections_send_every_claim_to_a_person(api, container):
    _use_policy(container, max_claims_30d=10)
    customer = api.customer()
    _reviewed_claims(api, customer, ["reject", "reject"])
    api.put_order("ord-small", quantity=1, unit_price_cents=100)

    claim = _claim(api, customer, "ord-small", quantity=1)

    signals = _signals(api, claim)
    assert (signals["trust"]["value"], signals["amount_over_cap"]["threshold"]) == ("restricted", 0)
    assert claim["status"] == "in_review" and api.reasons(claim) == ["amount_over_cap"]


def test_the_reason_codes_are_the_signals_that_can_fire(api) -> None:
    """The reviewer queue filters by these: every signal a decision records is named, the
    informational ``trust`` is not a reason, and upload-only problems are not either."""
    from claims_api.rules import REASON_CODES, RULES

    REASONS = set(RULES)
    INFORMATIONAL = {code for code, rule in RULES.items() if rule.informational}

    api.put_order()
    customer = api.customer()
    claim = api.claim(customer, [api.upload_fruit(customer)]).json()
    report = api.client.get(f"/v1/claims/{claim['id']}/verification", headers=api.reviewer())
    recorded = {s["code"] for s in report.json()["signals"]}
    assert recorded <= set(REASONS)
    assert recorded - INFORMATIONAL <= set(REASON_CODES)
    assert "trust" in recorded and "trust" not in REASON_CODES
    assert "wrong_item" not in REASON_CODES
