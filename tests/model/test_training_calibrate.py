"""Calibration and metric helpers of the training pipeline (numpy only: no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

from training.calibrate import (
    choose_confidence_floor,
    choose_threshold,
    clopper_pearson_lower,
    fit_temperature,
    precision_recall_at,
)
from training.evaluate import expected_calibration_error, roc_auc


def test_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(4000, 2))
    probs = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    labels = (rng.random(4000) < probs[:, 1]).astype(int)
    # a model 3x over-confident: its logits are 3x the true ones
    t = fit_temperature(true_logits * 3, labels)
    assert t == pytest.approx(3.0, rel=0.15)


def test_threshold_is_lowest_with_target_precision_everywhere_above():
    p = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.9, 0.8, 0.7, 0.6])
    y = np.array([1, 1, 1, 1, 1, 1, 0, 1, 0])
    eligible = np.ones_like(y, dtype=bool)
    t, info = choose_threshold(p, y, eligible, target=0.99)
    assert t == pytest.approx(0.9)
    assert info["precision"] == 1.0 and info["support"] == 6
    # not eligible (OOD / not confident) photos are never approved, so they cannot hurt
    eligible[6] = False
    t, _ = choose_threshold(p, y, eligible, target=0.99)
    assert t == pytest.approx(0.7)


def test_threshold_approves_nothing_when_validation_backs_nothing():
    p = np.array([0.9, 0.8])
    y = np.array([0, 0])
    t, info = choose_threshold(p, y, np.ones(2, bool))
    assert t == 1.0 and info["support"] == 0


def test_not_produce_approval_counts_as_false():
    p = np.array([0.95, 0.95])
    y = np.array([1, -1])  # -1: an "other" photo
    precision, recall, n = precision_recall_at(p, y, np.ones(2, bool), 0.9)
    assert (precision, recall, n) == (0.5, 1.0, 2)


def test_confidence_floor():
    probs = np.array([[0.55, 0.45, 0.0], [0.95, 0.05, 0.0], [0.2, 0.8, 0.0]])
    true = np.array([1, 0, 1])
    floor, _ = choose_confidence_floor(probs, true, other_index=2)
    assert floor == pytest.approx(0.6)


def test_clopper_pearson():
    assert clopper_pearson_lower(100, 100) == pytest.approx(0.05 ** (1 / 100), rel=1e-3)
    assert 0.9 < clopper_pearson_lower(99, 100) < 0.99


def test_roc_auc_and_ece():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    p = np.array([0.9] * 10)
    y = np.array([1] * 9 + [0])
    ece, _ = expected_calibration_error(p, y)
    assert ece == pytest.approx(0.0, abs=1e-9)
