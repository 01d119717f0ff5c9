"""What the customer is told about their claim: one plain sentence in their language saying
what happened and what happens next, plus the reviewer's own words when a person decided.

It never names an internal check, a score, a threshold or a member of staff: the customer
learns the outcome, the amount, the deadline and what they can do, not how fraud is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from claims_api.claims.models import Claim
from claims_api.rules.policy import Policy
from claims_api.rules.signals import customer_text

CUSTOMER_LOCALES = ("zh", "en")
DEFAULT_CUSTOMER_LOCALE = "zh"  # the mini-program's customers

SENTENCES: dict[str, dict[str, str]] = {
    "received": {
        "en": "We have received your claim and are checking it.",
        "zh": "我们已收到您的售后申请，正在处理。",
    },
    "approved": {
        "en": "Your claim is approved: {amount} is on its way to you.",
        "zh": "您的申请已通过，{amount} 正在退款中。",
    },
    "paid": {
        "en": "We have refunded {amount} to your {method}.",
        "zh": "已向您的{method}退款 {amount}。",
    },
    "partially_paid": {
        "en": "We have refunded {amount} of the {requested} you claimed to your {method}.",
        "zh": "您申请 {requested}，已向您的{method}退款 {amount}。",
    },
    "in_review": {
        "en": "A member of our team is checking your claim and will answer by {deadline}.",
        "zh": "我们的工作人员正在审核您的申请，将在 {deadline} 前答复。",
    },
    "appeal_in_review": {
        "en": "Another member of our team is reviewing your appeal and will answer by {deadline}.",
        "zh": "另一位工作人员正在复核您的申诉，将在 {deadline} 前答复。",
    },
    "photos_requested": {
        "en": "We need more photos to finish checking your claim: please add them to this claim.",
        "zh": "我们需要更多照片才能完成审核，请在本申请中补充照片。",
    },
    "rejected": {
        "en": "We could not approve this claim. You can appeal once, until {appeal_until}.",
        "zh": "此申请未能通过。您可以在 {appeal_until} 前申诉一次。",
    },
    "rejected_appeal_closed": {
        "en": "We could not approve this claim. The time to appeal has passed.",
        "zh": "此申请未能通过，申诉期限已过。",
    },
    "rejected_final": {
        "en": "We could not approve this claim after reviewing your appeal; this decision "
        "is final.",
        "zh": "经复核，此申请仍未能通过，此为最终结果。",
    },
    "reversed": {
        "en": "The refund for this claim was reversed. Please contact customer service.",
        "zh": "此申请的退款已被撤回，请联系客服。",
    },
}

# Parameters that are times (ISO 8601 in the event, local time in the sentence).
TIME_PARAMS = frozenset({"deadline", "appeal_until"})

PAYOUT_METHODS: dict[str, dict[str, str]] = {
    "store_credit": {"en": "store credit", "zh": "账户余额"},
    "original_payment": {"en": "original payment method", "zh": "原支付账户"},
}


@dataclass(frozen=True)
class CustomerOutcome:
    code: str  # a key of SENTENCES: what the mini-program switches on
    message: str
    params: dict[str, Any]
    reviewer_message: str | None = None
    review_reason: str | None = None  # the reviewer's reason code (rules.review_reasons)
    appeal_until: datetime | None = None
    respond_by: datetime | None = None
    notes: list[str] = field(default_factory=list)  # what the customer can fix, if anything

    def to_event(self, policy: Policy) -> dict[str, Any]:
        """The outcome as the shop backend needs it to notify the customer without calling
        back: the code, the sentence key, its parameters, the sentence in each language and
        the reviewer's words."""
        return {
            "code": self.code,
            "message_key": f"claim.outcome.{self.code}",
            "params": self.params,
            "messages": {
                locale: _sentence(self.code, locale, self.params, policy)
                for locale in CUSTOMER_LOCALES
            },
            "reviewer_message": self.reviewer_message,
            "review_reason": self.review_reason,
            "appeal_until": self.appeal_until.isoformat() if self.appeal_until else None,
            "respond_by": self.respond_by.isoformat() if self.respond_by else None,
        }


