"""Certify the auto-approve threshold per produce kind (Learn-then-Test, fixed sequence).

For each produce kind, candidate thresholds on ``p_rotten`` are tested in a fixed order from
strict to loose. At each threshold the photos of that kind the model would auto-approve are
the approvals; a fresh photo among them is an error (paying for produce that was fine). The
hypothesis "precision < target" is rejected when the exact one-sided Clopper–Pearson upper
bound on the error rate, at confidence 1 − δ, is at most 1 − target. Testing stops at the
first threshold that fails; the last one that passed is certified. Because the order is
fixed before the data is seen, the certified threshold has precision ≥ target with
probability ≥ 1 − δ without a multiplicity correction (Angelopoulos et al., *Learn then
Test*, 2021).

Too few labelled approvals can never pass: with no error at all, 99% at 95% needs 299
approvals (298 give an upper bound of 1.0002%), with one error 473. A strict threshold that
approves few photos therefore ends the sequence early; that is the price of a valid
guarantee, and the report says how many approvals each threshold had.

    python -m training.certify models/<file>.onnx --manifest <dataset or export> \
        [--manifest …] [--splits val test] --out models/<file>-certified.onnx

scores the held-out photos exactly as the service does, prints the per-kind table and writes
a copy of the model whose metadata carries the certificates (``certified`` mode reads them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from claims_api.inference.metadata import KindCertificate
from claims_api.retraining.bounds import precision_lower_bound

DEFAULT_TARGET = 0.99
DEFAULT_DELTA = 0.05
# Strict to loose: the order is part of the procedure and must not depend on the data.
DEFAULT_THRESHOLDS = tuple(round(0.999 - 0.001 * i, 3) for i in range(10)) + tuple(
    round(0.98 - 0.01 * i, 2) for i in range(49)
)


@dataclass(frozen=True)
class Labelled:
    """One held-out labelled photo: its kind, the model's ``p_rotten``, whether a person (or
    the dataset) says it is rotten, and whether the rest of the gate (OOD, produce match,
    quality) would let it through at all."""

    kind: str
    p_rotten: float
    rotten: bool
    sample_id: str = ""
    gate_passes: bool = True


@dataclass(frozen=True)
class Step:
    """One tested threshold: ``n`` approvals, ``errors`` of them fresh, the precision's
    lower confidence bound, and whether the hypothesis "precision < target" was rejected."""

    threshold: float
    n: int
    errors: int
    lower_bound: float
    passed: bool


@dataclass(frozen=True)
class KindReport:
    kind: str
    steps: tuple[Step, ...]
    certificate: KindCertificate | None

    @property
    def reason(self) -> str:
        if self.certificate is not None:
            return (
                f"certified at {self.certificate.threshold} "
                f"(n={self.certificate.n}, errors={self.certificate.errors})"
            )
        first = self.steps[0] if self.steps else None
        if first is None:
            return "no candidate thresholds"
        return (
            f"the strictest threshold {first.threshold} failed: n={first.n}, errors="
            f"{first.errors}, precision lower bound {first.lower_bound:.4f}"
        )


def fingerprint(samples: Iterable[Labelled]) -> str:
    """sha256 of the calibration data as used (order-independent)."""
    rows = sorted(
        (s.kind, s.sample_id, round(s.p_rotten, 6), s.rotten, s.gate_passes) for s in samples
    )
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _step(samples: Sequence[Labelled], threshold: float, target: float, delta: float) -> Step:
    approved = [s for s in samples if s.gate_passes and s.p_rotten >= threshold]
    errors = sum(not s.rotten for s in approved)
    bound = precision_lower_bound(len(approved), errors, delta)
    return Step(threshold, len(approved), errors, bound, bound >= target)


def certify_kind(
    kind: str,
    samples: Sequence[Labelled],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    target: float = DEFAULT_TARGET,
    delta: float = DEFAULT_DELTA,
    data_fingerprint: str | None = None,
) -> KindReport:
    """Fixed-sequence test of ``thresholds`` (strict to loose, as given) on ``samples`` of
    one kind; certifies the last threshold before the first failure, if any."""
    if list(thresholds) != sorted(thresholds, reverse=True):
        raise ValueError("thresholds must go from strict (high) to loose (low)")
    mine = [s for s in samples if s.kind == kind]
    steps: list[Step] = []
    for threshold in thresholds:
        step = _step(mine, threshold, target, delta)
        steps.append(step)
        if not step.passed:
            break
    passed = [s for s in steps if s.passed]
    if not passed:
        return KindReport(kind, tuple(steps), None)
    best = passed[-1]
    certificate = KindCertificate(
        kind=kind,
        threshold=best.threshold,
        n=best.n,
        errors=best.errors,
        precision_lower_bound=round(best.lower_bound, 6),
        delta=delta,
        target_precision=target,
        data_fingerprint=data_fingerprint or fingerprint(mine),
    )
    return KindReport(kind, tuple(steps), certificate)


def certify(
    samples: Sequence[Labelled],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    target: float = DEFAULT_TARGET,
    delta: float = DEFAULT_DELTA,
) -> dict[str, KindReport]:
    """One report per kind present in ``samples``; the fingerprint covers all the data."""
    print_ = fingerprint(samples)
    kinds = sorted({s.kind for s in samples})
    return {k: certify_kind(k, samples, thresholds, target, delta, print_) for k in kinds}


def certificates(reports: dict[str, KindReport]) -> dict[str, KindCertificate]:
    """The certified kinds only, as the model metadata stores them."""
    return {k: r.certificate for k, r in reports.items() if r.certificate is not None}


# --- command line: certify a model on held-out labelled photos -----------------------------


def labelled_from_manifests(
    classifier: Any, manifests: Sequence[Path], splits: Sequence[str]
) -> list[Labelled]:
    """Scores every photo of ``splits`` exactly as the service does (same decoding, quality
    check and gate). ``gate_passes``: nothing but the rotten threshold keeps it from
    auto-approval for its own kind."""
    from claims_api.config import Settings
    from claims_api.photos.imaging import ImageLimits, PhotoRejected, process_upload
    from claims_api.rules.gate import photo_gate
    from data.manifest import read_manifest, select

    settings = Settings()
    limits = ImageLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
        stored_max_side=settings.stored_photo_max_side,
    )
    samples = []
    for root in manifests:
        for record in select(read_manifest(root), splits=splits):
            try:
                processed = process_upload((Path(root) / record.image).read_bytes(), limits)
            except PhotoRejected:
                continue  # the service would refuse the upload: never auto-approved
            scores = classifier.score(processed.small_image)
            quality = [p.code for p in processed.quality.problems]
            codes = set(photo_gate(scores, record.produce, quality).codes)
            samples.append(
                Labelled(
                    kind=record.produce,
                    p_rotten=scores.p_rotten,
                    rotten=record.condition == "rotten",
                    sample_id=f"{Path(root).name}/{record.image}",
                    gate_passes=not (codes - {"model_not_confident"}),
                )
            )
    return samples


def write_certificates(model: Path, out: Path, certs: dict[str, KindCertificate]) -> None:
    """A copy of ``model`` whose metadata carries ``certs`` (the graph is unchanged)."""
    import onnx

    from claims_api.inference.metadata import METADATA_KEY
    from claims_api.inference.model import Classifier

    metadata = Classifier(model).metadata.model_copy(update={"certificates": certs})
    metadata = type(metadata).model_validate(metadata.model_dump())  # re-checks the kinds
    proto = onnx.load(str(model))
    for prop in list(proto.metadata_props):
        if prop.key == METADATA_KEY:
            proto.metadata_props.remove(prop)
    onnx.helper.set_model_props(proto, {METADATA_KEY: metadata.to_json()})
    onnx.save(proto, str(out))


def _table(reports: dict[str, KindReport]) -> str:
    lines = [
        "kind | certified threshold | n | errors | precision ≥ | why",
        "---|---|---|---|---|---",
    ]
    for kind, report in reports.items():
        cert = report.certificate
        if cert:
            lines.append(
                f"{kind} | {cert.threshold} | {cert.n} | {cert.errors} | "
                f"{cert.precision_lower_bound:.4f} | {report.reason}"
            )
        else:
            lines.append(f"{kind} | — | | | | {report.reason}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, KindReport]:
    import argparse

    from claims_api.inference.model import Classifier

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument(
        "--manifest",
        type=Path,
        action="append",
        required=True,
        help="a folder with manifest.csv (a dataset or a `freshclaim dataset export`); repeat",
    )
    parser.add_argument(
        "--splits",
        nargs="+",
        default=["val", "test"],
        help="held-out splits to certify on (never the training split)",
    )
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=DEFAULT_THRESHOLDS,
        help="candidate thresholds, strict (high) to loose (low)",
    )
    parser.add_argument("--target", type=float, default=DEFAULT_TARGET)
    parser.add_argument("--delta", type=float, default=DEFAULT_DELTA)
    parser.add_argument("--out", type=Path, help="write a copy of the model with certificates")
    args = parser.parse_args(argv)

    samples = labelled_from_manifests(Classifier(args.model), args.manifest, args.splits)
    reports = certify(samples, args.thresholds, args.target, args.delta)
    print(_table(reports))
    if args.out:
        write_certificates(args.model, args.out, certificates(reports))
        print(f"wrote {args.out} with {len(certificates(reports))} certified kind(s)")
    return reports


if __name__ == "__main__":
    main()
