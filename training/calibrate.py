"""Calibration and operating point: temperature scaling, the auto-approve threshold, the
produce-confidence floor and the out-of-distribution threshold, all chosen on validation."""

from __future__ import annotations

import math

import numpy as np

from claims_api.inference.metadata import ThresholdCertificate


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    p = softmax(logits, temperature)
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising validation NLL (grid over 0.25..10, log-spaced, then a finer
    grid around the best point). A grid is plenty for one scalar and cannot diverge. The lower
    bound matters when validation is perfectly separated (NLL keeps falling as T -> 0): the
    probabilities would then all be 0 or 1 and the confidence floor would mean nothing."""
    if len(labels) == 0:
        return 1.0
    grid = np.exp(np.linspace(np.log(0.25), np.log(10), 241))
    best = min(grid, key=lambda t: nll(logits, labels, t))
    fine = np.exp(np.linspace(np.log(best) - 0.03, np.log(best) + 0.03, 61))
    fine = fine[(fine >= grid[0]) & (fine <= grid[-1])]
    return float(min(fine, key=lambda t: nll(logits, labels, t)))


def clopper_pearson_lower(successes: int, n: int, confidence: float = 0.95) -> float:
    """One-sided lower confidence bound of a binomial proportion (exact, by bisection)."""
    if n == 0:
        return 0.0
    if successes == 0:
        return 0.0
    alpha = 1 - confidence

    def tail(p: float) -> float:  # P(X >= successes | p)
        return sum(math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(successes, n + 1))

    lo, hi = 0.0, successes / n
    for _ in range(60):
        mid = (lo + hi) / 2
        if tail(mid) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


def precision_recall_at(
    p_rotten: np.ndarray, rotten: np.ndarray, eligible: np.ndarray, threshold: float
) -> tuple[float, float, int]:
    """Auto-approve precision / recall at a threshold. ``rotten`` is 1 for rotten, 0 for fresh
    and -1 for not produce (an approval of it is a false approval); ``eligible`` = the other
    gates (in distribution, produce confident and not ``other``)."""
    approved = (p_rotten >= threshold) & eligible
    n = int(approved.sum())
    tp = int((approved & (rotten == 1)).sum())
    positives = int((rotten == 1).sum())
    precision = tp / n if n else 1.0
    recall = tp / positives if positives else 0.0
    return precision, recall, n


def choose_threshold(
    p_rotten: np.ndarray,
    rotten: np.ndarray,
    eligible: np.ndarray,
    target: float = 0.99,
    floor: float = 0.5,
) -> tuple[float, dict]:
    """The lowest threshold t >= ``floor`` such that the auto-approve precision is >= target
    at t AND at every higher candidate threshold (so the choice does not sit on a lucky dip).
    Candidates are the observed probabilities of eligible photos."""
    candidates = np.unique(np.concatenate([[floor], p_rotten[eligible & (p_rotten >= floor)]]))
    chosen = None
    for t in candidates[::-1]:
        precision, _, n = precision_recall_at(p_rotten, rotten, eligible, t)
        if n and precision < target:
            break
        chosen = t
    if chosen is None:  # even the highest score is wrong: approve nothing below 1.0
        chosen = 1.0
    if precision_recall_at(p_rotten, rotten, eligible, chosen)[2] == 0:
        chosen = 1.0  # nothing on validation backs any threshold: approve nothing
    return float(chosen), operating_point(p_rotten, rotten, eligible, chosen)


def operating_point(
    p_rotten: np.ndarray, rotten: np.ndarray, eligible: np.ndarray, threshold: float
) -> dict:
    """Precision, recall and support at a threshold, with the exact lower bound of precision."""
    precision, recall, n = precision_recall_at(p_rotten, rotten, eligible, threshold)
    tp = round(precision * n)
    return {
        "precision": precision,
        "recall": recall,
        "support": n,
        "true_approvals": tp,
        "false_approvals": n - tp,
        "precision_lower_95": clopper_pearson_lower(tp, n),
    }


def choose_confidence_floor(
    produce_probs: np.ndarray,
    produce_true: np.ndarray,
    other_index: int,
    target: float = 0.99,
    grid=(0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95),
) -> tuple[float, dict]:
    """Lowest produce-confidence floor at which the produce head is right on >= ``target`` of
    the validation photos it accepts (predicted produce, not ``other``, confidence >= floor)."""
    pred = produce_probs.argmax(1)
    conf = produce_probs.max(1)
    info = {}
    for floor in grid:
        accepted = (pred != other_index) & (conf >= floor)
        n = int(accepted.sum())
        acc = float((pred[accepted] == produce_true[accepted]).mean()) if n else 1.0
        info[f"{floor:.2f}"] = {"accepted": n, "accuracy": acc}
        if acc >= target:
            return float(floor), info
    return float(grid[-1]), info


def certificate(threshold_info: dict, target: float, split: str, **extra) -> ThresholdCertificate:
    return ThresholdCertificate(
        target_precision=target,
        split=split,
        precision=threshold_info["precision"],
        recall=threshold_info["recall"],
        support=threshold_info["support"],
        extra={
            k: v for k, v in threshold_info.items() if k not in {"precision", "recall", "support"}
        }
        | extra,
    )
