"""The shipped model in models/: it loads with onnxruntime alone, its metadata is valid, its
gates send clearly foreign photos to a person, and (with the dataset) the test figures in its
metadata are what the service measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from claims_api.inference.metadata import OTHER_LABEL, ModelMetadata
from claims_api.inference.model import Classifier
from claims_api.rules.gate import photo_gate
from data.manifest import default_dataset_dir
from data.negatives import FOREIGN_KINDS, make_other
from data.synthetic import make_fruit, make_not_produce
from tests.support.paths import REPO

MODELS = REPO / "models"
SHIPPED = sorted(MODELS.glob("*.onnx"))
DATASET = default_dataset_dir()

needs_model = pytest.mark.skipif(not SHIPPED, reason="no shipped model in models/")
needs_dataset = pytest.mark.skipif(
    not (DATASET / "manifest.csv").exists(),
    reason=f"dataset not found at {DATASET} (set FRESHCLAIM_DATASET_DIR)",
)


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier(SHIPPED[-1])


@needs_model
def test_shipped_model_loads_and_metadata_validates(clf):
    meta = clf.metadata
    assert ModelMetadata.from_json(meta.to_json()) == meta
    assert meta.labels.produce[-1] == OTHER_LABEL
    assert meta.labels.condition == ["fresh", "rotten"]
    assert meta.model_version and meta.training_command.startswith("python -m training.")
    assert meta.data_fingerprint.startswith("sha256:")
    assert meta.ood.method == "knn" and meta.ood.threshold > 0
    cert = meta.auto_approve.certificate
    assert cert is not None and cert.split == "val+cross_source" and cert.target_precision == 0.99
    assert meta.auto_approve.threshold >= cert.extra["cross_source_threshold"]
    assert cert.precision >= 0.99
    assert 0.5 <= meta.auto_approve.threshold <= 1
    assert max(meta.metrics["onnx_parity_max_abs_diff"].values()) < 1e-3
    assert SHIPPED[-1].stat().st_size < 40e6
    assert (MODELS / "MODEL_CARD.md").read_text().count(meta.model_version) >= 1


@needs_model
def test_batch_axis_is_dynamic(clf):
    photos = [
        make_fruit("banana", rotten=r, size=(320, 240), seed=i)
        for i, r in enumerate([False, True, False])
    ]
    batch = np.stack([clf.prepare(p) for p in photos])
    scores = clf.score_batch(batch)
    assert len(scores) == 3
    single = clf.score(photos[1])
    assert single.p_rotten == pytest.approx(scores[1].p_rotten, abs=1e-4)


@needs_model
def test_clearly_foreign_images_are_never_auto_approved(clf):
    images = [make_other(kind, 500 + i) for kind in FOREIGN_KINDS for i in range(6)]
    images += [make_not_produce(seed=i) for i in range(4)]
    images += [make_fruit("apple", rotten=True, seed=i) for i in range(4)]  # cartoon, rotten
    scores = [clf.score(im) for im in images]
    assert not any(photo_gate(s, None).auto_approvable for s in scores)
    flagged = np.mean([not s.in_distribution for s in scores])
    assert flagged >= 0.9, f"OOD gate flagged only {flagged:.0%} of clearly foreign images"


@needs_model
@needs_dataset
@pytest.mark.dataset
def test_reported_test_metrics_are_what_the_service_measures(clf):
    from training.evaluate import compute_metrics, headline, load_split_items, score_items

    m = clf.metadata.metrics
    items = load_split_items(DATASET, "test", others=m["others"], seed=m["seed"])
    measured = headline(compute_metrics(score_items(clf, items), clf.metadata.labels.produce))
    reported = clf.metadata.metrics["test"]
    for key in (
        "condition_accuracy",
        "produce_accuracy",
        "auto_approve_precision",
        "auto_approve_recall",
        "auto_approved",
    ):
        assert measured[key] == pytest.approx(reported[key], abs=1e-9), key


@needs_model
@needs_dataset
@pytest.mark.dataset
def test_predict_cli_applies_the_ordered_produce_like_the_service(clf):
    import json

    from typer.testing import CliRunner

    from claims_api.cli import app
    from data.manifest import read_manifest

    rotten = [r for r in read_manifest(DATASET) if r.split == "test" and r.condition == "rotten"]
    runner = CliRunner()

    def predict(path: Path, *extra: str) -> dict:
        result = runner.invoke(
            app, ["predict", "--json", "--model", str(SHIPPED[-1]), *extra, str(path)]
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output.strip().splitlines()[-1])

    for record in rotten:
        path = DATASET / record.image
        row = predict(path)
        if row["auto_approvable"]:
            break
    else:
        pytest.fail("the shipped model auto-approves none of the rotten test photos")
    assert row["model_version"] == clf.version and row["produce"] == record.produce
    assert predict(path, "--produce", record.produce)["auto_approvable"] is True
    other = next(k for k in clf.metadata.labels.produce if k != record.produce)
    assert predict(path, "--produce", other)["auto_approvable"] is False
