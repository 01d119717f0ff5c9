"""Calibrate on validation, export to ONNX with the FreshClaim metadata, check parity.

    python -m training.export --checkpoint runs/shipped/checkpoint.pt --out models/<name>.onnx

1. The network + OOD gate + class-activation map become one ONNX graph
   (``torch.onnx.export``, opset 17, dynamic batch axis).
2. On the validation split, scored through :class:`claims_api.inference.model.Classifier`:
   temperatures (NLL), the OOD threshold (``--ood-tpr`` of validation produce photos pass),
   the produce-confidence floor and the auto-approve threshold (lowest with rotten precision
   >= ``--target-precision``, after temperature scaling and with the gates applied).
3. Test-split metrics and the data fingerprint go into the metadata; a model card summary is
   written beside the file by ``training.pipeline``.
4. Parity: torch vs onnxruntime on real photos, max abs difference per output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from claims_api.inference.metadata import (
    INPUT_NAME,
    METADATA_KEY,
    OTHER_LABEL,
    OUTPUT_NAMES,
    AutoApprove,
    InputSpec,
    Labels,
    ModelMetadata,
    OodGate,
    Temperature,
    ThresholdCertificate,
)
from claims_api.inference.model import Classifier
from training.calibrate import (
    certificate,
    choose_confidence_floor,
    choose_threshold,
    fit_temperature,
    operating_point,
    softmax,
)
from training.common import load_run_data, to_tensor_batch
from training.cross_source import HeldOutScores, choose_cross_source_threshold, combine
from training.evaluate import compute_metrics, headline, score_items
from training.model import ExportModel, gate_from_state
from training.train import load_checkpoint

OPSET = 17


def export_onnx(model: ExportModel, size: int, path: Path, metadata: ModelMetadata) -> Path:
    model.eval()
    dummy = torch.zeros(2, 3, size, size)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            model,
            (dummy,),
            str(raw),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={INPUT_NAME: {0: "N"}, **{name: {0: "N"} for name in OUTPUT_NAMES}},
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
        proto = onnx.load(str(raw))
    write_metadata(proto, metadata)
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return path


def write_metadata(proto: onnx.ModelProto, metadata: ModelMetadata) -> None:
    for prop in list(proto.metadata_props):
        if prop.key == METADATA_KEY:
            proto.metadata_props.remove(prop)
    onnx.helper.set_model_props(proto, {METADATA_KEY: metadata.to_json()})


def replace_metadata(path: Path, metadata: ModelMetadata) -> None:
    proto = onnx.load(str(path))
    write_metadata(proto, metadata)
    onnx.save(proto, str(path))


@torch.no_grad()
def parity(model: ExportModel, classifier: Classifier, images, batch_size: int = 16) -> dict:
    """Max abs difference torch vs onnxruntime per output, on the service's own inputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(classifier.path), providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    for start in range(0, len(images), batch_size):
        x = np.stack([classifier.prepare(im) for im in images[start : start + batch_size]])
        ours = [t.numpy() for t in model(torch.from_numpy(x))]
        theirs = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        for name, a, b in zip(OUTPUT_NAMES, ours, theirs, strict=False):
            worst[name] = max(worst[name], float(np.abs(a - b).max()))
    return worst


@dataclass(frozen=True)
class Calibration:
    """The operating point of one exported graph, chosen on validation (and, when given, on
    out-of-source scores of leave-one-source-out fold models)."""

    temperature: Temperature
    produce_confidence_min: float
    ood_threshold: float
    threshold: float
    threshold_info: dict
    confidence_floor_check: dict
    n_val: int
    n_val_rotten: int


def calibrate(
    model_path: Path,
    val: list,
    *,
    target: float = 0.99,
    ood_tpr: float = 0.95,
    cross_source: HeldOutScores | None = None,
) -> Calibration:
    """Score validation through the graph's raw outputs (whatever calibration its metadata
    holds) and choose temperatures, OOD threshold, confidence floor and threshold."""
    s = score_items(Classifier(model_path), val)
    labels_n = s["produce_logits"].shape[1]
    real = s["rotten"] >= 0
    if not real.any():
        raise ValueError("the validation split has no produce photos: nothing to calibrate on")
    t_cond = fit_temperature(s["condition_logits"][real], s["rotten"][real])
    t_prod = fit_temperature(s["produce_logits"], s["produce_true"])
    ood_threshold = float(np.quantile(s["ood"][real], ood_tpr))
    probs = softmax(s["produce_logits"], t_prod)
    conf_min, conf_info = choose_confidence_floor(probs, s["produce_true"], labels_n - 1)
    p_rotten = softmax(s["condition_logits"], t_cond)[:, 1]
    pred = probs.argmax(1)
    eligible = (s["ood"] <= ood_threshold) & (pred != labels_n - 1) & (probs.max(1) >= conf_min)
    val_threshold, val_info = choose_threshold(p_rotten, s["rotten"], eligible, target)
    cross = (
        choose_cross_source_threshold(cross_source, target) if cross_source is not None else None
    )
    threshold, info = combine(val_threshold, val_info, cross)
    info |= operating_point(p_rotten, s["rotten"], eligible, threshold)  # val, at the choice
    return Calibration(
        Temperature(produce=t_prod, condition=t_cond),
        conf_min,
        ood_threshold,
        threshold,
        info,
        conf_info,
        len(val),
        int((s["rotten"] == 1).sum()),
    )


