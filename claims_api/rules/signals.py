"""The verification signals: one declarative entry per reason code.

Each entry says what the reviewer reads, what (if anything) the customer may be told, which
policy fields it reads and how it is checked. A fired signal sends the claim to a person;
none rejects it. Adding a signal means adding its check and its :class:`Rule` here (the
texts live in the entry) and a test; the decision, the reason-code enum, the workbench and
the generated docs pick it up from :data:`RULES`.

The facts a check reads are gathered beforehand (:class:`ClaimContext`): the database
lookups stay in ``claims_api.verification``; only the judgement is here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from claims_api.inference.model import PhotoScores
from claims_api.orders.models import Order, OrderLine
from claims_api.photos.models import Photo
from claims_api.rules.gate import PhotoGate, certification, photo_gate
from claims_api.rules.policy import Policy
from claims_api.verification.duplicates import PhotoReuse
from claims_api.verification.history import CustomerHistory, PickupPointHistory

Texts = dict[str, str]  # locale ("en", "zh") -> sentence

# Upload problems that come from the model, not the quality check: a claim judges them
# through the gate's own codes, not a second time as photo_quality.
MODEL_UPLOAD_PROBLEMS = frozenset({"not_produce", "wrong_item"})


@dataclass(frozen=True)
class Signal:
    code: str
    fired: bool
    value: Any
    threshold: Any
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies every detail: values and details are
        # plain JSON data already, and this runs for every signal of every claim.
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
    """Everything the checks read, gathered before any of them runs."""

    order: Order
    line: OrderLine
    photos: list[Photo]
    requested_cents: int
    submitted_at: datetime
    history: CustomerHistory
    policy: Policy
    pickup: PickupPointHistory | None = None
    reuse: tuple[PhotoReuse, ...] = ()
    refused_on_line: int = 0  # earlier claims on this order line a person refused

    @cached_property
    def scores(self) -> list[PhotoScores]:
        return [PhotoScores.from_dict(p.scores) for p in self.photos if p.scores]

    @cached_property
    def gates(self) -> dict[str, PhotoGate]:
        """Each photo's gate for the ordered produce (photo id -> gate)."""
        return {
            photo.id: photo_gate(
                PhotoScores.from_dict(photo.scores) if photo.scores else None,
                self.line.produce,
                quality_problems(photo),
                self.policy.certification_mode,
            )
            for photo in self.photos
        }

    def photos_raising(self, code: str) -> list[str]:
        return [photo_id for photo_id, gate in self.gates.items() if code in gate.codes]


def quality_problems(photo: Photo) -> list[str]:
    """The quality check's problem codes stored with the photo at upload."""
    quality = photo.quality or {}
    codes = [p.get("code", "unknown") for p in quality.get("problems", [])]
    if not quality.get("ok", False) and not codes:
        return ["unknown"]
    return [code for code in codes if code not in MODEL_UPLOAD_PROBLEMS]


Check = Callable[[ClaimContext], "Signal | None"]


@dataclass(frozen=True)
class Rule:
    """One reason code. ``when``: when it fires, for the docs. ``customer`` is None where
    telling the customer would only teach a fraudster what is checked: they are then told
    that a person looks at the claim. ``reads``: the :class:`Policy` fields the check reads.
    ``label``: the few words a chip in the workbench shows.
    ``informational``: shown to reviewers, never fires."""

    code: str
    when: str
    label: Texts
    reviewer: Texts
    customer: Texts | None
    check: Check
    reads: tuple[str, ...] = ()
    informational: bool = False

    def signal(self, fired: object, value: Any, threshold: Any, **details: Any) -> Signal:
        return Signal(self.code, bool(fired), value, threshold, self.reviewer["en"], details)


RULES: dict[str, Rule] = {}


def rule(
    code: str,
    *,
    when: str,
    label: Texts,
    reviewer: Texts,
    customer: Texts | None = None,
    reads: tuple[str, ...] = (),
    informational: bool = False,
) -> Callable[[Check], Check]:
    """Declares the decorated check as the rule for ``code``."""

    def register(check: Check) -> Check:
        if code in RULES:
            raise ValueError(f"reason code {code!r} is declared twice")
        for texts in (label, reviewer, customer or {}):
            if set(texts) - {"en", "zh"} or (texts and "en" not in texts):
                raise ValueError(f"{code}: texts need 'en' (and optionally 'zh') only")
        RULES[code] = Rule(code, when, label, reviewer, customer, check, reads, informational)
        return check

    return register


