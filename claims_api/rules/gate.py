"""The per-photo gate: what one photo, on its own, says about auto-approval.

One function serves the three places that judge a photo: the upload's instant "retake"
answer, the claim decision and ``freshclaim predict``. They cannot disagree, because none of
them judges a photo any other way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from claims_api.inference.metadata import OTHER_LABEL
from claims_api.inference.model import PhotoScores

# The gate's codes in the order a reviewer reads them; each is a reason code of the claim.
GATE_CODES = (
    "photo_quality",
    "model_unavailable",
    "model_not_confident",
    "out_of_distribution",
    "not_produce",
    "produce_unknown_to_model",
    "produce_mismatch",
    "produce_uncertain",
)

# Gate codes the customer can act on at upload by taking another photo, with the code the
# upload answer uses for each (``wrong_item`` predates the claim's ``produce_mismatch``).
RETAKE_CODES = {"not_produce": "not_produce", "produce_mismatch": "wrong_item"}


@dataclass(frozen=True)
class PhotoGate:
    """``codes``: the reason codes this photo raises; none means it can be auto-approved."""

    codes: tuple[str, ...]

    @property
    def auto_approvable(self) -> bool:
        return not self.codes


def photo_gate(
    scores: PhotoScores | None,
    ordered_produce: str | None,
    quality_problems: Sequence[str] = (),
) -> PhotoGate:
    """``ordered_produce`` None (no order line known): the produce-match rule is not applied,
    only the model's own certainty about what it sees. ``quality_problems``: the quality
    check's problem codes (too dark, blurred, …) for this photo."""
    codes = ["photo_quality"] if quality_problems else []
    if scores is None:
        return PhotoGate((*codes, "model_unavailable"))
    if scores.p_rotten < scores.auto_approve_threshold:
        codes.append("model_not_confident")
    if scores.ood_score > scores.ood_threshold:
        codes.append("out_of_distribution")
    codes.extend(_produce_codes(scores, ordered_produce))
    return PhotoGate(tuple(codes))


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
