"""One command that reproduces the shipped model: train -> leave-one-source-out folds ->
calibrate (validation + cross-source) + export -> evaluate -> model card.

    python -m training.pipeline            # (make train) writes models/<version>.onnx

Defaults are the shipped model's settings; the dataset folder is ``--dataset-dir``,
``$FRESHCLAIM_DATASET_DIR`` or ``../shared/datasets/produce``. The fold models of
``--loso-dir`` are reused when their held-out scores are already there (an interrupted run
resumes), so only the missing folds are trained; ``--resume`` likewise continues the main
training from ``RUN/last.pt`` when an earlier run stopped part-way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from claims_api.inference.model import Classifier
from data.paths import default_dataset_dir
from training import card, loso, loso_report, train
from training.cross_source import load_folds
from training.evaluate import load_split_items, write_report
from training.export import calibrate_and_export

VERSION = "produce-lite0-2026.11.25"
REPORT_PNGS = ("pr_curve.png", "reliability.png", "confusion.png", "worst_mistakes.png")


def publish(
    model_path: Path,
    root: Path,
    *,
    others: int,
    seed: int,
    loso_summaries: list[Path] = (),
    reports: Path = Path("reports"),
) -> dict:
    """Test report (full under reports/, the plots and metrics beside the model), the
    leave-one-source-out table and the model card."""
    classifier = Classifier(model_path, intra_op_threads=2)
    version = classifier.version
    report = reports / version
    metrics = write_report(
        classifier,
        load_split_items(root, "test", others=others, seed=seed),
        report,
        f"{version} on test",
        foreign=20,
    )
    small = model_path.parent / "report"
    small.mkdir(parents=True, exist_ok=True)
    for name in REPORT_PNGS:
        shutil.copy(report / name, small / name)
    (small / "test_metrics.json").write_text(json.dumps(metrics, indent=2))
    summaries = [str(p) for p in loso_summaries if Path(p).exists()]
    if summaries:
        loso_report.main(summaries, out=small / "loso.json")
    card.write(model_path)
    return metrics


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset-dir", type=Path, default=None)
    p.add_argument("--version", default=VERSION)
    p.add_argument("--run", type=Path, default=Path("runs/shipped"))
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loso-dir", type=Path, default=Path("runs/loso_ft"))
    p.add_argument("--loso-epochs", type=int, default=3)
    p.add_argument(
        "--no-cross-source",
        action="store_true",
        help="calibrate on validation only (no leave-one-source-out folds)",
    )
    p.add_argument("--skip-train", action="store_true", help="reuse RUN/checkpoint.pt")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the training from RUN/last.pt when an earlier run of the "
        "same settings stopped part-way (starts afresh when there is none)",
    )
    args = p.parse_args(argv)
    root = args.dataset_dir or default_dataset_dir()
    given = [
        a
        for a in (argv if argv is not None else sys.argv[1:])
        if a not in ("--skip-train", "--resume")
    ]
    # --skip-train and --resume reuse work of the same settings; record the full command
    command = " ".join(["python -m training.pipeline", *given])
    started = time.time()
    ckpt = args.run / "checkpoint.pt"
    if not args.skip_train:
        train_argv = [
            "--dataset-dir",
            str(root),
            "--out",
            str(args.run),
            "--epochs",
            str(args.epochs),
            "--seed",
            str(args.seed),
        ]
        last = args.run / train.RESUME_FILE
        if args.resume and last.exists():
            train_argv += ["--resume", str(last)]
        ckpt = train.main(train_argv)
    pool, summaries = None, []
    if not args.no_cross_source:
        loso.main(
            [
                "--dataset-dir",
                str(root),
                "--out",
                str(args.loso_dir),
                "--epochs",
                str(args.loso_epochs),
                "--seed",
                str(args.seed),
                "--keep-done",
            ]
        )
        pool = load_folds(args.loso_dir)
        summaries = [args.loso_dir / "summary.json"]
    model_path = args.models / f"{args.version}.onnx"
    meta, _ = calibrate_and_export(
        ckpt,
        model_path,
        version=args.version,
        training_command=command.strip(),
        dataset_dir=root,
        cross_source=pool,
    )
    publish(
        model_path, root, others=meta.metrics["others"], seed=args.seed, loso_summaries=summaries
    )
    print(json.dumps(meta.metrics["test"], indent=2))
    print(f"pipeline wall-clock {(time.time() - started) / 60:.1f} min", flush=True)
    return model_path


if __name__ == "__main__":
    main()
