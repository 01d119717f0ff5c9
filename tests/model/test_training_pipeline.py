"""End to end on a small synthetic sample: train (tiny random network) -> calibrate + export
to ONNX -> evaluate report, all through the same code as the shipped model. Fast (< 30 s)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="needs the train extra (torch, torchvision): pip install -e '.[train]'"
)
pytestmark = pytest.mark.torch

from claims_api.inference.metadata import OTHER_LABEL, ModelMetadata  # noqa: E402
from claims_api.inference.model import Classifier  # noqa: E402
from data.manifest import ManifestDataset, fingerprint, read_manifest  # noqa: E402
from data.synthetic import make_fruit, synthetic_manifest  # noqa: E402


def test_manifest_loader(tmp_path):
    root = synthetic_manifest(tmp_path)
    records = read_manifest(root)
    ds = ManifestDataset(root, records, ["apple", "banana", OTHER_LABEL])
    image, produce, rotten = ds[0]
    assert image.mode == "RGB" and produce in (0, 1) and rotten in (0, 1)
    fp = fingerprint(root, records)
    assert fp.startswith("sha256:") and fp == fingerprint(root, list(reversed(records)))


def test_augment_keeps_rgb_and_is_reproducible(tmp_path):
    from data.augment import PhonePhotoAugment

    img = make_fruit("orange", rotten=True, size=(120, 100), seed=3)
    torch.manual_seed(0)
    a = np.asarray(PhonePhotoAugment(seed=1, paste_p=1.0)(img))
    torch.manual_seed(0)
    b = np.asarray(PhonePhotoAugment(seed=1, paste_p=1.0)(img))
    assert a.ndim == 3 and a.shape[2] == 3
    assert np.array_equal(a, b)


def test_train_export_evaluate_end_to_end(tmp_path):
    from training import train
    from training.evaluate import load_split_items, write_report
    from training.export import calibrate_and_export

    root = synthetic_manifest(tmp_path / "data")
    run = tmp_path / "run"
    ckpt = train.main(
        [
            "--dataset-dir",
            str(root),
            "--out",
            str(run),
            "--arch",
            "tiny",
            "--no-pretrained",
            "--size",
            "64",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--others",
            "20",
            "--threads",
            "1",
        ]
    )
    model_path = tmp_path / "m.onnx"
    meta, _ = calibrate_and_export(ckpt, model_path, version="e2e-test")

    # the file honours the service contract
    clf = Classifier(model_path)
    assert ModelMetadata.from_json(clf.metadata.to_json()) == clf.metadata
    assert clf.metadata.labels.produce == ["apple", "banana", OTHER_LABEL]
    assert clf.metadata.data_fingerprint.startswith("sha256:")
    assert 0 < clf.metadata.auto_approve.threshold <= 1
    assert clf.metadata.auto_approve.certificate is not None
    scores = clf.score(make_fruit("apple", rotten=True, size=(200, 150), seed=9))
    assert 0 <= scores.p_rotten <= 1 and len(scores.cam) > 0

    # exported ONNX matches torch
    diffs = meta.metrics["onnx_parity_max_abs_diff"]
    assert set(diffs) == {"produce_logits", "condition_logits", "ood_score", "cam"}
    assert max(diffs.values()) < 1e-3, diffs

    # evaluation report
    report = tmp_path / "report"
    items = load_split_items(root, "test", others=20)
    metrics = write_report(clf, items, report, "e2e", foreign=2)
    for name in (
        "metrics.json",
        "pr_curve.png",
        "reliability.png",
        "confusion.png",
        "worst_mistakes.png",
    ):
        assert (report / name).stat().st_size > 0, name
    saved = json.loads((report / "metrics.json").read_text())
    for key in (
        "condition_accuracy",
        "condition_roc_auc",
        "condition_ece",
        "produce_accuracy",
        "per_produce",
        "per_source",
        "produce_confusion",
        "condition_confusion",
        "auto_approve",
        "ood_gate",
        "foreign_images",
    ):
        assert key in saved, key
    assert metrics["n_produce_photos"] == 4 and metrics["n_other_photos"] == 2


def test_cross_source_calibration_and_recertify_end_to_end(tmp_path):
    """Leave-one-source-out folds -> their held-out scores tighten the threshold at export ->
    the same model re-certified from its ONNX file alone gets the same operating point."""
    from training import loso, recertify, train
    from training.cross_source import load_folds
    from training.export import calibrate_and_export

    root = synthetic_manifest(tmp_path / "data", per_cell=12, source_run=6)
    small = ["--arch", "tiny", "--size", "64", "--epochs", "1", "--others", "20"]
    summary = loso.main(
        [
            "--dataset-dir",
            str(root),
            "--out",
            str(tmp_path / "loso"),
            *small,
            "--train-args",
            "--no-pretrained --batch-size 8 --threads 1",
        ]
    )
    assert sorted(summary) == ["synthetic/0", "synthetic/1"]
    for row in summary.values():  # nested: the threshold used on a source is chosen without it
        nested = row["nested_cross_source"]
        assert nested["threshold"] >= row["threshold"]
        assert {"model_gates", "service_rule"} <= set(nested)
    pool = load_folds(tmp_path / "loso")
    assert pool.sources == ["synthetic/0", "synthetic/1"] and len(pool.p_rotten) == 48

    ckpt = train.main(
        [
            "--dataset-dir",
            str(root),
            "--out",
            str(tmp_path / "run"),
            *small,
            "--no-pretrained",
            "--batch-size",
            "8",
            "--threads",
            "1",
        ]
    )
    model_path = tmp_path / "models" / "m.onnx"
    meta, _ = calibrate_and_export(ckpt, model_path, version="xs-test", cross_source=pool)
    cert = meta.auto_approve.certificate
    assert cert.split == "val+cross_source"
    info = cert.extra
    assert meta.auto_approve.threshold == max(info["val_threshold"], info["cross_source_threshold"])
    assert info["cross_source"]["sources"] == ["synthetic/0", "synthetic/1"]

    recertify.main(
        [
            str(model_path),
            "--dataset-dir",
            str(root),
            "--loso-dir",
            str(tmp_path / "loso"),
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    again = Classifier(model_path).metadata
    assert again.auto_approve.threshold == pytest.approx(meta.auto_approve.threshold)
    assert again.metrics["recertified"]["previous_threshold_version"] == meta.threshold_version
    assert (model_path.parent / "MODEL_CARD.md").read_text().count("re-certified") == 1
    assert (model_path.parent / "report" / "loso.json").exists()

    other = tmp_path / "other-data"
    synthetic_manifest(other, per_cell=6)  # not the data the model was trained beside
    with pytest.raises(SystemExit, match="not the data"):
        recertify.main([str(model_path), "--dataset-dir", str(other)])
