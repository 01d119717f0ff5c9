"""One command that reproduces the shipped model: train -> calibrate + export -> evaluate ->
model card.

    python -m training.pipeline            # (make model) writes models/<version>.onnx

Defaults are the shipped model's settings; the dataset folder is ``--dataset-dir``,
``$FRESHCLAIM_DATASET_DIR`` or ``../shared/datasets/produce``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from claims_api.inference.model import Classifier
from data.manifest import default_dataset_dir
from training import card, train
from training.evaluate import load_split_items, write_report
from training.export import calibrate_and_export

VERSION = "produce-lite0-2026.11.25"
REPORT_PNGS = ("pr_curve.png", "reliability.png", "confusion.png", "worst_mistakes.png")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset-dir", type=Path, default=None)
    p.add_argument("--version", default=VERSION)
    p.add_argument("--run", type=Path, default=Path("runs/shipped"))
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-train", action="store_true", help="reuse RUN/checkpoint.pt")
    args = p.parse_args(argv)
    root = args.dataset_dir or default_dataset_dir()
    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--skip-train"]
    # --skip-train reuses a checkpoint made by the same settings; record the full command
    command = " ".join(["python -m training.pipeline", *given])
    ckpt = args.run / "checkpoint.pt"
    if not args.skip_train:
        ckpt = train.main(["--dataset-dir", str(root), "--out", str(args.run),
                           "--epochs", str(args.epochs), "--seed", str(args.seed)])
    model_path = args.models / f"{args.version}.onnx"
    meta, _ = calibrate_and_export(ckpt, model_path, version=args.version,
                                   training_command=command.strip(), dataset_dir=root)
    classifier = Classifier(model_path, intra_op_threads=2)
    report = Path("reports") / args.version
    metrics = write_report(classifier, load_split_items(root, "test", seed=args.seed),
                           report, f"{args.version} on test", foreign=20)
    small = args.models / "report"
    small.mkdir(parents=True, exist_ok=True)
    for name in REPORT_PNGS:
        shutil.copy(report / name, small / name)
    (small / "test_metrics.json").write_text(json.dumps(metrics, indent=2))
    card.write(model_path)
    print(json.dumps(meta.metrics["test"], indent=2))
    return model_path


if __name__ == "__main__":
    main()
