"""The contract between a trained model and the service.

Everything the service needs to interpret a model lives in the ONNX file itself, under the
metadata key ``freshclaim`` as one JSON document validated by :class:`ModelMetadata`. The
training pipeline writes it (``training/export.py``), the service reads it; nothing here is
duplicated in code or configuration.

Graph I/O (all float32, batch axis dynamic):

* input ``image``: ``[N, 3, S, S]`` RGB, scaled to 0..1, then ``(x - mean) / std``;
  S = ``input.size``. The whole photo is resized to S×S (no crop) so damage at the edge of
  the frame is never cut away; see :mod:`claims_api.inference.preprocess`.
* output ``produce_logits``: ``[N, len(labels.produce)]`` (last label is ``other``: not produce).
* output ``condition_logits``: ``[N, 2]`` for ``labels.condition`` = ``["fresh", "rotten"]``.
* output ``ood_score``: ``[N]``, larger = less like the training photos; a photo is in
  distribution when ``ood_score <= ood.threshold``.
* output ``cam``: ``[N, h, w]`` class-activation map of "rotten" minus "fresh" on the last
  feature map (unnormalised; the service rescales it to 0..1 for the heat-map overlay).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

METADATA_KEY = "freshclaim"
OTHER_LABEL = "other"
CONDITION_LABELS = ("fresh", "rotten")
INPUT_NAME = "image"
OUTPUT_NAMES = ("produce_logits", "condition_logits", "ood_score", "cam")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    size: int = Field(ge=32, le=1024)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Literal["squash"] = "squash"


class Labels(_Strict):
    produce: list[str] = Field(min_length=2)
    condition: list[str]

    @model_validator(mode="after")
    def _check(self) -> Labels:
        if self.produce[-1] != OTHER_LABEL:
            raise ValueError(f"the last produce label must be {OTHER_LABEL!r}")
        if len(set(self.produce)) != len(self.produce):
            raise ValueError("produce labels must be unique")
        if tuple(self.condition) != CONDITION_LABELS:
            raise ValueError(f"condition labels must be {list(CONDITION_LABELS)}")
        return self


class Temperature(_Strict):
    produce: float = Field(default=1.0, gt=0)
    condition: float = Field(default=1.0, gt=0)


class ThresholdCertificate(_Strict):
    """How the auto-approve threshold was chosen, so a decision can be explained later."""

    target_precision: float
    split: str
    precision: float
    recall: float
    support: int
    extra: dict[str, Any] = Field(default_factory=dict)


class KindCertificate(_Strict):
    """A produce kind's certified auto-approve threshold (``training.certify``): on ``n``
    held-out labelled photos of the kind it would auto-approve, ``errors`` were fresh, and
    the auto-approve precision is at least ``precision_lower_bound`` (≥
    ``target_precision``) with confidence 1 − ``delta`` (exact Clopper–Pearson bound,
    thresholds tested in fixed sequence from strict to loose)."""

    kind: str = Field(min_length=1)
    threshold: float = Field(gt=0, le=1)
    n: int = Field(ge=1)
    errors: int = Field(ge=0)
    precision_lower_bound: float = Field(ge=0, le=1)
    delta: float = Field(gt=0, lt=1)
    target_precision: float = Field(gt=0, le=1)
    data_fingerprint: str = ""

    @model_validator(mode="after")
    def _check(self) -> KindCertificate:
        if self.errors > self.n:
            raise ValueError("errors cannot exceed n")
        if self.precision_lower_bound < self.target_precision:
            raise ValueError("a certificate's lower bound must reach its target precision")
        return self

    def summary(self) -> dict[str, Any]:
        return self.model_dump()


class AutoApprove(_Strict):
    threshold: float = Field(gt=0, le=1)
    produce_confidence_min: float = Field(ge=0, le=1)
    certificate: ThresholdCertificate | None = None


class OodGate(_Strict):
    method: str
    threshold: float
    details: dict[str, Any] = Field(default_factory=dict)


class ModelMetadata(_Strict):
    schema_version: Literal[1] = 1
    model_version: str = Field(min_length=1)
    input: InputSpec
    labels: Labels
    temperature: Temperature = Temperature()
    auto_approve: AutoApprove
    ood: OodGate
    data_fingerprint: str = ""
    # Per produce kind; empty for a model that was validated but never certified (the
    # shipped demo model). Only ``certified`` mode reads them.
    certificates: dict[str, KindCertificate] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""
    training_command: str = ""

    @model_validator(mode="after")
    def _certified_kinds_known(self) -> ModelMetadata:
        unknown = set(self.certificates) - set(self.labels.produce[:-1])
        if unknown:
            raise ValueError(f"certificates for kinds the model does not know: {sorted(unknown)}")
        if any(kind != cert.kind for kind, cert in self.certificates.items()):
            raise ValueError("each certificate must be filed under its own kind")
        return self

    @property
    def threshold_version(self) -> str:
        """Identifies the operating point: the same model may be re-certified with a new one."""
        return f"{self.model_version}@{self.auto_approve.threshold:.4f}"

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> ModelMetadata:
        return cls.model_validate(json.loads(text))
