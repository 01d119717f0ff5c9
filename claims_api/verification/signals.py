"""Verification signals: each one a reason code with its value, threshold and whether it
fired. None rejects a claim; a fired signal sends the claim to a person."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from claims_api.decisions.policy import Policy
from claims_api.inference.model import PhotoScores
from claims_api.orders.models import Order, OrderLine
from claims_api.photos.messages import register
from claims_api.photos.models import Photo
from claims_api.verification.duplicates import PhotoReuse
from claims_api.verification.history import CustomerHistory, PickupPointHistory

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
    "photo_reused_own": {
        "en": "A photo was already used on another of the customer's claims.",
        "zh": "有照片已在该顾客的其他售后申请中使用过。",
    },
    "photo_reused_other_customer": {
        "en": "A photo was already uploaded by another customer.",
        "zh": "有照片已由其他顾客上传过。",
    },
    "captured_before_delivery": {
        "en": "A photo was taken before the order was delivered.",
        "zh": "有照片的拍摄时间早于订单送达时间。",
    },
    "edited_photo": {
        "en": "A photo was saved by a photo-editing program.",
        "zh": "有照片经过修图软件处理。",
    },
    "paid_amount_30d": {
        "en": "With this claim, the customer's compensation in the last 30 days "
        "would be above the limit.",
        "zh": "加上本次申请，该顾客近30天的赔付金额将超过上限。",
    },
    "claim_rate": {
        "en": "A large share of the customer's orders ended in a claim.",
        "zh": "该顾客的订单中申请售后的比例较高。",
    },
    "pickup_point_claim_rate": {
        "en": "A large share of the pickup point's orders ended in a claim.",
        "zh": "该自提点的订单中申请售后的比例较高。",
    },
    "pickup_point_claims_30d": {
        "en": "The pickup point has had many claims in the last 30 days.",
        "zh": "该自提点近30天的售后申请较多。",
    },
    "trust": {
        "en": "The customer's trust level from earlier reviewed claims.",
        "zh": "根据以往审核结果得出的顾客信用等级。",
    },
}
for _code, _texts in REASONS.items():
    register(_code, _texts)
MESSAGES: dict[str, str] = {code: texts["en"] for code, texts in REASONS.items()}
INFORMATIONAL = frozenset({"trust"})  # signals that show a reviewer something and never fire
# the codes a claim's decision can give as reasons (the reviewer queue filters by them)
REASON_CODES = tuple(sorted(code for code in REASONS if code not in INFORMATIONAL))


@dataclass(frozen=True)
class Signal:
    code: str
    fired: bool
    value: Any
    threshold: Any
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies every detail (a few percent of the
        # claim's CPU in a profile): values and details are plain JSON data already.
        return {
            "code": self.code,
            "fired": self.fired,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class ClaimContext:
    order: Order
    line: OrderLine
    photos: list[Photo]
    requested_cents: int
    submitted_at: datetime
    history: CustomerHistory
    policy: Policy
    pickup: PickupPointHistory | None = None
    reuse: tuple[PhotoReuse, ...] = ()

    @property
    def scores(self) -> list[PhotoScores]:
        return [PhotoScores.from_dict(p.scores) for p in self.photos if p.scores]

    @property
    def all_scored(self) -> bool:
        return all(p.scores for p in self.photos)


def _signal(code: str, fired: bool, value: Any, threshold: Any, **details: Any) -> Signal:
    return Signal(code, bool(fired), value, threshold, MESSAGES[code], details)


# Upload-time problems that come from the model, not the quality gate: at claim time they are
# judged by not_produce and produce_mismatch (same rules), not counted again as photo_quality.
MODEL_PROBLEMS = frozenset({"not_produce", "wrong_item"})


def _gate_problems(photo: Photo) -> list[str]:
    quality = photo.quality or {}
    codes = [p.get("code", "unknown") for p in quality.get("problems", [])]
    gate = [code for code in codes if code not in MODEL_PROBLEMS]
    if not quality.get("ok", False) and not codes:
        return ["unknown"]
    return gate


def photo_quality(ctx: ClaimContext) -> Signal:
    failing = {p.id: problems for p in ctx.photos if (problems := _gate_problems(p))}
    return _signal(
        "photo_quality", failing, len(failing), 0, photos=list(failing), problems=failing
    )


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


@dataclass(frozen=True)
class Trust:
    level: str  # restricted | reduced | new | standard | trusted
    cap_cents: int


def trust_of(history: CustomerHistory, policy: Policy) -> Trust:
    """Reviewed claims earn or cost trust: rejections lower the auto-approve cap (to 0 from
    ``rejections_for_restricted`` on), enough confirmed claims raise it."""
    base = policy.auto_approve_cap_cents
    if history.rejected >= policy.rejections_for_restricted:
        return Trust("restricted", 0)
    if history.rejected > 0:
        return Trust("reduced", int(base * policy.reduced_cap_factor))
    if history.confirmed >= policy.trust_confirmed_min:
        return Trust("trusted", int(base * policy.trusted_cap_factor))
    return Trust("standard" if history.confirmed else "new", base)


def trust(ctx: ClaimContext) -> Signal:
    """Informational: never fires, shows the reviewer the level and the cap it gives."""
    level = trust_of(ctx.history, ctx.policy)
    return _signal(
        "trust",
        False,
        level.level,
        level.cap_cents,
        confirmed_claims=ctx.history.confirmed,
        rejected_claims=ctx.history.rejected,
        confirmed_for_trusted=ctx.policy.trust_confirmed_min,
        base_cap_cents=ctx.policy.auto_approve_cap_cents,
    )


def amount_cap(ctx: ClaimContext) -> Signal:
    level = trust_of(ctx.history, ctx.policy)
    return _signal(
        "amount_over_cap",
        ctx.requested_cents > level.cap_cents,
        ctx.requested_cents,
        level.cap_cents,
        trust_level=level.level,
        base_cap_cents=ctx.policy.auto_approve_cap_cents,
    )


def claim_frequency(ctx: ClaimContext) -> Signal:
    limit = ctx.policy.max_claims_30d
    return _signal(
        "claim_frequency", ctx.history.claims_30d >= limit, ctx.history.claims_30d, limit
    )


def paid_amount(ctx: ClaimContext) -> Signal:
    total = ctx.history.paid_30d_cents + ctx.requested_cents
    limit = ctx.policy.max_paid_cents_30d
    return _signal(
        "paid_amount_30d",
        total > limit,
        total,
        limit,
        paid_30d_cents=ctx.history.paid_30d_cents,
        requested_cents=ctx.requested_cents,
    )


def _rate(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 4)


def claim_rate(ctx: ClaimContext) -> Signal:
    """Only judged once the customer has ``claim_rate_min_orders`` orders in the window."""
    history, policy = ctx.history, ctx.policy
    judged = history.orders >= policy.claim_rate_min_orders
    rate = history.claim_rate
    return _signal(
        "claim_rate",
        judged and rate is not None and rate > policy.max_claim_rate,
        _rate(rate),
        policy.max_claim_rate,
        orders=history.orders,
        claimed_orders=history.claimed_orders,
        min_orders=policy.claim_rate_min_orders,
        judged=judged,
    )


def pickup_point(ctx: ClaimContext) -> list[Signal]:
    """The same velocity checks for the order's pickup point (group leader), when it has one."""
    point, policy = ctx.pickup, ctx.policy
    if point is None:
        return []
    judged = point.orders >= policy.pickup_point_min_orders
    rate = point.claim_rate
    return [
        _signal(
            "pickup_point_claim_rate",
            judged and rate is not None and rate > policy.max_pickup_point_claim_rate,
            _rate(rate),
            policy.max_pickup_point_claim_rate,
            pickup_point_id=point.pickup_point_id,
            orders=point.orders,
            claimed_orders=point.claimed_orders,
            min_orders=policy.pickup_point_min_orders,
            judged=judged,
        ),
        _signal(
            "pickup_point_claims_30d",
            point.claims_30d >= policy.max_pickup_point_claims_30d,
            point.claims_30d,
            policy.max_pickup_point_claims_30d,
            pickup_point_id=point.pickup_point_id,
        ),
    ]


