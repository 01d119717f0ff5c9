"""The model's class-activation grid (``scores["cam"]``, values 0..1) as a semi-transparent,
colour-mapped PNG the size of the photo, to lay over it."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# Yellow -> orange -> red where the model sees rot; no blues or greens, which would be mistaken
# for mould or unripe skin.
_STOPS = np.array([0.0, 0.6, 1.0])
_COLOURS = np.array([[255, 230, 0], [255, 140, 0], [230, 0, 0]], dtype=np.float64)
MAX_SIDE = 1024
MAX_ALPHA = 0.65
# Below this the overlay stays transparent: a faint blue wash over the whole photo would hide
# the very colours (browning, mould) a reviewer has to judge.
ALPHA_FLOOR = 0.35


class BadCam(ValueError):
    """The stored grid is not a non-empty rectangular list of numbers."""


def cam_array(cam: object) -> np.ndarray:
    try:
        grid = np.asarray(cam, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadCam("the heat map is not numeric") from exc
    if grid.ndim != 2 or grid.size == 0 or not np.isfinite(grid).all():
        raise BadCam("the heat map is not a 2-D grid")
    return np.clip(grid, 0.0, 1.0)


def _output_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, MAX_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def colourise(values: np.ndarray) -> np.ndarray:
    """H×W values in 0..1 -> H×W×4 RGBA uint8, alpha rising with the value."""
    rgb = np.stack(
        [np.interp(values, _STOPS, _COLOURS[:, channel]) for channel in range(3)], axis=-1
    )
    strength = np.clip((values - ALPHA_FLOOR) / (1.0 - ALPHA_FLOOR), 0.0, 1.0)
    alpha = (strength * MAX_ALPHA * 255.0)[..., None]
    return np.concatenate([rgb, alpha], axis=-1).round().astype(np.uint8)


def heatmap_png(cam: object, width: int, height: int) -> bytes:
    grid = cam_array(cam)
    size = _output_size(width, height)
    small = Image.fromarray((grid * 255.0).round().astype(np.uint8), mode="L")
    upsampled = np.asarray(small.resize(size, Image.Resampling.BICUBIC), dtype=np.float64) / 255.0
    image = Image.fromarray(colourise(np.clip(upsampled, 0.0, 1.0)), mode="RGBA")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