def _fire(code: str, fired: object, value: Any, threshold: Any, **details: Any) -> Signal:
    return RULES[code].signal(fired, value, threshold, **details)


# --- the photos, judged one by one by the gate -------------------------------------------


@rule(
    "photo_quality",
    when=(
        "a photo failed the quality gate (too small, dark, blown out, flat or blurry); "
        "model problems shown at upload (`not_produce`, `wrong_item`) are judged by "
        "`not_produce` / `produce_mismatch` instead"
    ),
    label={"en": "photo quality", "zh": "照片质量"},
    reviewer={
        "en": "A photo is not usable (too dark, blurred, too small or unclear).",
        "zh": "有照片无法使用（太暗、模糊、太小或看不清）。",
    },
    customer={
        "en": "A photo is not clear enough to judge (too dark, blurred or too small).",
        "zh": "有照片不够清晰，无法判断（太暗、模糊或太小）。",
    },
)
def photo_quality(ctx: ClaimContext) -> Signal:
    failing = {p.id: problems for p in ctx.photos if (problems := quality_problems(p))}
    return _fire("photo_quality", failing, len(failing), 0, photos=list(failing), problems=failing)


@rule(
    "model_unavailable",
    when=("a photo has no model score (model not loaded or failed)"),
    label={"en": "not scored", "zh": "未能评分"},
    reviewer={
        "en": "The photos could not be scored automatically.",
        "zh": "照片暂时无法自动识别。",
    },
)
def model_unavailable(ctx: ClaimContext) -> Signal:
    missing = ctx.photos_raising("model_unavailable")
    return _fire("model_unavailable", missing, len(missing), 0, photos=missing)


@rule(
    "model_not_confident",
    when=(
        "the lowest rotten probability among the photos is under the model's calibrated threshold"
    ),
    label={"en": "model unsure", "zh": "模型不确定"},
    reviewer={
        "en": "The model is not confident that the produce is spoiled.",
        "zh": "系统无法确定商品已经变质。",
    },
)
def model_not_confident(ctx: ClaimContext) -> Signal:
    scores = ctx.scores
    if not scores:
        return _fire("model_not_confident", True, None, None)
    cert = certification(scores[0], ctx.line.produce, ctx.policy.certification_mode)
    return _fire(
        "model_not_confident",
        ctx.photos_raising("model_not_confident"),
        round(min(s.p_rotten for s in scores), 4),
        cert.threshold,
        model_version=scores[0].model_version,
        threshold_version=scores[0].threshold_version,
        certification=cert.status,
    )


@rule(
    "kind_not_certified",
    when=(
        "`certification_mode` is `certified` and the model that scored the photos has no "
        "certificate for the ordered produce kind: auto-approval is off for the kind until "
        "enough held-out reviewer labels certify a threshold (`training/certify.py`)"
    ),
    label={"en": "kind not certified", "zh": "品种未认证"},
    reviewer={
        "en": "Automatic approval is not yet certified for this produce kind.",
        "zh": "该商品品种尚未通过自动审核认证。",
    },
    reads=("certification_mode",),
)
def kind_not_certified(ctx: ClaimContext) -> Signal | None:
    if ctx.policy.certification_mode != "certified" or not ctx.scores:
        return None
    return _fire(
        "kind_not_certified",
        ctx.photos_raising("kind_not_certified"),
        ctx.line.produce,
        sorted(ctx.scores[0].certificates),
    )


@rule(
    "out_of_distribution",
    when=("a photo is unlike the training photos (the model's OOD gate)"),
    label={"en": "unusual photo", "zh": "照片不常见"},
    reviewer={
        "en": "A photo looks unlike the photos the model was trained on.",
        "zh": "有照片与系统熟悉的照片差别较大。",
    },
)
def out_of_distribution(ctx: ClaimContext) -> Signal:
    scores = ctx.scores
    return _fire(
        "out_of_distribution",
        ctx.photos_raising("out_of_distribution"),
        max((s.ood_score for s in scores), default=None),
        scores[0].ood_threshold if scores else None,
    )


