"""The exact binomial bound that certifies a kind (``training.certify``) and that reports
the precision audits measure (``claims_api.retraining.audit``): one implementation."""

from __future__ import annotations

from scipy.stats import beta


def error_upper_bound(errors: int, n: int, delta: float) -> float:
    """Exact one-sided (Clopper–Pearson) upper confidence bound, at 1 − ``delta``, on an
    error rate from ``errors`` errors in ``n`` trials."""
    if not 0 <= errors <= n:
        raise ValueError(f"errors must be in 0..n, got {errors} of {n}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if n == 0 or errors == n:
        return 1.0
    return float(beta.ppf(1 - delta, errors + 1, n - errors))


def precision_lower_bound(n: int, errors: int, delta: float) -> float:
    """The matching lower bound on the share that was right (0 when nothing was)."""
    return 1.0 - error_upper_bound(errors, n, delta)
