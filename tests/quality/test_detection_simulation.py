"""The incident test as a pure function, and a seeded simulation that measures what it is
tuned for: false alarms on normal days, and how soon a batch at 3× the baseline is caught."""

from __future__ import annotations

import numpy as np
import pytest

from claims_api.quality.detection import (
    MIN_BASELINE_LINES,
    MIN_CLAIMS,
    baseline_rate,
    binomial_excess,
)

BASELINE = 0.10  # claimed lines / delivered lines of a fresh SKU on a normal day
SKUS, DAYS, BATCH_LINES = 20, 100, 80  # one batch per SKU per day
HISTORY_LINES = 3000  # the SKU's baseline window


def test_the_p_value_is_the_exact_binomial_tail():
    result = binomial_excess(3, 10, 0.1)
    # P(X >= 3), X ~ Bin(10, 0.1) = 1 - P(0) - P(1) - P(2)
    expected = 1 - 0.9**10 - 10 * 0.1 * 0.9**9 - 45 * 0.01 * 0.9**8
    assert result.p_value == pytest.approx(expected)
    assert not result.significant


def test_few_claims_are_never_an_incident_however_few_the_lines():
    assert not binomial_excess(MIN_CLAIMS - 1, MIN_CLAIMS - 1, 0.01).significant
    assert binomial_excess(MIN_CLAIMS, MIN_CLAIMS, 0.01).significant


def test_a_short_or_claim_free_history_is_no_zero_baseline():
    assert baseline_rate(0, MIN_BASELINE_LINES - 1) is None
    assert baseline_rate(0, 10_000) > 0


def _lines_until_caught(rng: np.random.Generator, lines: int, rate: float, baseline: float):
    """Delivers lines one by one, each claimed with probability ``rate``, and tests after
    every claim as the consumer does (the worst case: claims arrive as early as possible)."""
    claims = 0
    for delivered, claimed in enumerate(rng.random(lines) < rate, start=1):
        if claimed:
            claims += 1
            if binomial_excess(claims, delivered, baseline).significant:
                return delivered
    return None


def _estimated_baseline(rng: np.random.Generator) -> float:
    """The SKU's baseline as the service estimates it: from a finite, noisy history."""
    return baseline_rate(int(rng.binomial(HISTORY_LINES, BASELINE)), HISTORY_LINES)


def test_simulated_normal_days_stay_quiet_and_a_3x_batch_is_caught_early():
    rng = np.random.default_rng(2026)
    false_alarms = 0
    for _ in range(SKUS):
        baseline = _estimated_baseline(rng)
        for _ in range(DAYS):
            false_alarms += _lines_until_caught(rng, BATCH_LINES, BASELINE, baseline) is not None
    per_sku_per_100_days = false_alarms / SKUS * 100 / DAYS

    caught_after = [
        _lines_until_caught(rng, 200, 3 * BASELINE, _estimated_baseline(rng)) for _ in range(300)
    ]
    lines_needed = np.array([n if n is not None else np.inf for n in caught_after])
    median_lines = float(np.median(lines_needed))
    within_30 = float(np.mean(lines_needed <= 30))
    print(
        f"false alarms per SKU per 100 days: {per_sku_per_100_days:.2f}; 3x batch caught after "
        f"a median of {median_lines:.0f} lines, {within_30:.0%} within 30 lines"
    )
    assert per_sku_per_100_days < 1
    assert median_lines <= 30
    assert within_30 >= 0.5