@rule(
    "not_produce",
    when=("the model sees no produce in a photo"),
    label={"en": "not produce", "zh": "非生鲜"},
    reviewer={
        "en": "A photo does not seem to show produce.",
        "zh": "有照片中似乎没有生鲜商品。",
    },
    customer={
        "en": "A photo does not seem to show produce — please photograph the item itself.",
        "zh": "照片中似乎没有生鲜商品，请对准商品本身拍摄。",
    },
)
def not_produce(ctx: ClaimContext) -> Signal:
    hits = ctx.photos_raising("not_produce")
    return _fire("not_produce", hits, len(hits), 0)


@rule(
    "produce_unknown_to_model",
    when=("the ordered produce is not among the model's labels"),
    label={"en": "produce unknown to model", "zh": "模型不识别该品种"},
    reviewer={
        "en": "The model was not trained on the ordered produce.",
        "zh": "系统尚未学习识别该商品。",
    },
)
def produce_unknown_to_model(ctx: ClaimContext) -> Signal | None:
    if not ctx.photos_raising("produce_unknown_to_model"):
        return None
    return _fire("produce_unknown_to_model", True, ctx.line.produce, sorted(_labels(ctx)))


def _labels(ctx: ClaimContext) -> set[str]:
    return set(ctx.scores[0].produce_probs) if ctx.scores else set()


def _produce_judged(ctx: ClaimContext) -> bool:
    """Match and certainty are judged only for a kind the model knows."""
    return bool(ctx.scores) and ctx.line.produce in _labels(ctx)


@rule(
    "produce_mismatch",
    when=("the model is confident the photo shows another produce than the order line"),
    label={"en": "other produce", "zh": "品种不符"},
    reviewer={
        "en": "The photographed produce does not match the ordered item.",
        "zh": "照片中的商品与订单商品不一致。",
    },
    customer={
        "en": "The photo seems to show another item than the one ordered — please photograph "
        "the ordered item.",
        "zh": "照片中的商品似乎与订单商品不符，请拍摄所购商品。",
    },
)
def produce_mismatch(ctx: ClaimContext) -> Signal | None:
    if not _produce_judged(ctx):
        return None
    ordered = ctx.line.produce
    photos = set(ctx.photos_raising("produce_mismatch"))
    seen = sorted({s.produce for p, s in _scored(ctx) if p in photos})
    return _fire("produce_mismatch", seen, seen or [ordered], ordered)


@rule(
    "produce_uncertain",
    when=("the produce head is unsure which produce it sees"),
    label={"en": "produce unclear", "zh": "品种不确定"},
    reviewer={
        "en": "The model cannot tell which produce the photo shows.",
        "zh": "系统无法识别照片中的商品种类。",
    },
)
def produce_uncertain(ctx: ClaimContext) -> Signal | None:
    if not _produce_judged(ctx):
        return None
    scores = ctx.scores
    return _fire(
        "produce_uncertain",
        ctx.photos_raising("produce_uncertain"),
        min((s.produce_confidence for s in scores), default=None),
        scores[0].produce_confidence_min,
    )


def _scored(ctx: ClaimContext) -> list[tuple[str, PhotoScores]]:
    return [(p.id, PhotoScores.from_dict(p.scores)) for p in ctx.photos if p.scores]


# --- the order and the claim itself -------------------------------------------------------


def _hours_since_delivery(ctx: ClaimContext) -> float:
    return (ctx.submitted_at - ctx.order.delivered_at).total_seconds() / 3600


@rule(
    "claim_before_delivery",
    when=("the claim comes before the delivery time"),
    label={"en": "claim before delivery", "zh": "送达前申请"},
    reviewer={
        "en": "The claim was made before the order was delivered.",
        "zh": "订单送达前提交了售后申请。",
    },
)
def claim_before_delivery(ctx: ClaimContext) -> Signal:
    hours = _hours_since_delivery(ctx)
    return _fire("claim_before_delivery", hours < 0, round(hours, 2), 0)


@rule(
    "claim_window",
    when=("the claim comes later after delivery than the produce's claim window"),
    label={"en": "late claim", "zh": "超出时限"},
    reviewer={
        "en": "The claim was made after the claim window for this produce.",
        "zh": "已超过该商品的售后申请时限。",
    },
    customer={
        "en": "The claim came after the usual claim window for this produce.",
        "zh": "申请已超过该商品通常的售后时限。",
    },
    reads=("claim_window_hours", "claim_window_hours_by_produce", "claim_window_hours_by_sku"),
)
def claim_window(ctx: ClaimContext) -> Signal:
    hours = _hours_since_delivery(ctx)
    window = ctx.policy.claim_window_hours_for(ctx.line.produce, ctx.line.sku)
    return _fire("claim_window", hours > window, round(hours, 2), window)


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


