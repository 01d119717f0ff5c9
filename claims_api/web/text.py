"""The workbench's UI text (``web/i18n/<locale>.json``). The review reasons and the sentences
a decision sends the customer live with the claim rules (:mod:`claims_api.rules.review_reasons`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

from claims_api.i18n import SUPPORTED, pick_locale
from claims_api.photos.messages import CATALOGUE, message
from claims_api.rules import RULES, reviewer_text
from claims_api.rules.review_reasons import REVIEW_REASONS, default_customer_sentence

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
