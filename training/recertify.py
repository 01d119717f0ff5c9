"""Re-certify an exported model: choose its operating point again without retraining.

    python -m training.recertify models/<file>.onnx --loso-dir runs/loso_ft

The graph (weights, gate statistics) is unchanged. Temperatures, the OOD threshold, the
produce-confidence floor and the auto-approve threshold are chosen again on validation with
the current rule (``training.export.calibrate``; with ``--loso-dir`` also on the pooled
out-of-source scores of leave-one-source-out folds), the test metrics in the metadata are
measured again, and the report and model card are rewritten. The model version stays; the
threshold version (``<model_version>@<threshold>``) changes with the threshold, so every
decision stays traceable to the operating point it was made at.

The validation split must be the one the model was trained beside: the data fingerprint is
checked against the model's metadata.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from claims_api.inference.model import Classifier
from data.paths import default_dataset_dir
from training.common import load_run_data
from training.cross_source import load_folds
from training.evaluate import compute_metrics, headline, score_items
from training.export import apply_calibration, calibrate, replace_metadata
from training.pipeline import publish


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", type=Path)
    p.add_argument("--dataset-dir", type=Path, default=None)
    p.add_argument(
        "--loso-dir",
        type=Path,
        default=None,
        help="leave-one-source-out run whose held-out scores tighten the threshold",
    )
    p.add_argument("--target-precision", type=float, default=0.99)
    p.add_argument("--ood-tpr", type=float, default=0.95)
    p.add_argument(
        "--reports",
        type=Path,
        default=Path("reports"),
        help="the full test report goes to REPORTS/<model_version>",
    )
    args = p.parse_args(argv)
    given = argv if argv is not None else sys.argv[1:]
    root = args.dataset_dir or default_dataset_dir()
    meta = Classifier(args.model).metadata
    others, seed = meta.metrics.get("others", 400), meta.metrics.get("seed", 0)
    data = load_run_data(root, others=others, seed=seed)
    if data.fingerprint != meta.data_fingerprint:
        raise SystemExit(
            f"{root} is not the data {args.model.name} was trained on "
            f"({data.fingerprint} != {meta.data_fingerprint}): retrain instead"
        )
    previous = meta.threshold_version
    pool = load_folds(args.loso_dir) if args.loso_dir else None
    cal = calibrate(
        args.model,
        data.splits["val"],
        target=args.target_precision,
        ood_tpr=args.ood_tpr,
        cross_source=pool,
    )
    meta = apply_calibration(meta, cal, args.target_precision, args.ood_tpr)
    replace_metadata(args.model, meta)
    classifier = Classifier(args.model)
    test = headline(
        compute_metrics(score_items(classifier, data.splits["test"]), meta.labels.produce)
    )
    recertified = {
        "at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "command": " ".join(["python -m training.recertify", *given]),
        "previous_threshold_version": previous,
    }
    meta = meta.model_copy(
        update={
            "metrics": meta.metrics
            | {"test": test, "val_threshold_choice": cal.threshold_info, "recertified": recertified}
        }
    )
    replace_metadata(args.model, meta)
    publish(
        args.model,
        root,
        others=others,
        seed=seed,
        loso_summaries=[args.loso_dir / "summary.json"] if args.loso_dir else [],
        reports=args.reports,
    )
    print(f"{args.model}: {meta.threshold_version}; test {test}")
    return args.model


if __name__ == "__main__":
    main()