_TRUST_FIELDS = (
    "auto_approve_cap_cents",
    "trust_lookback_days",
    "trust_confirmed_min",
    "trusted_cap_factor",
    "trust_rejection_days",
    "reduced_cap_factor",
    "rejections_for_restricted",
)


@rule(
    "refused_on_line",
    when=(
        "a person already refused a claim on this order line (rejected it, or reversed its "
        "payout): a new claim on the line is never paid by the machine; while the rejection "
        "can still be appealed, a new claim is refused (409 `claim_rejected_appeal_instead`)"
    ),
    label={"en": "refused before", "zh": "曾被驳回"},
    reviewer={
        "en": "A person already refused an earlier claim on this order line.",
        "zh": "该订单行已有售后申请被人工驳回或撤回赔付。",
    },
    customer={
        "en": "A person already decided an earlier claim on this item, so a person checks "
        "this one too.",
        "zh": "该商品之前的申请已由工作人员处理，本次申请也将由工作人员审核。",
    },
    reads=("appeal_window_hours",),
)
def refused_on_line(ctx: ClaimContext) -> Signal:
    return _fire("refused_on_line", ctx.refused_on_line > 0, ctx.refused_on_line, 0)


@rule(
    "amount_over_cap",
    when=(
        "the amount is above the customer's auto-approval cap: `auto_approve_cap_cents` "
        "scaled by the trust level (details say which)"
    ),
    label={"en": "over the auto cap", "zh": "超出自动上限"},
    reviewer={
        "en": "The amount is above the automatic-approval cap.",
        "zh": "金额超过自动审核上限。",
    },
    reads=_TRUST_FIELDS,
)
def amount_over_cap(ctx: ClaimContext) -> Signal:
    level = trust_of(ctx.history, ctx.policy)
    return _fire(
        "amount_over_cap",
        ctx.requested_cents > level.cap_cents,
        ctx.requested_cents,
        level.cap_cents,
        trust_level=level.level,
        base_cap_cents=ctx.policy.auto_approve_cap_cents,
    )


@rule(
    "trust",
    when=("never fires: shows the reviewer the trust level and the cap it gives"),
    label={"en": "trust level", "zh": "信用等级"},
    reviewer={
        "en": "The customer's trust level from earlier reviewed claims.",
        "zh": "根据以往审核结果得出的顾客信用等级。",
    },
    reads=_TRUST_FIELDS,
    informational=True,
)
def trust(ctx: ClaimContext) -> Signal:
    level = trust_of(ctx.history, ctx.policy)
    return _fire(
        "trust",
        False,
        level.level,
        level.cap_cents,
        confirmed_claims=ctx.history.confirmed,
        rejected_claims=ctx.history.rejected,
        confirmed_for_trusted=ctx.policy.trust_confirmed_min,
        base_cap_cents=ctx.policy.auto_approve_cap_cents,
    )


# --- velocity: the customer's and the pickup point's history ------------------------------


@rule(
    "claim_frequency",
    when=("the customer already made `max_claims_30d` claims in 30 days"),
    label={"en": "many claims", "zh": "申请频繁"},
    reviewer={
        "en": "The customer has made many claims recently.",
        "zh": "近期售后申请次数较多。",
    },
    reads=("max_claims_30d",),
)
def claim_frequency(ctx: ClaimContext) -> Signal:
    limit = ctx.policy.max_claims_30d
    count = ctx.history.claims_30d
    return _fire("claim_frequency", count >= limit, count, limit)


@rule(
    "paid_amount_30d",
    when=(
        "compensation paid to the customer in 30 days plus this claim is above `max_paid_cents_30d`"
    ),
    label={"en": "30-day payout limit", "zh": "30天赔付超限"},
    reviewer={
        "en": "With this claim, the customer's compensation in the last 30 days would be "
        "above the limit.",
        "zh": "加上本次申请，该顾客近30天的赔付金额将超过上限。",
    },
    reads=("max_paid_cents_30d",),
)
def paid_amount_30d(ctx: ClaimContext) -> Signal:
    total = ctx.history.paid_30d_cents + ctx.requested_cents
    limit = ctx.policy.max_paid_cents_30d
    return _fire(
        "paid_amount_30d",
        total > limit,
        total,
        limit,
        paid_30d_cents=ctx.history.paid_30d_cents,
        requested_cents=ctx.requested_cents,
    )


