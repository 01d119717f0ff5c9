"""The incident test, as pure functions: an exact one-sided binomial test of a subject's
(a supplier batch's, a pickup point's) claimed lines against its SKU's baseline claim rate.

Why exact binomial: the counts are small (a batch of a few dozen lines, a handful of claims),
where normal approximations over-alarm. The test runs again after every claim, so the
significance level is far below the usual 5%: ``tests/quality/test_detection_simulation.py``
measures the false alarms per SKU per 100 simulated days and how many delivered lines a batch
at 3× the baseline needs before it is caught (figures in docs/events-and-privacy.md)."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import binom

SIGNIFICANCE = 0.001
MIN_CLAIMS = 3  # fewer claims are never an incident, whatever the rate
MIN_BASELINE_LINES = 100  # below this the SKU has no baseline worth testing against
BASELINE_FLOOR = 0.005  # a SKU with no claims yet is not a 0% SKU


@dataclass(frozen=True)
class TestResult:
    claims: int
    lines: int
    baseline_rate: float
    p_value: float
    significant: bool


def baseline_rate(claimed_lines: int, delivered_lines: int) -> float | None:
    """The SKU's claim rate as the test uses it; None without enough history. Half a claim is
    added (a Jeffreys-style estimate) so that a short, claim-free history does not make every
    first claim significant."""
    if delivered_lines < MIN_BASELINE_LINES:
        return None
    return max(BASELINE_FLOOR, (claimed_lines + 0.5) / (delivered_lines + 1))


def binomial_excess(
    claims: int,
    lines: int,
    baseline: float,
    significance: float = SIGNIFICANCE,
    min_claims: int = MIN_CLAIMS,
) -> TestResult:
    """P(X >= claims) for X ~ Binomial(lines, baseline): how surprising this many claimed
    lines would be if the subject were as good as its SKU; significant when below
    ``significance`` and at least ``min_claims`` lines were claimed."""
    lines = max(lines, claims)  # a claim whose delivery has not reached us yet still counts
    p_value = float(binom.sf(claims - 1, lines, baseline)) if lines else 1.0
    return TestResult(
        claims=claims,
        lines=lines,
        baseline_rate=baseline,
        p_value=p_value,
        significant=claims >= min_claims and p_value < significance,
    )
