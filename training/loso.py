"""Leave-one-source-out evaluation: the honest estimate of how the model meets photos from a
place it has never seen.

    python -m training.loso --out runs/loso --epochs 5

For each ``source_repo`` in the manifest: train without it (same recipe as the shipped model;
fewer epochs by default to fit the 2-core CPU budget), calibrate on the remaining sources'
validation split, then score EVERY photo of the held-out source (all splits) through the
Classifier with its OOD gate. Produce kinds that only the held-out source has (e.g. grape,
guava, jujube, pomegranate, strawberry in ErenYurtaslan) are unknown to that model: they must
go to a person.

``--mode probe`` is the cheap variant for a busy CPU: the ImageNet backbone stays frozen, its
pooled features are computed once (clean + one augmented pass), and only the two linear heads
and the gate are fitted per held-out source. Everything after that (export, calibration on
validation, scoring through the Classifier) is the same code as for the shipped model.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from claims_api.inference.model import Classifier
from data.manifest import read_manifest
from data.paths import default_dataset_dir
from training import train as train_mod
from training.cross_source import SCORES_FILE, HeldOutScores, load_folds, nested_fold_results
from training.evaluate import (
    auto_approve_stats,
    compute_metrics,
    headline,
    load_split_items,
    score_items,
)
from training.export import calibrate_and_export


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="leave-one-source-out evaluation")
    p.add_argument("--dataset-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("runs/loso"))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", action="append", default=None, help="only these sources")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--arch", default="lite0")
    p.add_argument("--others", type=int, default=400)
    p.add_argument("--mode", choices=["finetune", "probe"], default="finetune")
    p.add_argument(
        "--train-args", default="", help="more arguments for training.train, e.g. '--threads 1'"
    )
    p.add_argument(
        "--keep-done",
        action="store_true",
        help="skip folds that already have their held-out scores (resume a run)",
    )
    p.add_argument(
        "--reuse",
        action="store_true",
        help="keep a fold's fine-tuned weights when RUN/checkpoint.pt exists; only "
        "refit the gate and re-certify (after a change to the gate or the "
        "calibration)",
    )
    args = p.parse_args(argv)
    if args.mode == "probe":
        return probe_main(args)
    root = args.dataset_dir or default_dataset_dir()
    sources = sorted({r.source_repo for r in read_manifest(root)})
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for source in sources:
        if args.only and source not in args.only:
            continue
        run = args.out / source.replace("/", "__")
        if args.keep_done and (run / SCORES_FILE).exists() and source in summary:
            print(f"{source}: kept (held-out scores in {run})", flush=True)
            summary[source].setdefault("train_seconds", _train_seconds(run / "checkpoint.pt"))
            continue
        if args.keep_done and (run / "model.onnx").exists() and source in summary:
            _score_fold(run, root, source, args.limit)  # an older run: scores only
            continue
        train_argv = [
            "--dataset-dir",
            str(root),
            "--out",
            str(run),
            "--epochs",
            str(args.epochs),
            "--size",
            str(args.size),
            "--seed",
            str(args.seed),
            "--exclude-source",
            source,
            "--arch",
            args.arch,
            "--others",
            str(args.others),
        ]
        if args.limit:
            train_argv += ["--limit", str(args.limit)]
        train_argv += shlex.split(args.train_args)
        ckpt = run / "checkpoint.pt"
        if args.reuse and ckpt.exists():
            weights = run / "weights.pt"
            ckpt.replace(weights)
            train_argv += ["--init-from", str(weights), "--epochs", "0"]
        ckpt = train_mod.main(train_argv)
        model_path = run / "model.onnx"
        calibrate_and_export(ckpt, model_path, version=f"loso-{source}")
        classifier, items, s = _score_fold(run, root, source, args.limit)
        m = compute_metrics(s, classifier.metadata.labels.produce)
        result = _summary_row(source, items, s, m, classifier, "fine-tune", args)
        result["train_seconds"] = _train_seconds(ckpt)
        (run / "metrics.json").write_text(json.dumps(m, indent=2))
        summary[source] = result
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary, indent=2))
        print(
            json.dumps({k: v for k, v in result.items() if k != "per_produce"}, indent=2),
            flush=True,
        )
    return add_nested(summary, args.out, summary_path)


def _score_fold(run: Path, root: Path, source: str, limit: int | None):
    """Score every photo of the held-out source through the fold model; keep the per-photo
    scores for the cross-source calibration."""
    classifier = Classifier(run / "model.onnx", intra_op_threads=2)
    items = load_split_items(root, None, sources=[source], others=0)
    if limit:
        items = items[:limit]
    s = score_items(classifier, items)
    HeldOutScores.from_scores(s, source).save(run / SCORES_FILE)
    return classifier, items, s


def _train_seconds(checkpoint: Path) -> int | None:
    import torch

    if not checkpoint.exists():
        return None
    return torch.load(checkpoint, map_location="cpu", weights_only=False).get("train_seconds")


def add_nested(summary: dict, out: Path, summary_path: Path) -> dict:
    """Each row gets what the full procedure (validation + cross-source threshold, chosen
    without the held-out source) would have approved on it."""
    if not list(out.glob(f"*/{SCORES_FILE}")):
        return summary
    pool = load_folds(out)
    nested = nested_fold_results(pool, {src: row["threshold"] for src, row in summary.items()})
    for src, result in nested.items():
        if src in summary:
            summary[src]["nested_cross_source"] = result
    summary_path.write_text(json.dumps(summary, indent=2))
    return summary


# ---------------------------------------------------------------- linear-probe variant


def _probe_features(root: Path, args, cache: Path) -> dict:
    """Pooled features of the frozen ImageNet backbone for every manifest photo and every
    generated ``other`` photo (clean), plus one augmented pass over the training photos."""
    import numpy as np
    import torch

    from claims_api.inference.metadata import InputSpec
    from data.augment import PhonePhotoAugment
    from training.common import items_from_records, other_items
    from training.model import LITE_MEAN, LITE_STD, FreshClaimNet
    from training.train import extract

    if cache.exists():
        return dict(np.load(cache, allow_pickle=True))
    torch.manual_seed(args.seed)
    records = read_manifest(root)
    items = items_from_records(root, records)
    for split in ("train", "val", "test"):
        items += other_items(args.others, split, args.seed)
    split_of = [r.split for r in records] + [it.path.split("/")[1] for it in items[len(records) :]]
    spec = InputSpec(size=args.size, mean=LITE_MEAN, std=LITE_STD)
    net = FreshClaimNet(2, args.size)
    _, _, clean = extract(net, items, spec, desc="probe features")
    train_idx = [i for i, s in enumerate(split_of) if s == "train"]
    aug = PhonePhotoAugment(seed=args.seed, paste_p=0.35)
    _, _, augmented = extract(
        net, [items[i] for i in train_idx], spec, transform=aug, desc="probe features (aug)"
    )
    out = {
        "clean": clean,
        "aug": augmented,
        "aug_index": np.array(train_idx),
        "split": np.array(split_of),
        "produce": np.array([it.produce for it in items]),
        "rotten": np.array([it.rotten for it in items]),
        "source": np.array([it.source for it in items]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def _fit_linear(x, y, n_classes: int, steps: int = 400, wd: float = 1e-3):
    import torch

    torch.manual_seed(0)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    head = torch.nn.Linear(x.shape[1], n_classes)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2, weight_decay=wd)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(xt), yt, label_smoothing=0.05).backward()
        opt.step()
    return head


def probe_main(args) -> dict:
    import numpy as np
    import torch

    from claims_api.inference.metadata import OTHER_LABEL, InputSpec
    from data.manifest import fingerprint, select
    from training.model import LITE_MEAN, LITE_STD, FreshClaimNet, MahalanobisGate

    root = args.dataset_dir or default_dataset_dir()
    torch.set_num_threads(1)
    f = _probe_features(root, args, args.out / f"features_{args.size}.npz")
    records = read_manifest(root)
    sources = sorted({r.source_repo for r in records})
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    is_other = f["produce"] == OTHER_LABEL
    for source in sources:
        if args.only and source not in args.only:
            continue
        run = args.out / source.replace("/", "__")
        keep = f["source"] != source
        train = keep & (f["split"] == "train")
        kinds = sorted(set(f["produce"][train & ~is_other]))
        labels = [*kinds, OTHER_LABEL]
        aug_keep = keep[f["aug_index"]]
        x = np.concatenate([f["clean"][train], f["aug"][aug_keep]])
        prod = np.concatenate([f["produce"][train], f["produce"][f["aug_index"]][aug_keep]])
        rot = np.concatenate([f["rotten"][train], f["rotten"][f["aug_index"]][aug_keep]])
        y_p = np.array([labels.index(k) for k in prod])
        produce_head = _fit_linear(x, y_p, len(labels))
        condition_head = _fit_linear(x[rot >= 0], rot[rot >= 0], 2)
        known = np.isin(prod, kinds)
        gate = MahalanobisGate.fit(x[known], np.array([kinds.index(k) for k in prod[known]]), kinds)
        net = FreshClaimNet(len(labels), args.size)
        net.produce_head.load_state_dict(produce_head.state_dict())
        net.condition_head.load_state_dict(condition_head.state_dict())
        used = select(records, exclude_sources=[source])
        ckpt = {
            "state_dict": net.state_dict(),
            "arch": "lite0",
            "labels": labels,
            "input": InputSpec(size=args.size, mean=LITE_MEAN, std=LITE_STD).model_dump(),
            "gate": gate.state(),
            "gate_info": {"method": "mahalanobis", "fit_on": "frozen features, train + aug"},
            "fingerprint": fingerprint(root, used),
            "dataset_dir": str(root),
            "exclude_sources": [source],
            "others": args.others,
            "seed": args.seed,
            "args": {},
            "command": "python -m training.loso --mode probe",
        }
        run.mkdir(parents=True, exist_ok=True)
        torch.save(ckpt, run / "checkpoint.pt")
        model_path = run / "model.onnx"
        calibrate_and_export(run / "checkpoint.pt", model_path, version=f"loso-probe-{source}")
        classifier, items, s = _score_fold(run, root, source, None)
        m = compute_metrics(s, classifier.metadata.labels.produce)
        summary[source] = _summary_row(
            source, items, s, m, classifier, "probe (frozen backbone)", args
        )
        (run / "metrics.json").write_text(json.dumps(m, indent=2))
        summary_path.write_text(json.dumps(summary, indent=2))
        print(
            json.dumps({k: v for k, v in summary[source].items() if k != "per_produce"}, indent=2),
            flush=True,
        )
    return add_nested(summary, args.out, summary_path)


def _summary_row(source, items, s, m, classifier, mode: str, args) -> dict:
    unknown = ~s["known_kind"]
    # The service also needs the ordered produce to be what the model sees (and one of its
    # labels): with the true produce as the ordered one, this is what a claim would get.
    ordered = s["auto"] & (s["produce_pred"] == s["produce_true"]) & s["known_kind"]
    return headline(m) | {
        "held_out_source": source,
        "mode": mode,
        "photos": len(items),
        "epochs": None if mode.startswith("probe") else args.epochs,
        "size": args.size,
        "threshold": classifier.metadata.auto_approve.threshold,
        "val_certificate": classifier.metadata.auto_approve.certificate.model_dump(),
        "auto_approve_without_ood_gate": m["auto_approve_without_ood_gate"],
        "auto_approve_with_ordered_produce": auto_approve_stats(s | {"auto": ordered}),
        "unknown_kind_photos": int(unknown.sum()),
        "unknown_kind_auto_approved": int((s["auto"] & unknown).sum()),
        "unknown_kind_ood_flagged_rate": float((~s["in_distribution"][unknown]).mean())
        if unknown.any()
        else None,
        "per_produce": m["per_produce"],
    }


if __name__ == "__main__":
    main()
