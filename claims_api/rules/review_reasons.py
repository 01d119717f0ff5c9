"""The reasons a reviewer can give, per outcome, with the sentence the customer is sent by
default (the reviewer may edit it; what they send is passed on verbatim).

The review API and the workbench both accept only these codes for their outcome.
"""

from __future__ import annotations

from typing import Literal

Outcome = Literal["approve", "reject", "request_photos"]

REVIEW_REASONS: dict[Outcome, tuple[str, ...]] = {
    "approve": ("spoiled_confirmed", "partly_spoiled", "goodwill"),
    "reject": (
        "not_spoiled",
        "wrong_item",
        "photo_unusable",
        "duplicate_photo",
        "outside_window",
        "other",
    ),
    "request_photos": ("more_photos_needed", "photo_unusable"),
}

# The default sentence to the customer for a reason (approvals need none: the outcome says it).
CUSTOMER_SENTENCES: dict[str, dict[str, str]] = {
    "not_spoiled": {
        "en": "We looked at your photos and the produce appears to be in good condition, so we "
        "cannot compensate this item. You can appeal once if you disagree.",
        "zh": "我们查看了您的照片，商品看起来状况良好，因此无法为该商品赔付。"
        "如有异议，可申诉一次。",
    },
    "wrong_item": {
        "en": "The photos do not show the item from this order line. Please photograph the "
        "ordered item and appeal if you still have it.",
        "zh": "照片中不是该订单行的商品。如商品仍在，请拍摄所购商品后申诉。",
    },
    "photo_unusable": {
        "en": "We could not judge the item from the photos. Please take a clear, well-lit photo "
        "of the item itself.",
        "zh": "我们无法根据照片判断商品情况。请在光线充足处清晰地拍摄商品本身。",
    },
    "duplicate_photo": {
        "en": "The photos were used before or are not original photos of this delivery, so we "
        "cannot accept this claim.",
        "zh": "照片曾被使用过或并非本次收货的原始照片，因此无法受理此申请。",
    },
    "outside_window": {
        "en": "The claim came after the claim window for this produce, so we cannot compensate it.",
        "zh": "申请已超过该商品的售后时限，因此无法赔付。",
    },
    "other": {
        "en": "We could not approve this claim. Please contact customer service for details.",
        "zh": "此申请未能通过。详情请联系客服。",
    },
    "more_photos_needed": {
        "en": "Please send one or two more photos of the affected item, close up and in good "
        "light, so we can finish checking your claim.",
        "zh": "请再拍一两张受损商品的近景照片（光线充足），以便我们完成审核。",
    },
}


def allowed_reasons(outcome: Outcome) -> tuple[str, ...]:
    return REVIEW_REASONS[outcome]


def default_customer_sentence(code: str, locale: str) -> str:
    """The default sentence to the customer for a review reason ("" for none)."""
    texts = CUSTOMER_SENTENCES.get(code)
    if texts is None:
        return ""
    return texts.get(locale) or texts["en"]
