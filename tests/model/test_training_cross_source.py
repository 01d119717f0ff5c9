"""Cross-source calibration (numpy only): the auto-approve threshold is made stricter by what
leave-one-source-out fold models did on the sources they never saw."""

from __future__ import annotations

import numpy as np
import pytest

from training.cross_source import (
    HeldOutScores,
    approval_stats,
    choose_cross_source_threshold,
    combine,
    load_folds,
    nested_fold_results,
)


def pool(
    source: str, p: list[float], rotten: list[int], *, match=None, in_dist=None
) -> HeldOutScores:
    n = len(p)
    ones = np.ones(n, bool)
    return HeldOutScores(
        source=np.full(n, source),
        p_rotten=np.array(p),
        rotten=np.array(rotten),
        in_distribution=ones if in_dist is None else np.array(in_dist),
        produce_confident=ones,
        produce_match=ones if match is None else np.array(match),
    )


def test_confident_mistakes_on_a_new_source_raise_the_threshold():
    # on its own source the model is clean above 0.5; on a new source a fresh photo gets 0.97
    # (1 wrong of 50 approvals is 98% precision)
    rotten = [1] * 49 + [0]
    p = [*np.linspace(0.98, 0.999, 49), 0.97]
    t, info = choose_cross_source_threshold(pool("b", p, rotten))
    assert t > 0.97 and info["false_approvals"] == 0
    assert info["per_source"]["b"]["model_gates"]["false_approvals"] == 0
    val_t, val_info = 0.5, {"precision": 1.0}
    final, record = combine(val_t, val_info, (t, info))
    assert final == t and record["binding"] == "cross_source"
    assert record["val_threshold"] == 0.5 and record["cross_source_threshold"] == t


def test_validation_threshold_stays_when_it_is_the_stricter():
    t, info = choose_cross_source_threshold(pool("b", [0.9, 0.95], [1, 1]))
    final, record = combine(0.99, {}, (t, info))
    assert final == 0.99 and record["binding"] == "val"


def test_unknown_produce_kinds_count_against_the_model_gates():
    # produce kinds the fold model never saw: the service would not approve them (ordered
    # produce != seen produce), but the model's own gates must keep them out too
    p = [0.95] * 2 + [0.97] * 98
    scores = pool("c", p, [0, 0] + [1] * 98, match=[False, False] + [True] * 98)
    t, info = choose_cross_source_threshold(scores)
    assert t > 0.95 and info["false_approvals"] == 0
    assert approval_stats(scores, 0.5, scores.model_gates)["false_approvals"] == 2
    assert approval_stats(scores, 0.5, scores.service_gates)["false_approvals"] == 0
    assert info["service_rule"]["approved"] == 98


def test_out_of_distribution_photos_are_never_approved():
    scores = pool("d", [0.999, 0.9], [0, 1], in_dist=[False, True])
    _, info = choose_cross_source_threshold(scores)
    assert info["false_approvals"] == 0 and info["support"] == 1


def test_nested_choice_never_looks_at_the_held_out_source():
    a = pool("a", list(np.linspace(0.6, 0.99, 50)), [1] * 50)
    b_clean = pool("b", list(np.linspace(0.6, 0.99, 50)), [1] * 50)
    b_dirty = pool("b", list(np.linspace(0.6, 0.99, 50)), [1] * 49 + [0])
    thresholds = {"a": 0.5, "b": 0.5}
    clean = nested_fold_results(HeldOutScores.concat([a, b_clean]), thresholds)
    dirty = nested_fold_results(HeldOutScores.concat([a, b_dirty]), thresholds)
    # b's own labels do not change the threshold used on b
    assert clean["b"]["threshold"] == dirty["b"]["threshold"]
    assert dirty["b"]["model_gates"]["false_approvals"] == 1
    # but they do change the threshold used on a (b is one of a's other sources)
    assert dirty["a"]["threshold"] > clean["a"]["threshold"]


def test_save_load_and_pool_of_folds(tmp_path):
    for name, src in (("fold_a", "a"), ("fold_b", "b")):
        (tmp_path / name).mkdir()
        pool(src, [0.9, 0.2], [1, 0]).save(tmp_path / name / "held_out_scores.npz")
    loaded = load_folds(tmp_path)
    assert loaded.sources == ["a", "b"] and len(loaded.p_rotten) == 4
    assert loaded.model_gates.all() and loaded.service_gates.all()
    with pytest.raises(FileNotFoundError):
        load_folds(tmp_path / "nowhere")
