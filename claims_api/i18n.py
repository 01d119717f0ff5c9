"""Locale negotiation for the customer-facing and reviewer-facing text."""

from __future__ import annotations

SUPPORTED = ("en", "zh")


def pick_locale(accept_language: str | None, default: str = "en") -> str:
    """The first supported language in an Accept-Language header (q-values in order)."""
    if not accept_language:
        return default
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        base = tag.split("-")[0]
        if base in SUPPORTED:
            return base
    return default