def photo_reuse(ctx: ClaimContext) -> list[Signal]:
    """Matches come precomputed (``duplicates.find_reuse``); each kind is one signal whose
    value is the number of the claim's photos it concerns."""
    signals = []
    for code, kind in (
        ("photo_reused_own", "own_other_claim"),
        ("photo_reused_other_customer", "other_customer"),
    ):
        hits = [r for r in ctx.reuse if r.kind == kind]
        photos = sorted({r.photo_id for r in hits})
        signals.append(
            _signal(
                code,
                hits,
                len(photos),
                0,
                max_distance=ctx.policy.duplicate_max_distance,
                matches=[r.to_dict() for r in hits],
            )
        )
    return signals


def _captured_at(photo: Photo) -> datetime | None:
    raw = (photo.exif or {}).get("captured_at")
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _capture_tolerance_hours(photo: Photo, policy: Policy) -> float:
    tolerance = policy.capture_tolerance_minutes / 60
    if not (photo.exif or {}).get("captured_at_offset_known", False):
        tolerance += policy.capture_unknown_offset_hours
    return tolerance


def captured_before_delivery(ctx: ClaimContext) -> Signal:
    """EXIF DateTimeOriginal before delivery, beyond the tolerance. value: hours the capture
    lies before delivery for the worst photo (negative: after); threshold: its tolerance.
    Photos without EXIF time are not judged (normal for mini-program uploads)."""
    rows = []
    for photo in ctx.photos:
        captured = _captured_at(photo)
        if captured is None:
            continue
        lead = (ctx.order.delivered_at - captured) / timedelta(hours=1)
        tolerance = _capture_tolerance_hours(photo, ctx.policy)
        rows.append(
            {
                "photo_id": photo.id,
                "captured_at": captured.isoformat(),
                "offset_known": bool(photo.exif.get("captured_at_offset_known", False)),
                "hours_before_delivery": round(lead, 2),
                "tolerance_hours": round(tolerance, 2),
            }
        )
    if not rows:
        return _signal("captured_before_delivery", False, None, None, photos=[])
    worst = max(rows, key=lambda r: r["hours_before_delivery"] - r["tolerance_hours"])
    early = [r for r in rows if r["hours_before_delivery"] > r["tolerance_hours"]]
    return _signal(
        "captured_before_delivery",
        early,
        worst["hours_before_delivery"],
        worst["tolerance_hours"],
        photos=rows,
        early_photos=[r["photo_id"] for r in early],
    )