def _rate_signal(
    code: str, orders: int, claimed: int, min_orders: int, max_rate: float, **details: Any
) -> Signal:
    """A share of orders that ended in a claim, judged only from ``min_orders`` orders on."""
    judged = orders >= min_orders
    rate = claimed / orders if orders else None
    return _fire(
        code,
        judged and rate is not None and rate > max_rate,
        None if rate is None else round(rate, 4),
        max_rate,
        **details,
        orders=orders,
        claimed_orders=claimed,
        min_orders=min_orders,
        judged=judged,
    )


@rule(
    "claim_rate",
    when=(
        "more than `max_claim_rate` of the customer's orders (delivered in "
        "`claim_rate_window_days`) ended in a claim; judged only from "
        "`claim_rate_min_orders` orders"
    ),
    label={"en": "high claim rate", "zh": "售后率高"},
    reviewer={
        "en": "A large share of the customer's orders ended in a claim.",
        "zh": "该顾客的订单中申请售后的比例较高。",
    },
    reads=("claim_rate_window_days", "claim_rate_min_orders", "max_claim_rate"),
)
def claim_rate(ctx: ClaimContext) -> Signal:
    history, policy = ctx.history, ctx.policy
    return _rate_signal(
        "claim_rate",
        history.orders,
        history.claimed_orders,
        policy.claim_rate_min_orders,
        policy.max_claim_rate,
    )


@rule(
    "pickup_point_claim_rate",
    when=(
        "the same share for the order's pickup point (group leader) above "
        "`max_pickup_point_claim_rate`, from `pickup_point_min_orders` orders; absent "
        "when the order has no `pickup_point_id`"
    ),
    label={"en": "pickup point claim rate", "zh": "自提点售后率高"},
    reviewer={
        "en": "A large share of the pickup point's orders ended in a claim.",
        "zh": "该自提点的订单中申请售后的比例较高。",
    },
    reads=("claim_rate_window_days", "pickup_point_min_orders", "max_pickup_point_claim_rate"),
)
def pickup_point_claim_rate(ctx: ClaimContext) -> Signal | None:
    point, policy = ctx.pickup, ctx.policy
    if point is None:
        return None
    return _rate_signal(
        "pickup_point_claim_rate",
        point.orders,
        point.claimed_orders,
        policy.pickup_point_min_orders,
        policy.max_pickup_point_claim_rate,
        pickup_point_id=point.pickup_point_id,
    )


@rule(
    "pickup_point_claims_30d",
    when=("the pickup point's orders already had `max_pickup_point_claims_30d` claims in 30 days"),
    label={"en": "pickup point claims", "zh": "自提点申请多"},
    reviewer={
        "en": "The pickup point has had many claims in the last 30 days.",
        "zh": "该自提点近30天的售后申请较多。",
    },
    reads=("max_pickup_point_claims_30d",),
)
def pickup_point_claims_30d(ctx: ClaimContext) -> Signal | None:
    point, policy = ctx.pickup, ctx.policy
    if point is None:
        return None
    return _fire(
        "pickup_point_claims_30d",
        point.claims_30d >= policy.max_pickup_point_claims_30d,
        point.claims_30d,
        policy.max_pickup_point_claims_30d,
        pickup_point_id=point.pickup_point_id,
    )


# --- photo provenance ----------------------------------------------------------------------


def _reuse_signal(ctx: ClaimContext, code: str, kind: str) -> Signal:
    """Matches come precomputed (``verification.duplicates.find_reuse``); the value is the
    number of the claim's photos concerned."""
    hits = [r for r in ctx.reuse if r.kind == kind]
    return _fire(
        code,
        hits,
        len({r.photo_id for r in hits}),
        0,
        max_distance=ctx.policy.duplicate_max_distance,
        matches=[r.to_dict() for r in hits],
    )


@rule(
    "photo_reused_own",
    when=(
        "a photo (or a re-compressed, resized, cropped, rotated, flipped or recoloured "
        "copy) is on another of the customer's claims; a re-upload for the same claim "
        "is fine"
    ),
    label={"en": "photo reused (own)", "zh": "照片重复（本人）"},
    reviewer={
        "en": "A photo was already used on another of the customer's claims.",
        "zh": "有照片已在该顾客的其他售后申请中使用过。",
    },
    reads=("duplicate_max_distance",),
)
def photo_reused_own(ctx: ClaimContext) -> Signal:
    return _reuse_signal(ctx, "photo_reused_own", "own_other_claim")


