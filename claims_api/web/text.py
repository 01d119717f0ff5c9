"""The workbench's UI text (``web/i18n/<locale>.json``). The review reasons and the sentences
a decision sends the customer live with the claim rules (:mod:`claims_api.rules.review_reasons`)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from claims_api.i18n import SUPPORTED, pick_locale
from claims_api.photos.messages import CATALOGUE, message
from claims_api.rules import RULES, reviewer_text
from claims_api.rules.review_reasons import REVIEW_REASONS, default_customer_sentence
from claims_api.rules.signals import label_text
from claims_api.web import filters

CATALOGUE_DIR = Path(__file__).resolve().parent / "i18n"
DEFAULT = "en"

APPROVE_REASONS = REVIEW_REASONS["approve"]
REJECT_REASONS = REVIEW_REASONS["reject"]
PHOTO_REASONS = REVIEW_REASONS["request_photos"]


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
    a code the catalogue lacks is shown in words, never in snake_case. Signal labels live with
    their rules (:mod:`claims_api.rules.signals`)."""
    if kind == "signal" and (text := label_text(code or "", locale)):
        return text
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
    return default_customer_sentence(code, locale)


def error_text(locale: str, code: str) -> str:
    """The UI sentence for an error code; a generic one naming the code when there is none."""
    key = f"error.{code}"
    if key in _catalogue(DEFAULT):
        return translate(locale, key)
    return translate(locale, "error.generic", code=code)


def sentence(locale: str, code: str, fallback: str = "") -> str:
    """A signal's sentence for the reviewer in the UI language (from its rule), or a photo
    problem's from the shared catalogue."""
    if code in RULES:
        return reviewer_text(code, locale)
    return message(code, locale) if code in CATALOGUE[DEFAULT] else (fallback or code)


def catalogue_keys(locale: str) -> set[str]:
    return set(_catalogue(locale))


# why an endpoint is disabled, as the webhooks service words it (English, for the API and the
# logs); the page shows it in the UI language, and a reason it does not know as it is
_DISABLED_REASONS = (
    (re.compile(r"the endpoint answered 410 Gone"), "webhooks.reason.gone"),
    (re.compile(r"no successful delivery since (?P<since>\S+)"), "webhooks.reason.failing"),
    (re.compile(r"disabled by (?P<kind>\w+) (?P<who>\S+)"), "webhooks.reason.by"),
)


def disabled_reason(locale: str, reason: str | None) -> str:
    if not reason:
        return ""
    for pattern, key in _DISABLED_REASONS:
        if match := pattern.fullmatch(reason):
            found = match.groupdict()
            params: dict[str, object] = {}
            if "since" in found:
                params["since"] = filters.when(found["since"])
            if "kind" in found:
                params["kind"] = code_label(locale, "actor", found["kind"])
                params["who"] = found["who"]
            return translate(locale, key, **params)
    return reason
