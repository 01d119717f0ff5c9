"""Loads an ONNX produce classifier and scores photos with onnxruntime alone."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from claims_api.inference.metadata import (
    INPUT_NAME,
    METADATA_KEY,
    OUTPUT_NAMES,
    ModelMetadata,
)
from claims_api.inference.preprocess import to_model_input


class ModelLoadError(RuntimeError):
    """The file is not a FreshClaim model (missing metadata, wrong inputs or outputs)."""


@dataclass(frozen=True)
class PhotoScores:
    """What the model says about one photo; stored with the photo so a claim only reads it.
    What that means for auto-approval is the rules' call (``claims_api.rules.photo_gate``)."""

    model_version: str
    threshold_version: str
    produce: str
    produce_confidence: float
    produce_probs: dict[str, float]
    p_rotten: float
    ood_score: float
    ood_threshold: float
    auto_approve_threshold: float
    produce_confidence_min: float
    cam: list[list[float]] = field(repr=False)
    # kind -> certificate (``KindCertificate``'s fields) from the model that scored the photo
    certificates: dict[str, dict] = field(default_factory=dict, repr=False)

    @property
    def in_distribution(self) -> bool:
        return self.ood_score <= self.ood_threshold

    def to_dict(self) -> dict:
        return {
            "model_version": self.model_version,
            "threshold_version": self.threshold_version,
            "produce": self.produce,
            "produce_confidence": self.produce_confidence,
            "produce_probs": self.produce_probs,
            "p_rotten": self.p_rotten,
            "ood_score": self.ood_score,
            "ood_threshold": self.ood_threshold,
            "in_distribution": self.in_distribution,
            "auto_approve_threshold": self.auto_approve_threshold,
            "produce_confidence_min": self.produce_confidence_min,
            "cam": self.cam,
            **({"certificates": self.certificates} if self.certificates else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> PhotoScores:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def _softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    scaled = logits.astype(np.float64) / temperature
    scaled -= scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def _normalise_cam(cam: np.ndarray) -> list[list[float]]:
    """Scale a raw activation map to 0..1 (only where the model leans to "rotten")."""
    positive = np.clip(cam, 0.0, None)
    peak = float(positive.max())
    scaled = positive / peak if peak > 0 else positive
    return np.round(scaled, 3).tolist()


class Classifier:
    """One onnxruntime session, created once and shared by every request thread
    (``InferenceSession.run`` is thread-safe)."""

    def __init__(self, path: Path, *, intra_op_threads: int = 1) -> None:
        self.path = Path(path)
        data = self.path.read_bytes()
        self.sha256 = hashlib.sha256(data).hexdigest()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(f"{path}: not a loadable ONNX model: {exc}") from exc
        self.metadata = self._read_metadata()
        self._check_io()

    def _read_metadata(self) -> ModelMetadata:
        props = self._session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in props:
            raise ModelLoadError(f"{self.path}: no {METADATA_KEY!r} metadata in the model")
        try:
            return ModelMetadata.from_json(props[METADATA_KEY])
        except ValueError as exc:
            raise ModelLoadError(f"{self.path}: invalid {METADATA_KEY!r} metadata: {exc}") from exc

    def _check_io(self) -> None:
        inputs = [i.name for i in self._session.get_inputs()]
        outputs = {o.name for o in self._session.get_outputs()}
        if inputs != [INPUT_NAME] or not set(OUTPUT_NAMES) <= outputs:
            raise ModelLoadError(
                f"{self.path}: expected input {INPUT_NAME!r} and outputs {list(OUTPUT_NAMES)}, "
                f"found {inputs} and {sorted(outputs)}"
            )

    @property
    def version(self) -> str:
        return self.metadata.model_version

    def prepare(self, image: Image.Image) -> np.ndarray:
        return to_model_input(image, self.metadata.input)

    def score_batch(self, batch: np.ndarray) -> list[PhotoScores]:
        produce_logits, condition_logits, ood, cam = self._session.run(
            list(OUTPUT_NAMES), {INPUT_NAME: batch.astype(np.float32, copy=False)}
        )
        return [
            self._to_scores(produce_logits[i], condition_logits[i], float(ood[i]), cam[i])
            for i in range(batch.shape[0])
        ]

    def score(self, image: Image.Image) -> PhotoScores:
        return self.score_batch(self.prepare(image)[None])[0]

    def _to_scores(
        self, produce_logits: np.ndarray, condition_logits: np.ndarray, ood: float, cam: np.ndarray
    ) -> PhotoScores:
        meta = self.metadata
        produce_probs = _softmax(produce_logits, meta.temperature.produce)
        condition_probs = _softmax(condition_logits, meta.temperature.condition)
        best = int(produce_probs.argmax())
        return PhotoScores(
            model_version=meta.model_version,
            threshold_version=meta.threshold_version,
            produce=meta.labels.produce[best],
            produce_confidence=round(float(produce_probs[best]), 6),
            produce_probs={
                label: round(float(p), 6)
                for label, p in zip(meta.labels.produce, produce_probs, strict=True)
            },
            p_rotten=round(float(condition_probs[1]), 6),
            ood_score=round(ood, 6),
            ood_threshold=meta.ood.threshold,
            auto_approve_threshold=meta.auto_approve.threshold,
            produce_confidence_min=meta.auto_approve.produce_confidence_min,
            cam=_normalise_cam(cam),
            certificates={k: c.summary() for k, c in meta.certificates.items()},
        )
