"""Real photos from the shared produce dataset, the copies a fraudster would make of them, and
JPEGs carrying EXIF facts. Tests that need them skip with a clear reason when the dataset is
absent."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageEnhance

from tests.conftest import dataset_dir


@cache
def manifest() -> tuple[dict[str, str], ...]:
    path = dataset_dir() / "manifest.csv"
    if not path.exists():
        return ()
    with path.open(newline="") as handle:
        return tuple(csv.DictReader(handle))


def require_dataset() -> Path:
    if not manifest():
        pytest.skip(f"real photo dataset not found at {dataset_dir()} (manifest.csv missing)")
    return dataset_dir()


def photos_of(produce: str, count: int, sources: tuple[str, ...] | None = None) -> list[Path]:
    """``count`` photos of one produce kind, in a fixed order (sorted by file name), from
    sources that hold one photo per original (never several shots of one item)."""
    root = require_dataset()
    rows = [
        r
        for r in manifest()
        if r["produce"] == produce and (sources is None or r["source_repo"] in sources)
    ]
    rows.sort(key=lambda r: r["image"])
    if len(rows) < count:
        pytest.skip(f"the dataset has only {len(rows)} {produce} photos, {count} needed")
    return [root / r["image"] for r in rows[:count]]


def photo_bytes(produce: str = "apple", index: int = 0) -> bytes:
    return photos_of(produce, index + 1)[index].read_bytes()


def jpeg(image: Image.Image, quality: int = 85, exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    image.convert("RGB").save(buffer, "JPEG", quality=quality, **kwargs)
    return buffer.getvalue()


def _crop(image: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    w, h = image.size
    left, top, right, bottom = box
    return image.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))


def _colour_shift(image: Image.Image) -> Image.Image:
    brighter = ImageEnhance.Brightness(image).enhance(1.1)
    return ImageEnhance.Color(brighter).enhance(1.2)


Transform = Callable[[Image.Image], bytes]

# The copies the duplicate search must find (crops: up to 15 % off a side or a corner).
TRANSFORMS: dict[str, Transform] = {
    "recompressed_q50": lambda im: jpeg(im, 50),
    "resized_half": lambda im: jpeg(im.resize((im.width // 2, im.height // 2))),
    "resized_double": lambda im: jpeg(im.resize((im.width * 2, im.height * 2))),
    "cropped_15pct_corner": lambda im: jpeg(_crop(im, (0.15, 0.15, 1.0, 1.0))),
    "cropped_centre": lambda im: jpeg(_crop(im, (0.075, 0.075, 0.925, 0.925))),
    "cropped_15pct_left": lambda im: jpeg(_crop(im, (0.15, 0.0, 1.0, 1.0))),
    "cropped_10pct_top": lambda im: jpeg(_crop(im, (0.0, 0.10, 1.0, 1.0))),
    "rotated_cropped_recompressed": lambda im: jpeg(
        _crop(im.transpose(Image.Transpose.ROTATE_90), (0.0, 0.0, 0.9, 0.9)), 60
    ),
    "rotated_90": lambda im: jpeg(im.transpose(Image.Transpose.ROTATE_90)),
    "rotated_270": lambda im: jpeg(im.transpose(Image.Transpose.ROTATE_270)),
    "flipped": lambda im: jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "colour_shifted": lambda im: jpeg(_colour_shift(im)),
}


def transformed(data: bytes, name: str) -> bytes:
    return TRANSFORMS[name](Image.open(io.BytesIO(data)).convert("RGB"))


def with_exif(
    data: bytes,
    captured: datetime | None = None,
    *,
    offset: bool = True,
    software: str | bytes | None = None,
) -> bytes:
    """Re-save a photo with Pillow's Exif API: DateTimeOriginal (local time of ``captured``),
    OffsetTimeOriginal when ``offset``, and Software."""
    exif = Image.Exif()
    if software is not None:
        exif[ExifTags.Base.Software] = software
    if captured is not None:
        ifd = exif.get_ifd(ExifTags.IFD.Exif)
        ifd[ExifTags.Base.DateTimeOriginal] = captured.strftime("%Y:%m:%d %H:%M:%S")
        if offset:
            minutes = int(captured.utcoffset().total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            ifd[ExifTags.Base.OffsetTimeOriginal] = (
                f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
            )
    return jpeg(Image.open(io.BytesIO(data)), 92, exif)