def _readings(software: str) -> list[str]:
    """The tag as read, plus its UTF-8 reading when EXIF's ASCII type made UTF-8 bytes
    (美图秀秀) arrive as Latin-1 text."""
    try:
        return [software, software.encode("latin-1").decode("utf-8")]
    except (UnicodeEncodeError, UnicodeDecodeError):
        return [software]


def editing_program(software: str | None, programs: tuple[str, ...]) -> str | None:
    """The configured editing program named in an EXIF Software tag, if any."""
    if not software:
        return None
    texts = [text.casefold() for text in _readings(software)]
    return next((p for p in programs if any(p.casefold() in text for text in texts)), None)


def edited_photo(ctx: ClaimContext) -> Signal:
    edited = []
    for photo in ctx.photos:
        software = (photo.exif or {}).get("software")
        program = editing_program(software, ctx.policy.editing_software)
        if program:
            edited.append({"photo_id": photo.id, "software": software, "program": program})
    return _signal("edited_photo", edited, len(edited), 0, photos=edited)


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
    trust,
    claim_frequency,
    paid_amount,
    claim_rate,
    pickup_point,
    photo_reuse,
    captured_before_delivery,
    edited_photo,
]


def collect(ctx: ClaimContext) -> list[Signal]:
    signals: list[Signal] = []
    for check in CHECKS:
        result = check(ctx)
        signals.extend(result if isinstance(result, list) else [result])
    return signals
