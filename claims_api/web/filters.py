"""Jinja filters for the workbench: money, times, percentages and durations."""

from __future__ import annotations

from datetime import UTC, datetime


def money(cents: int | None) -> str:
    if cents is None:
        return "–"
    sign = "-" if cents < 0 else ""
    return f"{sign}¥{abs(cents) / 100:,.2f}"


def when(value: datetime | str | None) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = round(seconds)
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
    return f"-{text}" if seconds < 0 else text


def fmt(value: object) -> str:
    """A signal value or threshold, short: numbers rounded, lists joined."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        shown = ", ".join(fmt(v) for v in value[:6])
        return shown + (" …" if len(value) > 6 else "")
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in list(value.items())[:6])
    return str(value)


# The unit each signal's value and threshold are in (claims_api.rules.signals);
# the rest are counts, scores or produce names and show as they are.
_HOURS = frozenset({"claim_window", "claim_before_delivery", "captured_before_delivery"})
_CENTS = frozenset({"amount_over_cap", "paid_amount_30d", "trust"})
_RATES = frozenset({"claim_rate", "pickup_point_claim_rate"})


def signal_value(value: object, code: str) -> str:
    """A signal's value or threshold with its unit: hours, money or a percentage (trust's
    value is its level, a word, and shows as it is)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return fmt(value)
    if code in _HOURS:
        return f"{value:.4g} h"
    if code in _CENTS:
        return money(int(value))
    if code in _RATES:
        return pct(value)
    return fmt(value)
