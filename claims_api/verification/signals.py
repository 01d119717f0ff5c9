"""Verification signals: each one a reason code with its value, threshold and whether it
fired. None rejects a claim; a fired signal sends the claim to a person."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from claims_api.decisions.policy import Policy
from claims_api.inference.model import PhotoScores
from claims_api.orders.models import Order, OrderLine
from claims_api.photos.messages import register
from claims_api.photos.models import Photo

REASONS: dict[str, dict[str, str]] = {
    "photo_quality": {
        "en": "A photo is not usable (too dark, blurred, too small or unclear).",
        "zh": "有照片无法使用（太暗、模糊、太小或看不清）。",
    },
    "model_unavailable": {
        "en": "The photos could not be scored automatically.",
        "zh": "照片暂时无法自动识别。",
    },
    "model_not_confident": {
        "en": "The model is not confident that the produce is spoiled.",
        "zh": "系统无法确定商品已经变质。",
    },
    "out_of_distribution": {
        "en": "A photo looks unlike the photos the model was trained on.",
        "zh": "有照片与系统熟悉的照片差别较大。",
    },
    "not_produce": {
        "en": "A photo does not seem to show produce — please photograph the item itself.",
        "zh": "照片中似乎没有生鲜商品，请对准商品本身拍摄。",
    },
    "wrong_item": {
        "en": "The photo seems to show another item than the one ordered — "
        "please photograph the ordered item.",
        "zh": "照片中的商品似乎与订单商品不符，请拍摄所购商品。",
    },
    "produce_uncertain": {
        "en": "The model cannot tell which produce the photo shows.",
        "zh": "系统无法识别照片中的商品种类。",
    },
    "produce_mismatch": {
        "en": "The photographed produce does not match the ordered item.",
        "zh": "照片中的商品与订单商品不一致。",
    },
    "produce_unknown_to_model": {
        "en": "The model was not trained on the ordered produce.",
        "zh": "系统尚未学习识别该商品。",
    },
    "claim_window": {
        "en": "The claim was made after the claim window for this produce.",
        "zh": "已超过该商品的售后申请时限。",
    },
    "claim_before_delivery": {
        "en": "The claim was made before the order was delivered.",
        "zh": "订单送达前提交了售后申请。",
    },
    "amount_over_cap": {
        "en": "The amount is above the automatic-approval cap.",
        "zh": "金额超过自动审核上限。",
    },
    "claim_frequency": {
        "en": "The customer has made many claims recently.",
        "zh": "近期售后申请次数较多。",
    },
}
for _code, _texts in REASONS.items():
    register(_code, _texts)
MESSAGES: dict[str, str] = {code: texts["en"] for code, texts in REASONS.items()}


@dataclass(frozen=True)
class Signal:
    code: str
    fired: bool
    value: Any
    threshold: Any
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CustomerHistory:
    claims_30d: int
    paid_30d_cents: int


@dataclass(frozen=True)
class ClaimContext:
    order: Order
    line: OrderLine
    photos: list[Photo]
    requested_cents: int
    submitted_at: datetime
    history: CustomerHistory
    policy: Policy

    @property
    def scores(self) -> list[PhotoScores]:
        return [PhotoScores.from_dict(p.scores) for p in self.photos if p.scores]

    @property
    def all_scored(self) -> bool:
        return all(p.scores for p in self.photos)


def _signal(code: str, fired: bool, value: Any, threshold: Any, **details: Any) -> Signal:
    return Signal(code, bool(fired), value, threshold, MESSAGES[code], details)


def photo_quality(ctx: ClaimContext) -> Signal:
    failing = [p.id for p in ctx.photos if not p.quality.get("ok", False)]
    return _signal("photo_quality", failing, len(failing), 0, photos=failing)


def model_unavailable(ctx: ClaimContext) -> Signal:
    missing = [p.id for p in ctx.photos if not p.scores]
    return _signal("model_unavailable", missing, len(missing), 0, photos=missing)


def model_not_confident(ctx: ClaimContext) -> Signal:
    scores = ctx.scores
    if not scores:
        return _signal("model_not_confident", True, None, None)
    lowest = min(s.p_rotten for s in scores)
    threshold = scores[0].auto_approve_threshold
    return _signal(
        "model_not_confident",
        lowest < threshold,
        round(lowest, 4),
        threshold,
        model_version=scores[0].model_version,
        threshold_version=scores[0].threshold_version,
    )


def out_of_distribution(ctx: ClaimContext) -> Signal:
    scores = ctx.scores
    worst = max((s.ood_score for s in scores), default=None)
    threshold = scores[0].ood_threshold if scores else None
    return _signal("out_of_distribution", worst is not None and worst > threshold, worst, threshold)


def not_produce(ctx: ClaimContext) -> Signal:
    hits = [s for s in ctx.scores if s.produce == "other"]
    return _signal("not_produce", hits, len(hits), 0)


def produce_match(ctx: ClaimContext) -> list[Signal]:
    """Only a confident mismatch is a flag; an unsure produce head just blocks auto-approval."""
    scores = ctx.scores
    if not scores:
        return []
    ordered = ctx.line.produce
    labels = set(scores[0].produce_probs)
    if ordered not in labels:
        return [_signal("produce_unknown_to_model", True, ordered, sorted(labels))]
    confident = [s for s in scores if s.produce_confident]
    mismatched = sorted({s.produce for s in confident if s.produce != ordered})
    unsure = [s for s in scores if not s.produce_confident and s.produce != "other"]
    minimum = scores[0].produce_confidence_min
    return [
        _signal("produce_mismatch", mismatched, mismatched or [ordered], ordered),
        _signal(
            "produce_uncertain",
            unsure,
            min((s.produce_confidence for s in scores), default=None),
            minimum,
        ),
    ]


def claim_window(ctx: ClaimContext) -> list[Signal]:
    hours = (ctx.submitted_at - ctx.order.delivered_at).total_seconds() / 3600
    window = ctx.policy.claim_window_hours_for(ctx.line.produce, ctx.line.sku)
    return [
        _signal("claim_before_delivery", hours < 0, round(hours, 2), 0),
        _signal("claim_window", hours > window, round(hours, 2), window),
    ]


def amount_cap(ctx: ClaimContext) -> Signal:
    cap = ctx.policy.auto_approve_cap_cents
    return _signal("amount_over_cap", ctx.requested_cents > cap, ctx.requested_cents, cap)


def claim_frequency(ctx: ClaimContext) -> Signal:
    limit = ctx.policy.max_claims_30d
    return _signal(
        "claim_frequency", ctx.history.claims_30d >= limit, ctx.history.claims_30d, limit
    )


SignalCheck = Callable[[ClaimContext], Signal | list[Signal]]

CHECKS: list[SignalCheck] = [
    photo_quality,
    model_unavailable,
    model_not_confident,
    out_of_distribution,
    not_produce,
    produce_match,
    claim_window,
    amount_cap,
    claim_frequency,
]


def collect(ctx: ClaimContext) -> list[Signal]:
    signals: list[Signal] = []
    for check in CHECKS:
        result = check(ctx)
        signals.extend(result if isinstance(result, list) else [result])
    return signals
