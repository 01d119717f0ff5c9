"""Turns a decoded photo into the model's input tensor: the one path training evaluation,
``freshclaim predict`` and the service all use."""

from __future__ import annotations

import numpy as np
from PIL import Image

from claims_api.inference.metadata import InputSpec


def to_model_input(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """Return a ``[3, S, S]`` float32 array for an RGB image of any size."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (spec.size, spec.size):
        # reducing_gap lets Pillow shrink big images in two cheap steps with no visible loss.
        image = image.resize((spec.size, spec.size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    pixels = np.asarray(image, dtype=np.float32) * (1.0 / 255.0)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    normalised = (pixels - mean) / std
    return np.ascontiguousarray(normalised.transpose(2, 0, 1))
