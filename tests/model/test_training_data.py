"""Generated data helpers (no torch needed)."""

from __future__ import annotations

import numpy as np

from data.negatives import FOREIGN_KINDS, TRAIN_KINDS, make_other, make_others, other_split
from data.synthetic import make_fruit, make_not_produce


def test_negatives_are_reproducible_and_rgb():
    for kind in TRAIN_KINDS + FOREIGN_KINDS:
        a, b = make_other(kind, 7, size=64), make_other(kind, 7, size=64)
        assert a.mode == "RGB" and a.size == (64, 64)
        assert np.array_equal(np.asarray(a), np.asarray(b)), kind


def test_other_splits_are_disjoint_and_proportional():
    assert [other_split(i) for i in range(10)].count("train") == 8
    train = make_others(20, "train", size=32)
    val = make_others(20, "val", size=32)
    assert len(train) == 16 and len(val) == 2
    assert {k for k, _ in train} == set(TRAIN_KINDS)


def test_synthetic_signatures_still_work():
    assert make_fruit("apple", rotten=True, size=(64, 48), seed=1).size == (64, 48)
    assert make_not_produce(size=(64, 48), seed=1).size == (64, 48)


def test_every_split_holds_every_other_kind():
    for split in ("val", "test"):
        kinds = {k for k, _ in make_others(100, split, size=16)}
        assert kinds == set(TRAIN_KINDS), split
