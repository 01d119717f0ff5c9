"""The workbench's UI text (``web/i18n/<locale>.json``) and the customer-facing sentences a
reviewer's decision sends, in English and Chinese.

The customer sentences are registered in the shared message catalogue
(:mod:`claims_api.photos.messages`) as ``review_<reason code>`` so the mini-program can show
the same text for a code."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from claims_api.i18n import SUPPORTED, pick_locale
from claims_api.photos.messages import CATALOGUE, message, register
from claims_api.web import filters

CATALOGUE_DIR = Path(__file__).resolve().parent / "i18n"
DEFAULT = "en"

APPROVE_REASONS = ("spoiled_confirmed", "partly_spoiled", "goodwill")
REJECT_REASONS = (
    "not_spoiled",
    "wrong_item",
    "photo_unusable",
    "duplicate_photo",
    "outside_window",
    "other",
)
PHOTO_REASONS = ("more_photos_needed", "photo_unusable")

CUSTOMER_MESSAGES: dict[str, dict[str, str]] = {
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
for _code, _texts in CUSTOMER_MESSAGES.items():
    register(f"review_{_code}", _texts)


@cache
def _catalogue(locale: str) -> dict[str, str]:
    return json.loads((CATALOGUE_DIR / f"{locale}.json").read_text(encoding="utf-8"))


def locale_for(cookie: str | None, accept_language: str | None) -> str:
    if cookie in SUPPORTED:
        return cookie
    return pick_locale(accept_language, DEFAULT)


def translate(locale: str, key: str, **params: object) -> str:
    text = _catalogue(locale).get(key) or _catalogue(DEFAULT).get(key) or key
    return text.format(**params) if params else text


def translator(locale: str) -> Callable[..., str]:
    def t(key: str, **params: object) -> str:
        return translate(locale, key, **params)

    return t


def named(locale: str, kind: str, value: str | None) -> str:
    """A value's name in the UI language (``produce.apple`` -> 苹果); values the catalogue
    does not know, such as a shop's own produce names, are shown as they are."""
    key = f"{kind}.{value}"
    return translate(locale, key) if key in _catalogue(DEFAULT) else (value or "")


def code_label(locale: str, kind: str, code: str | None) -> str:
    """A code's short label for a chip or a table cell (``signal.claim_window`` -> 超出时限);
    a code the catalogue lacks is shown in words, never in snake_case."""
    key = f"{kind}.{code}"
    if key in _catalogue(DEFAULT):
        return translate(locale, key)
    return (code or "").replace("_", " ")


# detail keys whose values are money in cents, shown as yuan
_CENT_DETAILS = frozenset({"base_cap_cents", "paid_30d_cents", "requested_cents"})
# details shown elsewhere on the page (the duplicate panel shows the matches side by side)
_HIDDEN_DETAILS = frozenset({"matches"})


def _detail_text(locale: str, key: str, value: Any) -> str:
    if key in _CENT_DETAILS and isinstance(value, int):
        return filters.money(value)
    if isinstance(value, bool):
        return translate(locale, "yes" if value else "no")
    if key == "trust_level":
        return code_label(locale, "trust", str(value))
    if key == "problems" and isinstance(value, dict):  # photo id -> quality problem codes
        codes = sorted({code for codes in value.values() for code in codes})
        return ", ".join(code_label(locale, "quality", code) for code in codes)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return translate(locale, "detail.photo_count", count=len(value))
    return filters.fmt(value)


def signal_details(locale: str, details: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A signal's details as (label, value) pairs in the UI language; empty values left out."""
    return [
        (code_label(locale, "detail", key), _detail_text(locale, key, value))
        for key, value in (details or {}).items()
        if key not in _HIDDEN_DETAILS and value not in (None, "", [], {})
    ]


# signals whose value and threshold are produce names (shown in the UI language)
_PRODUCE_VALUES = frozenset({"produce_mismatch", "produce_unknown_to_model"})


def signal_cell(locale: str, code: str, value: Any) -> str:
    """A signal's value or threshold as the table shows it: a trust level or produce names in
    the UI language, numbers with their unit."""
    if code == "trust" and isinstance(value, str):
        return code_label(locale, "trust", value)
    if code in _PRODUCE_VALUES and isinstance(value, str | list):
        names = [value] if isinstance(value, str) else value
        return ", ".join(named(locale, "produce", str(name)) for name in names)
    return filters.signal_value(value, code)


def customer_message(code: str, locale: str) -> str:
    """The default sentence to the customer for a review reason (editable by the reviewer)."""
    if code not in CUSTOMER_MESSAGES:
        return ""
    return message(f"review_{code}", locale)


def error_text(locale: str, code: str) -> str:
    """The UI sentence for an error code; a generic one naming the code when there is none."""
    key = f"error.{code}"
    if key in _catalogue(DEFAULT):
        return translate(locale, key)
    return translate(locale, "error.generic", code=code)


def sentence(locale: str, code: str, fallback: str = "") -> str:
    """A signal's sentence in the UI language, from the shared catalogue when it has one."""
    return message(code, locale) if code in CATALOGUE[DEFAULT] else (fallback or code)


def catalogue_keys(locale: str) -> set[str]:
    return set(_catalogue(locale))
