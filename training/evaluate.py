"""Evaluate an exported model the way the service sees it, and write a report folder.

    python -m training.evaluate --model models/<file>.onnx --report reports/test --split test

Every number goes through :class:`claims_api.inference.model.Classifier` (the service's
preprocessing, onnxruntime, the temperatures and gates from the model's own metadata).
The report folder holds ``metrics.json`` and PNGs: precision-recall curve with the operating
point, reliability diagram, confusion matrices, and the worst mistakes with their heat maps.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from claims_api.inference.metadata import INPUT_NAME, OTHER_LABEL, OUTPUT_NAMES
from claims_api.inference.model import Classifier
from claims_api.rules.gate import photo_gate, produce_confident
from data.manifest import read_manifest, select
from data.negatives import FOREIGN_KINDS, make_other
from data.paths import default_dataset_dir
from training.common import Item, items_from_records, other_items

# ------------------------------------------------------------------ scoring


def score_items(classifier: Classifier, items: list[Item], batch_size: int = 32) -> dict:
    """Service scores (PhotoScores) and the raw graph outputs for every item."""
    raw = ort.InferenceSession(str(classifier.path), providers=["CPUExecutionProvider"])
    labels = classifier.metadata.labels.produce
    out: dict[str, list] = {k: [] for k in (*OUTPUT_NAMES, "scores")}
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        x = np.stack([classifier.prepare(it.image) for it in chunk]).astype(np.float32)
        outputs = raw.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        for name, value in zip(OUTPUT_NAMES, outputs, strict=True):
            out[name].append(value)
        out["scores"].extend(classifier.score_batch(x))
    scores = out["scores"]
    result = {
        name: np.concatenate(out[name]) if out[name] else np.zeros((0,)) for name in OUTPUT_NAMES
    }
    result.update(
        scores=scores,
        p_rotten=np.array([s.p_rotten for s in scores]),
        produce_pred=np.array([labels.index(s.produce) for s in scores], dtype=int),
        produce_conf=np.array([s.produce_confidence for s in scores]),
        produce_probs=np.array([[s.produce_probs[k] for k in labels] for s in scores]),
        in_distribution=np.array([s.in_distribution for s in scores], dtype=bool),
        produce_confident=np.array([produce_confident(s) for s in scores], dtype=bool),
        # the model alone: the gate without an ordered produce or a quality check
        auto=np.array([photo_gate(s, None).auto_approvable for s in scores], dtype=bool),
        ood=np.array([s.ood_score for s in scores]),
        # ground truth; a produce kind the model has no label for counts as "other"
        produce_true=np.array(
            [labels.index(it.produce) if it.produce in labels else len(labels) - 1 for it in items],
            dtype=int,
        ),
        rotten=np.array([it.rotten for it in items], dtype=int),
        known_kind=np.array([it.produce in labels for it in items], dtype=bool),
        sources=np.array([it.source for it in items]),
        produce_names=np.array([it.produce for it in items]),
        paths=[it.path for it in items],
    )
    return result


# ------------------------------------------------------------------ metrics


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    # average ranks for ties
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    r_pos = ranks[: len(pos)].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 15) -> tuple[float, list]:
    """ECE of the binary rotten probability (confidence = max(p, 1-p), as in Guo et al.)."""
    conf = np.maximum(p, 1 - p)
    correct = ((p >= 0.5).astype(int) == y).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)
    ece, table = 0.0, []
    for lo, hi in itertools.pairwise(edges):
        m = (conf > lo) & (conf <= hi) if lo > 0.5 else (conf >= lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
            table.append(
                {
                    "lo": float(lo),
                    "hi": float(hi),
                    "n": int(m.sum()),
                    "accuracy": float(correct[m].mean()),
                    "confidence": float(conf[m].mean()),
                }
            )
    return float(ece), table


def _acc(a: np.ndarray, b: np.ndarray) -> float | None:
    return float((a == b).mean()) if len(a) else None


def auto_approve_stats(s: dict, mask: np.ndarray | None = None) -> dict:
    mask = np.ones(len(s["rotten"]), bool) if mask is None else mask
    auto, rotten = s["auto"][mask], s["rotten"][mask]
    n, tp, pos = int(auto.sum()), int((auto & (rotten == 1)).sum()), int((rotten == 1).sum())
    return {
        "approved": n,
        "true_approvals": tp,
        "false_approvals": n - tp,
        "precision": tp / n if n else None,
        "recall": tp / pos if pos else None,
        "rotten": pos,
    }


def compute_metrics(s: dict, labels: list[str]) -> dict:
    real = s["rotten"] >= 0
    known = real & s["known_kind"]
    y, p = s["rotten"][real], s["p_rotten"][real]
    cond_pred = (p >= 0.5).astype(int)
    ece, ece_table = expected_calibration_error(p, y)
    n_lab = len(labels)
    produce_cm = np.zeros((n_lab, n_lab), int)
    for t, q in zip(s["produce_true"], s["produce_pred"], strict=False):
        produce_cm[t, q] += 1
    cond_cm = np.zeros((2, 2), int)
    for t, q in zip(y, cond_pred, strict=False):
        cond_cm[t, q] += 1
    per_produce = {}
    for kind in sorted(set(s["produce_names"][real])):
        m = real & (s["produce_names"] == kind)
        per_produce[kind] = {
            "n": int(m.sum()),
            "condition_accuracy": _acc((s["p_rotten"][m] >= 0.5).astype(int), s["rotten"][m]),
            "produce_accuracy": _acc(s["produce_pred"][m], s["produce_true"][m]),
            "auto_approve": auto_approve_stats(s, m),
        }
    per_source = {}
    for src in sorted(set(s["sources"])):
        m = s["sources"] == src
        per_source[src] = {
            "n": int(m.sum()),
            "condition_accuracy": _acc(
                (s["p_rotten"][m & real] >= 0.5).astype(int), s["rotten"][m & real]
            )
            if (m & real).any()
            else None,
            "produce_accuracy": _acc(s["produce_pred"][m], s["produce_true"][m]),
            "in_distribution_rate": float(s["in_distribution"][m].mean()),
            "auto_approve": auto_approve_stats(s, m),
        }
    others = s["rotten"] < 0
    eligible = s["in_distribution"] & s["produce_confident"]
    return {
        "n": int(len(y) + others.sum()),
        "n_produce_photos": int(real.sum()),
        "n_other_photos": int(others.sum()),
        "condition_accuracy": _acc(cond_pred, y),
        "condition_roc_auc": roc_auc(p, y),
        "condition_ece": ece,
        "condition_reliability": ece_table,
        "condition_confusion": {"labels": ["fresh", "rotten"], "matrix": cond_cm.tolist()},
        "produce_accuracy": _acc(s["produce_pred"][known], s["produce_true"][known]),
        "produce_accuracy_incl_other": _acc(s["produce_pred"], s["produce_true"]),
        "produce_confusion": {"labels": labels, "matrix": produce_cm.tolist()},
        "per_produce": per_produce,
        "per_source": per_source,
        "auto_approve": auto_approve_stats(s),
        "auto_approve_without_ood_gate": _without_gate(s),
        "ood_gate": {
            "in_distribution_rate_produce": float(s["in_distribution"][real].mean())
            if real.any()
            else None,
            "flagged_rate_other": float((~s["in_distribution"][others]).mean())
            if others.any()
            else None,
            "to_person_rate_other": float((~eligible[others]).mean()) if others.any() else None,
            "eligible_rate_produce": float(eligible[real].mean()) if real.any() else None,
        },
    }


def _without_gate(s: dict) -> dict:
    approved = (
        (s["p_rotten"] >= s["scores"][0].auto_approve_threshold) & s["produce_confident"]
        if len(s["scores"])
        else np.zeros(0, bool)
    )
    n, tp = int(approved.sum()), int((approved & (s["rotten"] == 1)).sum())
    pos = int((s["rotten"] == 1).sum())
    return {
        "approved": n,
        "false_approvals": n - tp,
        "precision": tp / n if n else None,
        "recall": tp / pos if pos else None,
    }


def foreign_metrics(classifier: Classifier, per_kind: int = 20, seed: int = 12345) -> dict:
    """Clearly foreign generated images (kinds never trained on): how many the OOD gate flags
    and how many reach auto-approval (should be none)."""
    out = {}
    for kind in FOREIGN_KINDS:
        items = [
            Item(make_other(kind, seed + i), OTHER_LABEL, -1, f"foreign:{kind}")
            for i in range(per_kind)
        ]
        s = score_items(classifier, items)
        out[kind] = {
            "n": per_kind,
            "ood_flagged_rate": float((~s["in_distribution"]).mean()),
            "predicted_other_rate": float(
                (s["produce_pred"] == len(classifier.metadata.labels.produce) - 1).mean()
            ),
            "auto_approved": int(s["auto"].sum()),
        }
    return out


# ------------------------------------------------------------------ plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pr(s: dict, threshold: float, path: Path, title: str) -> None:
    plt = _plt()
    eligible = s["in_distribution"] & s["produce_confident"]
    y = s["rotten"] == 1
    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, gate in (
        ("gated (OOD + produce)", eligible),
        ("condition head only", np.ones_like(eligible)),
    ):
        ts = np.unique(np.concatenate([s["p_rotten"], [0.5]]))
        prec, rec = [], []
        for t in ts:
            a = (s["p_rotten"] >= t) & gate
            if a.sum():
                prec.append((a & y).sum() / a.sum())
                rec.append((a & y).sum() / max(1, y.sum()))
        ax.plot(rec, prec, label=name)
    st = auto_approve_stats(s)
    if st["precision"] is not None:
        ax.scatter(
            [st["recall"]],
            [st["precision"]],
            color="red",
            zorder=5,
            label=f"operating point t={threshold:.3f}",
        )
    ax.axhline(0.99, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("recall (rotten auto-approved)")
    ax.set_ylabel("precision")
    ax.set_ylim(0.5, 1.01)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_reliability(table: list, ece: float, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    conf = [r["confidence"] for r in table]
    acc = [r["accuracy"] for r in table]
    ax.plot([0.5, 1], [0.5, 1], "k--", lw=0.8)
    ax.bar(
        [r["lo"] for r in table],
        acc,
        width=[r["hi"] - r["lo"] for r in table],
        align="edge",
        alpha=0.6,
        edgecolor="k",
        label="accuracy",
    )
    ax.plot(conf, acc, "o", color="red", ms=4, label="(mean confidence, accuracy)")
    for r in table:
        ax.annotate(f"n={r['n']}", (r["lo"], 0.02), fontsize=6, rotation=90)
    ax.set_xlabel("confidence (fresh/rotten)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability, ECE={ece:.3f}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_confusion(metrics: dict, path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [3, 1]})
    for ax, key in zip(axes, ("produce_confusion", "condition_confusion"), strict=False):
        cm = np.array(metrics[key]["matrix"])
        labels = metrics[key]["labels"]
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=60, fontsize=7)
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black",
                    )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_worst(items: list[Item], s: dict, path: Path, k: int = 12) -> list[dict]:
    """The condition mistakes the model was most sure of (and false auto-approvals first)."""
    plt = _plt()
    real = np.where(s["rotten"] >= 0)[0]
    err = np.abs(s["p_rotten"][real] - s["rotten"][real])
    false_auto = s["auto"][real] & (s["rotten"][real] != 1)
    order = real[np.lexsort((-err, ~false_auto))]
    worst = [i for i in order if abs(s["p_rotten"][i] - s["rotten"][i]) >= 0.5][:k]
    listing = []
    if not worst:
        worst = list(order[:4])
    cols = 4
    rows = (len(worst) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.4, rows * 2.9))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, worst, strict=False):
        img = items[i].image.convert("RGB").resize((160, 160))
        cam = np.clip(s["cam"][i], 0, None)
        cam = cam / cam.max() if cam.max() > 0 else cam
        from PIL import Image

        heat = (
            np.asarray(
                Image.fromarray((cam * 255).astype(np.uint8)).resize(
                    (160, 160), Image.Resampling.BILINEAR
                ),
                np.float32,
            )
            / 255
        )
        ax.imshow(img)
        ax.imshow(heat, cmap="jet", alpha=0.35, vmin=0, vmax=1)
        truth = ["fresh", "rotten"][s["rotten"][i]]
        flag = " AUTO" if s["auto"][i] else ""
        ax.set_title(
            f"{items[i].produce} {truth}, p_rot={s['p_rotten'][i]:.2f}{flag}\n"
            f"{items[i].source.split('/')[0][:22]}",
            fontsize=7,
        )
        listing.append(
            {
                "path": items[i].path,
                "source": items[i].source,
                "truth": truth,
                "p_rotten": float(s["p_rotten"][i]),
                "auto_approved": bool(s["auto"][i]),
            }
        )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return listing


def write_report(
    classifier: Classifier, items: list[Item], report: Path, title: str, foreign: int = 0
) -> dict:
    report.mkdir(parents=True, exist_ok=True)
    labels = classifier.metadata.labels.produce
    s = score_items(classifier, items)
    metrics = compute_metrics(s, labels)
    metrics["model_version"] = classifier.version
    metrics["threshold_version"] = classifier.metadata.threshold_version
    if foreign:
        metrics["foreign_images"] = foreign_metrics(classifier, foreign)
    threshold = classifier.metadata.auto_approve.threshold
    plot_pr(s, threshold, report / "pr_curve.png", title)
    plot_reliability(
        metrics["condition_reliability"], metrics["condition_ece"], report / "reliability.png"
    )
    plot_confusion(metrics, report / "confusion.png")
    metrics["worst_mistakes"] = plot_worst(items, s, report / "worst_mistakes.png")
    (report / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def headline(m: dict) -> dict:
    """The few numbers that go into the model metadata and card."""
    a = m["auto_approve"]
    return {
        "n": m["n"],
        "condition_accuracy": m["condition_accuracy"],
        "condition_roc_auc": m["condition_roc_auc"],
        "condition_ece": m["condition_ece"],
        "produce_accuracy": m["produce_accuracy"],
        "produce_accuracy_incl_other": m["produce_accuracy_incl_other"],
        "auto_approve_precision": a["precision"],
        "auto_approve_recall": a["recall"],
        "auto_approved": a["approved"],
        "false_approvals": a["false_approvals"],
        "ood_in_distribution_rate_produce": m["ood_gate"]["in_distribution_rate_produce"],
        "ood_flagged_rate_other": m["ood_gate"]["flagged_rate_other"],
    }


def load_split_items(
    root: Path,
    split: str | None,
    *,
    sources: list[str] | None = None,
    others: int = 400,
    seed: int = 0,
) -> list[Item]:
    records = select(
        read_manifest(root), splits=[split] if split else None, include_sources=sources or None
    )
    items = items_from_records(root, records)
    if others and split:
        items += other_items(others, split, seed)
    return items


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--dataset-dir", type=Path, default=None)
    p.add_argument("--split", default="test", help="train/val/test, or 'all'")
    p.add_argument("--source", action="append", default=None, help="only this source_repo")
    p.add_argument("--others", type=int, default=400, help="generated 'other' photos (0: none)")
    p.add_argument("--foreign", type=int, default=20, help="foreign images per kind (0: none)")
    p.add_argument("--report", type=Path, default=Path("reports/test"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    root = args.dataset_dir or default_dataset_dir()
    classifier = Classifier(args.model, intra_op_threads=2)
    split = None if args.split == "all" else args.split
    items = load_split_items(root, split, sources=args.source, others=args.others, seed=args.seed)
    m = write_report(
        classifier, items, args.report, f"{args.model.name} on {args.split}", args.foreign
    )
    print(json.dumps(headline(m), indent=2))
    return m


if __name__ == "__main__":
    main()
