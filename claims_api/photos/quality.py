"""The photo quality gate: is this photo good enough for a person or the model to judge?

Runs on the small decoded image (exposure, contrast) and on a central greyscale crop at the
resolution a reviewer sees (blur), so it costs a few milliseconds whatever the upload size.
Every problem is a machine-readable code plus a sentence from :mod:`claims_api.photos.messages`
the mini-program shows so the customer retakes the photo before submitting a claim.

Thresholds were calibrated on the 1822 real photos of the shared produce dataset (web and lab
photos, 108–512 px) and on synthetic bad phone photos; ``bench/bench_pipeline.py`` and
``tests/test_quality.py`` re-measure them. See :class:`QualityThresholds` for each number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from claims_api.photos.messages import message


@dataclass(frozen=True)
class QualityThresholds:
    # Shorter side of the ORIGINAL photo below this is "too small". The real dataset's smallest
    # photos are 108 px (web screenshots); phone photos are >= 720 px.
    min_short_side: int = 100
    # "too dark" when even the bright parts are dark: 95th percentile of luma below this.
    # Real photos: minimum 110 (dark rotten banana on black); brightness x0.3 of a white-
    # background photo gives 76.
    dark_p95_max: float = 80.0
    # "blown out" when at least this share of pixels has a channel at >= 250. Web photos on
    # white backgrounds reach 0.89, so only a photo that is almost entirely white fails.
    blown_out_clipped_fraction: float = 0.90
    # "too flat" when the luma standard deviation is below this (real minimum: 11.1).
    flat_std_min: float = 8.0
    # "too blurry" when the edge-sharpness ratio p99.5|Laplacian| / p99.5|gradient| is below
    # this (it falls as 1/blur width and does not depend on contrast; real photos: >= 0.55,
    # Gaussian blur of radius 2+ at the analysed resolution: <= 0.40) ...
    blur_ratio_min: float = 0.45
    # ... or the Laplacian variance is below this (a nearly featureless, smeared image).
    blur_laplacian_var_min: float = 1.5


DEFAULT_THRESHOLDS = QualityThresholds()


@dataclass(frozen=True)
class Problem:
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class QualityReport:
    ok: bool
    problems: list[Problem] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [problem.code for problem in self.problems]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "problems": [problem.to_dict() for problem in self.problems],
            "metrics": dict(self.metrics),
        }

    def localised(self, locale: str) -> list[Problem]:
        """The problems with their sentences in another locale (``"zh"``)."""
        return [Problem(p.code, message(p.code, locale)) for p in self.problems]


def exposure_metrics(image: Image.Image) -> dict[str, float]:
    """Luma percentiles, contrast and the share of clipped pixels of an RGB image."""
    rgb = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    luma = np.asarray(image.convert("L"), dtype=np.float32)
    low, high = np.percentile(luma, [5.0, 95.0])
    return {
        "luma_mean": float(luma.mean()),
        "luma_p05": float(low),
        "luma_p95": float(high),
        "luma_std": float(luma.std()),
        "clipped_fraction": float((rgb.max(axis=2) >= 250).mean()),
    }


def sharpness_metrics(grey: np.ndarray) -> dict[str, float]:
    """Blur measures of a 2-D greyscale array.

    ``laplacian_var`` is the classic variance of the 4-neighbour Laplacian; it depends on
    contrast and content (a smooth apple on white scores low). ``sharpness_ratio`` divides the
    strong-edge Laplacian by the strong-edge gradient: for an edge blurred to width sigma the
    gradient falls as 1/sigma and the Laplacian as 1/sigma², so the ratio measures edge width
    alone.
    """
    g = grey.astype(np.float32, copy=False)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return {"laplacian_var": 0.0, "sharpness_ratio": 0.0}
    centre = g[1:-1, 1:-1]
    up, down = g[:-2, 1:-1], g[2:, 1:-1]
    left, right = g[1:-1, :-2], g[1:-1, 2:]
    laplacian = 4.0 * centre - up - down - left - right
    gradient = np.hypot(right - left, down - up) * 0.5
    lap_strong = _upper_percentile(np.abs(laplacian), 99.5)
    grad_strong = _upper_percentile(gradient, 99.5)
    return {
        "laplacian_var": float(laplacian.var()),
        "sharpness_ratio": float(lap_strong / grad_strong) if grad_strong > 1e-3 else 0.0,
    }


def _upper_percentile(values: np.ndarray, percentile: float) -> float:
    flat = values.ravel()
    index = min(flat.size - 1, int(flat.size * percentile / 100.0))
    return float(np.partition(flat, index)[index])


def central_crop(image: Image.Image, side: int) -> Image.Image:
    """The central ``side``×``side`` region (or the whole image where it is smaller)."""
    width, height = image.size
    crop_w, crop_h = min(side, width), min(side, height)
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    if (crop_w, crop_h) == (width, height):
        return image
    return image.crop((left, top, left + crop_w, top + crop_h))


def assess_quality(
    image: Image.Image,
    *,
    original_size: tuple[int, int] | None = None,
    detail: Image.Image | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    locale: str = "en",
) -> QualityReport:
    """Check one photo.

    ``image`` is the small decoded RGB image (exposure and contrast are measured on it);
    ``original_size`` the upload's size after orientation (defaults to ``image.size``);
    ``detail`` a central crop at the resolution a reviewer sees, used for blur (defaults to
    ``image``: pass it whenever the small image was shrunk a lot, or blur is invisible).
    """
    width, height = original_size or image.size
    metrics: dict[str, float] = {"width": float(width), "height": float(height)}
    metrics.update(exposure_metrics(image))
    grey = np.asarray((detail or image).convert("L"))
    metrics.update(sharpness_metrics(grey))

    codes: list[str] = []
    if min(width, height) < thresholds.min_short_side:
        codes.append("too_small")
    if metrics["luma_p95"] < thresholds.dark_p95_max:
        codes.append("too_dark")
    if metrics["clipped_fraction"] >= thresholds.blown_out_clipped_fraction:
        codes.append("blown_out")
    if metrics["luma_std"] < thresholds.flat_std_min:
        codes.append("too_flat")
    elif (
        metrics["sharpness_ratio"] < thresholds.blur_ratio_min
        or metrics["laplacian_var"] < thresholds.blur_laplacian_var_min
    ):
        # A flat photo has no edges to judge, so blur is only reported for photos with content.
        codes.append("too_blurry")
    problems = [Problem(code, message(code, locale)) for code in codes]
    return QualityReport(ok=not problems, problems=problems, metrics=metrics)
