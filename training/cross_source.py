"""Cross-source calibration: the auto-approve threshold must hold for photos from a place the
model has never seen, not only for validation photos from the places it was trained on.

Validation photos come from the training sources, so a threshold chosen on them only says how
the model meets more of the same photographers. Leave-one-source-out (``training.loso``)
trains one fold model per source without that source and scores every held-out photo. Pooled
over the folds, those *out-of-source* scores show how far calibrated confidence drops on a new
source; the auto-approve threshold is then the stricter of

* the validation threshold (``training.calibrate.choose_threshold`` on validation), and
* the same rule applied to the pooled out-of-source scores.

Each fold model's ``p_rotten`` is temperature-scaled on its own validation split, exactly like
the shipped model's, so a threshold on calibrated probabilities carries over from the fold
models to the model trained on every source. The fold models are trained for fewer epochs
(the CPU budget); that is an approximation, stated in the certificate and the model card.

Eligibility is what the model alone calls auto-approvable (``photo_gate(scores, None)``,
also printed by ``freshclaim predict``): in distribution, produce confident and not ``other``.
Photos of produce kinds a fold model has no label for stay in the pool, because a model meets
such photos too and its own gates must keep them from approval. The service adds one more
rule (the produce seen must be the produce ordered, and one of the model's labels); the
figures under that rule are reported beside the model-gate figures (``service_rule``).

For the leave-one-source-out table itself the choice is nested: the threshold used on source S
comes from the other folds' out-of-source scores only (:func:`nested_fold_results`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.calibrate import choose_threshold, clopper_pearson_lower

SCORES_FILE = "held_out_scores.npz"
_FIELDS = ("source", "p_rotten", "rotten", "in_distribution", "produce_confident", "produce_match")


@dataclass(frozen=True)
class HeldOutScores:
    """Per-photo scores of fold models on the photos of the source each fold left out."""

    source: np.ndarray  # held-out source of each photo
    p_rotten: np.ndarray  # fold model's temperature-scaled rotten probability
    rotten: np.ndarray  # 1 rotten, 0 fresh
    in_distribution: np.ndarray
    produce_confident: np.ndarray
    produce_match: np.ndarray  # predicted produce == true produce, and a kind the model knows

    @classmethod
    def from_scores(cls, s: dict, source: str) -> HeldOutScores:
        """From :func:`training.evaluate.score_items` output of a fold model."""
        match = (s["produce_pred"] == s["produce_true"]) & s["known_kind"]
        return cls(
            source=np.full(len(s["rotten"]), source),
            p_rotten=s["p_rotten"],
            rotten=s["rotten"],
            in_distribution=s["in_distribution"],
            produce_confident=s["produce_confident"],
            produce_match=match,
        )

    @property
    def model_gates(self) -> np.ndarray:
        """What the model alone lets through (before the threshold)."""
        return self.in_distribution & self.produce_confident

    @property
    def service_gates(self) -> np.ndarray:
        """What the service lets through: the model's gates and the ordered produce seen."""
        return self.model_gates & self.produce_match

    def save(self, path: Path) -> Path:
        np.savez(path, **{name: getattr(self, name) for name in _FIELDS})
        return path

    @classmethod
    def load(cls, path: Path) -> HeldOutScores:
        with np.load(path, allow_pickle=False) as f:
            return cls(**{name: f[name] for name in _FIELDS})

    @classmethod
    def concat(cls, parts: list[HeldOutScores]) -> HeldOutScores:
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS})

    def _subset(self, keep: np.ndarray) -> HeldOutScores:
        return HeldOutScores(**{name: getattr(self, name)[keep] for name in _FIELDS})

    def without(self, source: str) -> HeldOutScores:
        return self._subset(self.source != source)

    def only(self, source: str) -> HeldOutScores:
        return self._subset(self.source == source)

    @property
    def sources(self) -> list[str]:
        return sorted(set(self.source.tolist()))


def load_folds(loso_dir: Path) -> HeldOutScores:
    """Every fold's held-out scores under ``loso_dir`` (``<fold>/held_out_scores.npz``)."""
    paths = sorted(Path(loso_dir).glob(f"*/{SCORES_FILE}"))
    if not paths:
        raise FileNotFoundError(f"no {SCORES_FILE} under {loso_dir}: run training.loso first")
    return HeldOutScores.concat([HeldOutScores.load(p) for p in paths])


def approval_stats(pool: HeldOutScores, threshold: float, gates: np.ndarray) -> dict:
    """Auto-approvals of the pool at ``threshold`` among the photos ``gates`` lets through."""
    approved = gates & (pool.p_rotten >= threshold)
    n, tp = int(approved.sum()), int((approved & (pool.rotten == 1)).sum())
    positives = int((pool.rotten == 1).sum())
    return {
        "approved": n,
        "false_approvals": n - tp,
        "precision": tp / n if n else None,
        "recall": tp / positives if positives else None,
        "precision_lower_95": clopper_pearson_lower(tp, n) if n else None,
    }


def _both_rules(pool: HeldOutScores, threshold: float) -> dict:
    return {
        "model_gates": approval_stats(pool, threshold, pool.model_gates),
        "service_rule": approval_stats(pool, threshold, pool.service_gates),
    }


def choose_cross_source_threshold(
    pool: HeldOutScores, target: float = 0.99, floor: float = 0.5
) -> tuple[float, dict]:
    """The validation rule (lowest threshold with precision >= target there and at every
    higher candidate) on the pooled out-of-source scores, with the model's own gates."""
    threshold, info = choose_threshold(pool.p_rotten, pool.rotten, pool.model_gates, target, floor)
    return threshold, info | {
        "photos": len(pool.rotten),
        "sources": pool.sources,
        "per_source": {src: _both_rules(pool.only(src), threshold) for src in pool.sources},
        "service_rule": approval_stats(pool, threshold, pool.service_gates),
    }


def combine(
    val_threshold: float, val_info: dict, cross: tuple[float, dict] | None
) -> tuple[float, dict]:
    """The stricter of the validation and the cross-source threshold, with both recorded."""
    if cross is None:
        return val_threshold, val_info | {"cross_source": None, "binding": "val"}
    cross_threshold, cross_info = cross
    binding = "cross_source" if cross_threshold > val_threshold else "val"
    return max(val_threshold, cross_threshold), val_info | {
        "val_threshold": val_threshold,
        "cross_source_threshold": cross_threshold,
        "cross_source": cross_info,
        "binding": binding,
    }


def nested_fold_results(
    pool: HeldOutScores, fold_val_thresholds: dict[str, float], target: float = 0.99
) -> dict[str, dict]:
    """For each held-out source S: the threshold the procedure would have chosen without S
    (S's fold validation threshold, made stricter by the other folds' out-of-source scores),
    and what it gives on S with the model's gates and with the service's rule."""
    out = {}
    for src in pool.sources:
        others = pool.without(src)
        cross = choose_cross_source_threshold(others, target) if others.sources else None
        threshold, _ = combine(fold_val_thresholds.get(src, 0.5), {}, cross)
        out[src] = {
            "threshold": threshold,
            "cross_source_threshold": cross[0] if cross else None,
            **_both_rules(pool.only(src), threshold),
        }
    return out
