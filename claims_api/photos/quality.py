"""The photo quality gate: is this photo good enough for a person or the model to judge?

Runs on the small decoded image (exposure, contrast) and on a central greyscale crop at the
resolution a reviewer sees (blur), so its cost does not grow with the upload size.
Every problem is a machine-readable code plus a sentence from :mod:`claims_api.photos.messages`
the mini-program shows so the customer retakes the photo before submitting a claim.

Thresholds were calibrated on the 1822 real photos of the shared produce dataset (web and lab
photos, 108–512 px) and on synthetic bad phone photos; ``bench/bench_pipeline.py`` and
``tests/photos/test_quality.py`` re-measure them. See :class:`QualityThresholds` for each number.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    # "too flat" when the standard deviation of the most varied colour channel is below this
    # (colour, not luma: a yellow banana on a grey table has almost no luma contrast).
    # Real photos: >= 21.
    flat_std_min: float = 8.0
    # "too blurry" when the edge steepness (strongest gradient / local contrast, ~1/edge width;
    # the sharpest of the tiles counts, so a blurred background is fine) is below a limit that
    # grows with the analysed resolution: a 2016-px reviewer copy must be sharp at pixel level,
    # a 224-px photo is judged as a whole. Linear between the two points, flat outside.
    # Real photos (108-512 px): >= 0.093; blur radius 4 on 12 MP seen at 2016 px: <= 0.18;
    # radius 4 on 1920/1080 px: <= 0.11; sharp synthetic phone photos: >= 0.23.
    blur_steepness_small: float = 0.07
    blur_steepness_large: float = 0.20
    blur_small_side: int = 400
    blur_large_side: int = 1000

    def blur_limit(self, analysed_side: int) -> float:
        span = self.blur_large_side - self.blur_small_side
        share = min(1.0, max(0.0, (analysed_side - self.blur_small_side) / span))
        return self.blur_steepness_small + share * (
            self.blur_steepness_large - self.blur_steepness_small
        )


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


def _histogram(values: np.ndarray) -> np.ndarray:
    return np.bincount(values.ravel(), minlength=256)


def _histogram_percentile(histogram: np.ndarray, percentile: float) -> float:
    """The value below which ``percentile`` % of the pixels lie (uint8 data, exact)."""
    cumulative = np.cumsum(histogram)
    rank = percentile / 100.0 * (cumulative[-1] - 1)
    return float(np.searchsorted(cumulative, rank, side="right"))


def _histogram_mean_std(histogram: np.ndarray) -> tuple[float, float]:
    levels = np.arange(histogram.size, dtype=np.float64)
    count = max(1, int(histogram.sum()))
    mean = float(histogram @ levels) / count
    variance = float(histogram @ (levels * levels)) / count - mean * mean
    return mean, float(np.sqrt(max(0.0, variance)))


def exposure_metrics(image: Image.Image) -> dict[str, float]:
    """Luma percentiles, contrast and the share of clipped pixels of an RGB image; all from
    256-bin histograms of the uint8 pixels (Pillow's own, in C) and one element-wise maximum
    over the channels (``max(axis=2)`` over the 3-element last axis is far slower)."""
    rgb_image = image if image.mode == "RGB" else image.convert("RGB")
    channels = np.asarray(rgb_image.histogram(), dtype=np.int64).reshape(3, 256)
    luma_histogram = np.asarray(rgb_image.convert("L").histogram(), dtype=np.int64)
    luma_mean, luma_std = _histogram_mean_std(luma_histogram)
    channel_stds = [_histogram_mean_std(histogram)[1] for histogram in channels]
    rgb = np.asarray(rgb_image)
    brightest = np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    return {
        "luma_mean": luma_mean,
        "luma_p05": _histogram_percentile(luma_histogram, 5.0),
        "luma_p95": _histogram_percentile(luma_histogram, 95.0),
        "luma_std": luma_std,
        "colour_std": max(channel_stds),
        "clipped_fraction": np.count_nonzero(brightest >= 250) / max(1, brightest.size),
    }


def sharpness_metrics(greys: Sequence[np.ndarray]) -> dict[str, float]:
    """Blur measures over one or more 2-D uint8 greyscale arrays (tiles of one photo).

    ``edge_steepness``: per tile, the 99.5th percentile of the gradient magnitude divided by
    the tile's contrast (99th - 1st percentile, at least 10 levels); the steepest tile wins.
    For an edge blurred to width sigma it is ~1/(2.5·sigma) whatever the contrast.
    ``laplacian_var``: the classic variance of the 4-neighbour Laplacian of the steepest
    tile (reported, not judged: it mostly measures how much texture a photo has).
    """
    steepness, laplacian_var = 0.0, 0.0
    for grey in greys:
        if grey.ndim != 2 or grey.shape[0] < 3 or grey.shape[1] < 3:
            continue
        g = grey.astype(np.float32)
        dx = g[1:-1, 2:] - g[1:-1, :-2]
        dy = g[2:, 1:-1] - g[:-2, 1:-1]
        squared = dx * dx + dy * dy  # (2·gradient)²: one square root at the end
        gradient = 0.5 * float(np.sqrt(_upper_percentile(squared, 99.5)))
        histogram = _histogram(grey) if grey.dtype == np.uint8 else None
        if histogram is not None:
            low = _histogram_percentile(histogram, 1.0)
            high = _histogram_percentile(histogram, 99.0)
        else:
            low, high = (float(v) for v in np.percentile(g, [1.0, 99.0]))
        tile_steepness = gradient / max(high - low, 10.0)
        if tile_steepness >= steepness:
            steepness = tile_steepness
            centre = g[1:-1, 1:-1]
            laplacian = 4.0 * centre - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
            laplacian_var = float(laplacian.var())
    return {"laplacian_var": laplacian_var, "edge_steepness": steepness}


def _upper_percentile(values: np.ndarray, percentile: float) -> float:
    flat = values.ravel()
    index = min(flat.size - 1, int(flat.size * percentile / 100.0))
    return float(np.partition(flat, index)[index])


_SWAPS_AXES = frozenset(
    {
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_270,
        Image.Transpose.TRANSPOSE,
        Image.Transpose.TRANSVERSE,
    }
)
_INVERSE = {
    Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
    Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
}


def turned_size(size: tuple[int, int], turn: Image.Transpose | None) -> tuple[int, int]:
    """The size of an image of ``size`` after ``transpose(turn)``."""
    return (size[1], size[0]) if turn in _SWAPS_AXES else size


def _turn_point(
    turn: Image.Transpose, x: float, y: float, size: tuple[int, int]
) -> tuple[float, float]:
    """Where the point (x, y) of an image of ``size`` (pixel-edge coordinates) lands after
    ``transpose(turn)``."""
    width, height = size
    return {
        Image.Transpose.FLIP_LEFT_RIGHT: (width - x, y),
        Image.Transpose.FLIP_TOP_BOTTOM: (x, height - y),
        Image.Transpose.ROTATE_90: (y, width - x),  # counter-clockwise
        Image.Transpose.ROTATE_180: (width - x, height - y),
        Image.Transpose.ROTATE_270: (height - y, x),  # clockwise
        Image.Transpose.TRANSPOSE: (y, x),
        Image.Transpose.TRANSVERSE: (height - y, width - x),
    }[turn]


def source_box(
    box: tuple[int, int, int, int], turn: Image.Transpose, turned: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The box of the un-turned image whose pixels, turned, are ``box`` of the turned image
    (of size ``turned``): ``image.crop(source_box(...)).transpose(turn)`` equals
    ``image.transpose(turn).crop(box)`` without turning the whole image."""
    inverse = _INVERSE.get(turn, turn)
    x0, y0 = _turn_point(inverse, box[0], box[1], turned)
    x1, y1 = _turn_point(inverse, box[2], box[3], turned)
    return (round(min(x0, x1)), round(min(y0, y1)), round(max(x0, x1)), round(max(y0, y1)))


def edge_tiles(
    full: Image.Image,
    small: Image.Image,
    *,
    count: int = 4,
    side: int = 192,
    turn: Image.Transpose | None = None,
) -> list[Image.Image]:
    """Greyscale tiles of ``full`` (the decoded image at reviewer resolution) centred on the
    ``count`` most detailed cells of ``small``: blur is judged where there are edges to judge,
    at the resolution where it shows, for the cost of ~150k pixels whatever the photo size.
    Luma only: JPEG stores colour at half resolution, so colour channels look blocky.

    ``small`` is upright; ``full`` may still need ``transpose(turn)`` to be (the EXIF
    orientation): the tiles are then placed on the upright photo, cut from ``full`` and
    turned one by one, the same pixels as cutting them from the turned image."""
    width, height = turned_size(full.size, turn)
    if width * height <= 4 * side * side:
        whole = full.convert("L")
        return [whole.transpose(turn) if turn is not None else whole]
    side = min(side, width, height)  # a long, thin photo: the tiles span its short side
    grey = np.asarray(small.convert("L"), dtype=np.float32)
    detail = np.abs(np.diff(grey, axis=0))[:, :-1] + np.abs(np.diff(grey, axis=1))[:-1, :]
    # a 6x8 grid, or as many cells as the small image has pixels across
    rows, cols = min(6, detail.shape[0]), min(8, detail.shape[1])
    if rows and cols:
        cell_h, cell_w = detail.shape[0] // rows, detail.shape[1] // cols
        cells = detail[: cell_h * rows, : cell_w * cols].reshape(rows, cell_h, cols, cell_w)
        scores = cells.mean(axis=(1, 3)).ravel()
    else:  # the small image is one pixel thin: one cell, the whole photo
        rows = cols = 1
        cell_h, cell_w = small.height, small.width
        scores = np.zeros(1)
    scale_x, scale_y = width / small.width, height / small.height
    tiles = []
    for index in np.argsort(scores)[::-1][:count]:
        row, col = divmod(int(index), cols)
        centre_x = (col + 0.5) * cell_w * scale_x
        centre_y = (row + 0.5) * cell_h * scale_y
        left = int(min(max(0, centre_x - side / 2), width - side))
        top = int(min(max(0, centre_y - side / 2), height - side))
        box = (left, top, left + side, top + side)
        if turn is None:
            tiles.append(full.crop(box).convert("L"))
        else:
            tile = full.crop(source_box(box, turn, (width, height))).convert("L")
            tiles.append(tile.transpose(turn))
    return tiles


def assess_quality(
    image: Image.Image,
    *,
    original_size: tuple[int, int] | None = None,
    detail: Image.Image | Sequence[Image.Image] | None = None,
    detail_side: int | None = None,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    locale: str = "en",
) -> QualityReport:
    """Check one photo.

    ``image`` is the small decoded RGB image (exposure and contrast are measured on it);
    ``original_size`` the upload's size after orientation (defaults to ``image.size``);
    ``detail`` greyscale tiles at the resolution a reviewer sees (:func:`edge_tiles`), used for
    blur, and ``detail_side`` the longer side of the image they were cut from; both default
    to ``image``. Pass them whenever the small image was shrunk a lot: a blur that ruins a
    12-MP photo is invisible at 320 px.
    """
    width, height = original_size or image.size
    metrics: dict[str, float] = {"width": float(width), "height": float(height)}
    metrics.update(exposure_metrics(image))
    if detail is None:
        detail, detail_side = image, max(image.size)
    metrics["analysed_side"] = float(detail_side or max(image.size))
    metrics["blur_limit"] = thresholds.blur_limit(int(metrics["analysed_side"]))
    tiles = [detail] if isinstance(detail, Image.Image) else list(detail)
    metrics.update(sharpness_metrics([np.asarray(tile.convert("L")) for tile in tiles]))

    codes: list[str] = []
    if min(width, height) < thresholds.min_short_side:
        codes.append("too_small")
    if metrics["luma_p95"] < thresholds.dark_p95_max:
        codes.append("too_dark")
    if metrics["clipped_fraction"] >= thresholds.blown_out_clipped_fraction:
        codes.append("blown_out")
    if metrics["colour_std"] < thresholds.flat_std_min:
        codes.append("too_flat")
    elif metrics["edge_steepness"] < metrics["blur_limit"]:
        # A flat photo has no edges to judge, so blur is only reported for photos with content.
        codes.append("too_blurry")
    problems = [Problem(code, message(code, locale)) for code in codes]
    return QualityReport(ok=not problems, problems=problems, metrics=metrics)