@rule(
    "photo_reused_other_customer",
    when=("another customer already uploaded the photo or such a copy (strong)"),
    label={"en": "photo of another customer", "zh": "照片来自他人"},
    reviewer={
        "en": "A photo was already uploaded by another customer.",
        "zh": "有照片已由其他顾客上传过。",
    },
    reads=("duplicate_max_distance",),
)
def photo_reused_other_customer(ctx: ClaimContext) -> Signal:
    return _reuse_signal(ctx, "photo_reused_other_customer", "other_customer")


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


def _capture_row(photo: Photo, ctx: ClaimContext) -> dict[str, Any] | None:
    captured = _captured_at(photo)
    if captured is None:
        return None
    lead = (ctx.order.delivered_at - captured) / timedelta(hours=1)
    return {
        "photo_id": photo.id,
        "captured_at": captured.isoformat(),
        "offset_known": bool(photo.exif.get("captured_at_offset_known", False)),
        "hours_before_delivery": round(lead, 2),
        "tolerance_hours": round(_capture_tolerance_hours(photo, ctx.policy), 2),
    }


@rule(
    "captured_before_delivery",
    when=(
        "EXIF DateTimeOriginal is before delivery by more than "
        "`capture_tolerance_minutes` (plus `capture_unknown_offset_hours` when EXIF has "
        "no UTC offset); no EXIF is not a flag"
    ),
    label={"en": "taken before delivery", "zh": "送达前拍摄"},
    reviewer={
        "en": "A photo was taken before the order was delivered.",
        "zh": "有照片的拍摄时间早于订单送达时间。",
    },
    reads=("capture_tolerance_minutes", "capture_unknown_offset_hours"),
)
def captured_before_delivery(ctx: ClaimContext) -> Signal:
    """EXIF DateTimeOriginal before delivery, beyond the tolerance. value: hours the capture
    lies before delivery for the worst photo (negative: after); threshold: its tolerance.
    Photos without EXIF time are not judged (normal for mini-program uploads)."""
    rows = [row for photo in ctx.photos if (row := _capture_row(photo, ctx))]
    if not rows:
        return _fire("captured_before_delivery", False, None, None, photos=[])
    worst = max(rows, key=lambda r: r["hours_before_delivery"] - r["tolerance_hours"])
    early = [r for r in rows if r["hours_before_delivery"] > r["tolerance_hours"]]
    return _fire(
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


@rule(
    "edited_photo",
    when=(
        "EXIF Software names an editing program from `editing_software` (Photoshop, "
        "Lightroom, GIMP, Snapseed, Meitu/美图, PicsArt, …)"
    ),
    label={"en": "edited photo", "zh": "照片经修图"},
    reviewer={
        "en": "A photo was saved by a photo-editing program.",
        "zh": "有照片经过修图软件处理。",
    },
    reads=("editing_software",),
)
def edited_photo(ctx: ClaimContext) -> Signal:
    edited = []
    for photo in ctx.photos:
        software = (photo.exif or {}).get("software")
        program = editing_program(software, ctx.policy.editing_software)
        if program:
            edited.append({"photo_id": photo.id, "software": software, "program": program})
    return _fire("edited_photo", edited, len(edited), 0, photos=edited)


# The codes a decision can give as reasons (the review queue filters by them).
REASON_CODES = tuple(sorted(code for code, r in RULES.items() if not r.informational))


def evaluate(ctx: ClaimContext) -> list[Signal]:
    """Every rule's signal, in declaration order (a rule that does not apply gives none)."""
    return [signal for r in RULES.values() if (signal := r.check(ctx)) is not None]


def reviewer_text(code: str, locale: str = "en") -> str:
    rule_ = RULES.get(code)
    if rule_ is None:
        return code
    return rule_.reviewer.get(locale) or rule_.reviewer["en"]


def label_text(code: str, locale: str = "en") -> str | None:
    """A reason code's chip label, or None for a code that is not a rule's."""
    rule_ = RULES.get(code)
    if rule_ is None:
        return None
    return rule_.label.get(locale) or rule_.label["en"]


def customer_text(code: str, locale: str = "en") -> str | None:
    """What the customer may be told about ``code``; None for checks kept to staff."""
    rule_ = RULES.get(code)
    if rule_ is None or rule_.customer is None:
        return None
    return rule_.customer.get(locale) or rule_.customer["en"]