def customer_locale(locale: str | None) -> str:
    return locale if locale in CUSTOMER_LOCALES else DEFAULT_CUSTOMER_LOCALE


def appeal_until(claim: Claim, policy: Policy) -> datetime | None:
    """Until when a person's rejection can be appealed (None: not rejected, or appealed)."""
    if claim.status != "rejected" or claim.appealed or claim.decided_at is None:
        return None
    return claim.decided_at + timedelta(hours=policy.appeal_window_hours)


def customer_outcome(
    claim: Claim,
    policy: Policy,
    locale: str | None,
    *,
    payout_method: str | None = None,
    now: datetime | None = None,
) -> CustomerOutcome:
    locale = customer_locale(locale)
    review = (claim.decision or {}).get("review") or {}
    code, params = _code_and_params(claim, policy, payout_method, now)
    person_decided = bool(review) and claim.status not in ("in_review", "submitted")
    return CustomerOutcome(
        code=code,
        message=_sentence(code, locale, params, policy),
        params=params,
        reviewer_message=review.get("message") if person_decided else None,
        review_reason=review.get("reason_code") if person_decided else None,
        appeal_until=appeal_until(claim, policy),
        respond_by=claim.sla_deadline if claim.status in _OPEN else None,
        notes=_notes(claim, locale) if claim.status == "in_review" else [],
    )


_OPEN = ("submitted", "in_review", "photos_requested")


def _code_and_params(
    claim: Claim, policy: Policy, payout_method: str | None, now: datetime | None
) -> tuple[str, dict[str, Any]]:
    status = claim.status
    amount = claim.approved_cents or 0
    if status == "paid":
        params = {"amount_cents": amount, "method": payout_method or "store_credit"}
        if amount < claim.requested_cents:
            return "partially_paid", {**params, "requested_cents": claim.requested_cents}
        return "paid", params
    if status == "in_review":
        code = "appeal_in_review" if claim.appealed else "in_review"
        return code, {"deadline": claim.sla_deadline.isoformat()}
    if status == "rejected":
        if claim.appealed:
            return "rejected_final", {}
        until = appeal_until(claim, policy)
        if until is not None and (now is None or now <= until):
            return "rejected", {"appeal_until": until.isoformat()}
        return "rejected_appeal_closed", {}
    if status in ("approved", "partially_approved"):
        return "approved", {"amount_cents": amount}
    if status in ("photos_requested", "reversed"):
        return status, {}
    return "received", {}


def _sentence(code: str, locale: str, params: dict[str, Any], policy: Policy) -> str:
    texts = SENTENCES[code]
    template = texts.get(locale) or texts["en"]
    return template.format(**_rendered(params, locale, policy))


def _rendered(params: dict[str, Any], locale: str, policy: Policy) -> dict[str, str]:
    zone = ZoneInfo(policy.customer_timezone)
    out: dict[str, str] = {}
    for name, value in params.items():
        if name.endswith("_cents"):
            out[name.removesuffix("_cents")] = f"{policy.currency_symbol}{value / 100:.2f}"
        elif name == "method":
            names = PAYOUT_METHODS.get(value, {"en": value, "zh": value})
            out[name] = names.get(locale) or names["en"]
        elif name in TIME_PARAMS:
            out[name] = datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        else:
            out[name] = str(value)
    return out


def _notes(claim: Claim, locale: str) -> list[str]:
    """The reasons a claim waits for a person that the customer may be told (a blurred
    photo, another item) — never the checks kept to staff."""
    codes = [code for code in (claim.reason_codes or "").split(",") if code]
    return [text for code in codes if (text := customer_text(code, locale))]
