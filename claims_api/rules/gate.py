"""The per-photo gate: what one photo, on its own, says about auto-approval.

One function serves the three places that judge a photo: the upload's instant "retake"
answer, the claim decision and ``freshclaim predict``. They cannot disagree, because none of
them judges a photo any other way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from claims_api.inference.metadata import OTHER_LABEL
from claims_api.inference.model import PhotoScores

# The gate's codes in the order a reviewer reads them; each is a reason code of the claim.
GATE_CODES = (
    "photo_quality",
    "model_unavailable",
    "model_not_confident",
    "kind_not_certified",
    "out_of_distribution",
    "not_produce",
    "produce_unknown_to_model",
    "produce_mismatch",
    "produce_uncertain",
)

# Gate codes the customer can act on at upload by taking another photo, with the code the
# upload answer uses for each (``wrong_item`` predates the claim's ``produce_mismatch``).
RETAKE_CODES = {"not_produce": "not_produce", "produce_mismatch": "wrong_item"}


Mode = Literal["certified", "validated"]
UNCERTIFIED = "validated, uncertified"


@dataclass(frozen=True)
class Certification:
    """Which operating point judged a photo of ``kind``. ``validated``: the model's global
    threshold, chosen on validation data and not certified (the demo's mode). ``certified``:
    the kind's certificate from the model metadata, or auto-approval off without one.
    ``certificate``: the model's certificate for the kind, whether or not the mode uses it."""

    mode: Mode
    kind: str | None
    threshold: float
    certificate: dict[str, Any] | None = None

    @property
    def used_certificate(self) -> dict[str, Any] | None:
        return self.certificate if self.mode == "certified" else None

    @property
    def status(self) -> str:
        if self.mode == "validated":
            return UNCERTIFIED
        return "certified" if self.certificate else "not_certified"

    @property
    def auto_approval_allowed(self) -> bool:
        return self.mode == "validated" or self.certificate is not None

    def to_record(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "kind": self.kind,
            "status": self.status,
            "threshold": self.threshold,
            "certificate": self.used_certificate,
        }


def certification(scores: PhotoScores, kind: str | None, mode: Mode) -> Certification:
    """``kind``: the ordered produce, or what the model sees when no order line is known."""
    kind = kind or scores.produce
    certificate = scores.certificates.get(kind)
    used = certificate if mode == "certified" else None
    threshold = used["threshold"] if used else scores.auto_approve_threshold
    return Certification(mode, kind, threshold, certificate)


@dataclass(frozen=True)
class PhotoGate:
    """``codes``: the reason codes this photo raises; none means it can be auto-approved.
    ``certification``: the operating point used (None for a photo without scores)."""

    codes: tuple[str, ...]
    certification: Certification | None = field(default=None, compare=False)

    @property
    def auto_approvable(self) -> bool:
        return not self.codes


def photo_gate(
    scores: PhotoScores | None,
    ordered_produce: str | None,
    quality_problems: Sequence[str] = (),
    mode: Mode = "validated",
) -> PhotoGate:
    """``ordered_produce`` None (no order line known): the produce-match rule is not applied,
    only the model's own certainty about what it sees. ``quality_problems``: the quality
    check's problem codes (too dark, blurred, …) for this photo. ``mode``: the policy's
    ``certification_mode``; in ``certified`` mode a kind without a certificate is never
    auto-approvable and a certified kind is judged at its own threshold."""
    codes = ["photo_quality"] if quality_problems else []
    if scores is None:
        return PhotoGate((*codes, "model_unavailable"))
    cert = certification(scores, ordered_produce, mode)
    if scores.p_rotten < cert.threshold:
        codes.append("model_not_confident")
    if not cert.auto_approval_allowed:
        codes.append("kind_not_certified")
    if scores.ood_score > scores.ood_threshold:
        codes.append("out_of_distribution")
    codes.extend(_produce_codes(scores, ordered_produce))
    return PhotoGate(tuple(codes), cert)


def _produce_codes(scores: PhotoScores, ordered: str | None) -> list[str]:
    """Only a confident mismatch says "another item"; an unsure produce head just keeps the
    photo from auto-approval. A kind the model never learnt cannot be matched at all."""
    codes = ["not_produce"] if scores.produce == OTHER_LABEL else []
    if ordered is not None and ordered not in scores.produce_probs:
        codes.append("produce_unknown_to_model")
    elif not produce_confident(scores):
        if scores.produce != OTHER_LABEL:
            codes.append("produce_uncertain")
    elif ordered is not None and scores.produce != ordered:
        codes.append("produce_mismatch")
    return codes


def produce_confident(scores: PhotoScores) -> bool:
    return (
        scores.produce != OTHER_LABEL and scores.produce_confidence >= scores.produce_confidence_min
    )