def _certificate(cal: Calibration, target: float) -> ThresholdCertificate:
    cross = cal.threshold_info.get("cross_source")
    rule = (
        "lowest threshold >= 0.5 whose validation precision is >= target there and at "
        "every higher candidate; gates applied (OOD, produce confident and not other); "
        "temperature-scaled"
    )
    if cross:
        rule += (
            "; then the same rule on the pooled out-of-source scores of the "
            f"leave-one-source-out fold models ({', '.join(cross['sources'])}; their own "
            "gates, unknown produce kinds included), and the stricter of the two"
        )
    # the headline precision/recall stay the validation figures at the chosen threshold
    return certificate(
        cal.threshold_info,
        target,
        "val+cross_source" if cross else "val",
        rule=rule,
        n_val=cal.n_val,
        n_val_rotten=cal.n_val_rotten,
        confidence_floor_check=cal.confidence_floor_check,
    )


def apply_calibration(
    meta: ModelMetadata, cal: Calibration, target: float, ood_tpr: float
) -> ModelMetadata:
    ood_rule = {"threshold_rule": f"{ood_tpr:.0%} of validation produce photos in distribution"}
    return meta.model_copy(
        update={
            "temperature": cal.temperature,
            "auto_approve": AutoApprove(
                threshold=cal.threshold,
                produce_confidence_min=cal.produce_confidence_min,
                certificate=_certificate(cal, target),
            ),
            "ood": meta.ood.model_copy(
                update={"threshold": cal.ood_threshold, "details": meta.ood.details | ood_rule}
            ),
        }
    )


def calibrate_and_export(
    checkpoint: Path,
    out: Path,
    *,
    version: str,
    target: float = 0.99,
    ood_tpr: float = 0.95,
    training_command: str = "",
    dataset_dir: Path | None = None,
    cross_source: HeldOutScores | None = None,
) -> tuple[ModelMetadata, dict]:
    net, ckpt = load_checkpoint(checkpoint)
    labels = ckpt["labels"]
    spec = InputSpec(**ckpt["input"])
    gate = gate_from_state(ckpt["gate"])
    model = ExportModel(net, gate).eval()
    root = dataset_dir or Path(ckpt["dataset_dir"])
    data = load_run_data(
        root,
        exclude_sources=ckpt["exclude_sources"],
        others=ckpt["others"],
        seed=ckpt["seed"],
        limit=ckpt["args"].get("limit"),
    )

    # Step 1: export with neutral calibration, then calibrate on the graph's own outputs.
    draft = ModelMetadata(
        model_version=version,
        input=spec,
        labels=Labels(produce=labels, condition=["fresh", "rotten"]),
        auto_approve=AutoApprove(threshold=0.5, produce_confidence_min=0.0),
        ood=OodGate(method=ckpt["gate_info"]["method"], threshold=1e9, details=ckpt["gate_info"]),
        data_fingerprint=ckpt["fingerprint"],
        created_at=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        training_command=training_command or ckpt.get("command", ""),
    )
    export_onnx(model, spec.size, out, draft)
    val, test = data.splits["val"], data.splits["test"]
    cal = calibrate(out, val, target=target, ood_tpr=ood_tpr, cross_source=cross_source)
    meta = apply_calibration(draft, cal, target, ood_tpr)
    replace_metadata(out, meta)

    # Step 2: test metrics through the final model, then parity on real photos.
    classifier = Classifier(out)
    test_metrics = compute_metrics(score_items(classifier, test), labels)
    photos = [it.image for it in val + test if it.produce != OTHER_LABEL][:96]
    diffs = parity(model, classifier, photos)
    metrics = {
        "test": headline(test_metrics),
        "val_threshold_choice": cal.threshold_info,
        "onnx_parity_max_abs_diff": diffs,
        "onnx_parity_photos": len(photos),
        "train_seconds": ckpt.get("train_seconds"),
        "others": ckpt["others"],
        "seed": ckpt["seed"],
        "history": ckpt.get("history", []),
    }
    meta = meta.model_copy(update={"metrics": metrics})
    replace_metadata(out, meta)
    ModelMetadata.from_json(Classifier(out).metadata.to_json())  # re-validates
    # sanity: graph still matches torch after the metadata rewrite
    with torch.no_grad():
        x = to_tensor_batch(photos[:2], spec)
        ours = model(x)[0].numpy()
    import onnxruntime as ort

    theirs = ort.InferenceSession(str(out)).run(["produce_logits"], {INPUT_NAME: x.numpy()})[0]
    assert np.abs(ours - theirs).max() < 1e-3
    return meta, test_metrics


def main(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description="calibrate + export to ONNX")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--dataset-dir", type=Path, default=None)
    p.add_argument("--target-precision", type=float, default=0.99)
    p.add_argument("--ood-tpr", type=float, default=0.95)
    args = p.parse_args(argv)
    meta, _ = calibrate_and_export(
        args.checkpoint,
        args.out,
        version=args.version,
        target=args.target_precision,
        ood_tpr=args.ood_tpr,
        dataset_dir=args.dataset_dir,
    )
    print(json.dumps(json.loads(meta.to_json()) | {"metrics": meta.metrics["test"]}, indent=2))
    return meta


if __name__ == "__main__":
    main()
