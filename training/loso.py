"""Leave-one-source-out evaluation: the honest estimate of how the model meets photos from a
place it has never seen.

    python -m training.loso --out runs/loso --epochs 5

For each ``source_repo`` in the manifest: train without it (same recipe as the shipped model;
fewer epochs by default to fit the 2-core CPU budget), calibrate on the remaining sources'
validation split, then score EVERY photo of the held-out source (all splits) through the
Classifier with its OOD gate. Produce kinds that only the held-out source has (e.g. grape,
guava, jujube, pomegranate, strawberry in ErenYurtaslan) are unknown to that model: they must
go to a person.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from claims_api.inference.model import Classifier
from data.manifest import default_dataset_dir, read_manifest
from training import train as train_mod
from training.evaluate import compute_metrics, headline, load_split_items, score_items
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
    args = p.parse_args(argv)
    root = args.dataset_dir or default_dataset_dir()
    sources = sorted({r.source_repo for r in read_manifest(root)})
    summary_path = args.out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for source in sources:
        if args.only and source not in args.only:
            continue
        run = args.out / source.replace("/", "__")
        train_argv = ["--dataset-dir", str(root), "--out", str(run), "--epochs",
                      str(args.epochs), "--size", str(args.size), "--seed", str(args.seed),
                      "--exclude-source", source, "--arch", args.arch, "--others",
                      str(args.others)]
        if args.limit:
            train_argv += ["--limit", str(args.limit)]
        ckpt = train_mod.main(train_argv)
        model_path = run / "model.onnx"
        calibrate_and_export(ckpt, model_path, version=f"loso-{source}")
        classifier = Classifier(model_path, intra_op_threads=2)
        items = load_split_items(root, None, sources=[source], others=0)
        if args.limit:
            items = items[: args.limit]
        s = score_items(classifier, items)
        m = compute_metrics(s, classifier.metadata.labels.produce)
        unknown = ~s["known_kind"]
        result = headline(m) | {
            "held_out_source": source,
            "photos": len(items),
            "epochs": args.epochs,
            "size": args.size,
            "threshold": classifier.metadata.auto_approve.threshold,
            "val_certificate": classifier.metadata.auto_approve.certificate.model_dump(),
            "auto_approve_without_ood_gate": m["auto_approve_without_ood_gate"],
            "unknown_kind_photos": int(unknown.sum()),
            "unknown_kind_auto_approved": int((s["auto"] & unknown).sum()),
            "unknown_kind_ood_flagged_rate": float((~s["in_distribution"][unknown]).mean())
            if unknown.any() else None,
            "per_produce": m["per_produce"],
        }
        (run / "metrics.json").write_text(json.dumps(m, indent=2))
        summary[source] = result
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(summary, indent=2))
        print(json.dumps({k: v for k, v in result.items() if k != "per_produce"}, indent=2),
              flush=True)
    return summary


if __name__ == "__main__":
    main()
