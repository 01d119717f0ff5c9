"""What the customer is told, as a pure function of the claim and the policy: every outcome
renders in both languages with its amounts and times, and none names an internal check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from claims_api.claims.models import Claim
from claims_api.rules import RULES, Policy
from claims_api.rules.outcome import SENTENCES, customer_outcome

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def _claim(status: str, **fields) -> Claim:
    base = {
        "id": "clm_1",
        "customer_id": "cust-1",
        "status": status,
        "requested_cents": 600,
        "approved_cents": None,
        "sla_deadline": NOW + timedelta(hours=4),
        "decided_at": None,
        "appealed": False,
        "decision": {},
        "reason_codes": ",model_not_confident,photo_quality,claim_frequency,",
    }
    return Claim(**{**base, **fields})


REVIEW = {"review": {"reason_code": "not_spoiled", "message": "Looks fresh to us."}}
CASES = {
    "received": _claim("submitted"),
    "approved": _claim("approved", approved_cents=600),
    "paid": _claim("paid", approved_cents=600),
    "partially_paid": _claim("paid", approved_cents=300),
    "in_review": _claim("in_review"),
    "appeal_in_review": _claim("in_review", appealed=True),
    "photos_requested": _claim("photos_requested", decision=REVIEW),
    "rejected": _claim("rejected", decided_at=NOW, decision=REVIEW),
    "rejected_appeal_closed": _claim(
        "rejected", decided_at=NOW - timedelta(days=30), decision=REVIEW
    ),
    "rejected_final": _claim("rejected", decided_at=NOW, appealed=True, decision=REVIEW),
    "reversed": _claim("reversed", approved_cents=600),
}


def test_every_outcome_has_a_case():
    assert set(CASES) == set(SENTENCES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_every_outcome_renders_in_both_languages(code: str):
    policy = Policy()
    for locale in ("zh", "en"):
        outcome = customer_outcome(CASES[code], policy, locale, now=NOW)
        assert outcome.code == code
        assert outcome.message and "{" not in outcome.message
        assert not any(rule in outcome.message for rule in RULES)
    event = outcome.to_event(policy)
    assert event["message_key"] == f"claim.outcome.{code}"
    assert set(event["messages"]) == {"zh", "en"}


def test_amounts_and_times_are_the_customers():
    policy = Policy()
    partial = customer_outcome(CASES["partially_paid"], policy, "en", now=NOW)
    assert (
        partial.message == "We have refunded ¥3.00 of the ¥6.00 you claimed to your store credit."
    )
    in_review = customer_outcome(CASES["in_review"], policy, "zh", now=NOW)
    assert "2026-12-04 22:00" in in_review.message  # 14:00 UTC in Asia/Shanghai
    rejected = customer_outcome(CASES["rejected"], policy, "en", now=NOW)
    assert rejected.appeal_until == NOW + timedelta(hours=policy.appeal_window_hours)
    assert rejected.reviewer_message == "Looks fresh to us."


def test_only_the_reasons_the_customer_can_act_on_become_notes():
    notes = customer_outcome(CASES["in_review"], Policy(), "en", now=NOW).notes
    assert notes == [RULES["photo_quality"].customer["en"]]  # not the model, not frequency


def test_no_reviewer_words_before_a_person_decided():
    waiting = _claim("in_review", appealed=True, decision=REVIEW)
    assert customer_outcome(waiting, Policy(), "en", now=NOW).reviewer_message is None
