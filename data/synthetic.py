"""Procedural fruit-like photos for fast tests: a shaded, textured blob of a produce colour on
a textured background, optionally with brown rot spots. Never a stand-in for real data in a
reported metric."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PRODUCE_COLOURS: dict[str, tuple[int, int, int]] = {
    "apple": (190, 30, 40),
    "banana": (230, 200, 50),
    "orange": (240, 140, 30),
    "tomato": (210, 50, 30),
    "strawberry": (200, 20, 60),
    "grape": (90, 40, 110),
    "guava": (150, 190, 80),
    "jujube": (160, 60, 40),
    "pomegranate": (170, 30, 50),
}
ROT_COLOUR = (70, 45, 25)


def make_fruit(
    produce: str = "apple",
    *,
    rotten: bool = False,
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
    rot_fraction: float = 0.35,
) -> Image.Image:
    """An RGB photo of one fruit-like shape; ``rotten`` adds dark spots over ``rot_fraction``
    of its radius."""
    rng = np.random.default_rng(seed)
    width, height = size
    background = rng.integers(150, 230, size=3)
    canvas = np.empty((height, width, 3), dtype=np.float32)
    canvas[:] = background
    canvas += rng.normal(0, 12, size=(height, width, 1))
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))

    draw = ImageDraw.Draw(image)
    colour = np.array(PRODUCE_COLOURS.get(produce, (128, 128, 128)))
    cx, cy = width * rng.uniform(0.4, 0.6), height * rng.uniform(0.4, 0.6)
    radius = min(width, height) * rng.uniform(0.28, 0.38)
    aspect = 2.2 if produce == "banana" else 1.0
    box = (cx - radius * aspect, cy - radius, cx + radius * aspect, cy + radius)
    draw.ellipse(box, fill=tuple(int(c) for c in colour))
    if rotten:
        for _ in range(int(rng.integers(3, 7))):
            r = radius * rot_fraction * rng.uniform(0.5, 1.0)
            sx = cx + rng.uniform(-0.5, 0.5) * radius * aspect
            sy = cy + rng.uniform(-0.5, 0.5) * radius
            draw.ellipse((sx - r, sy - r, sx + r, sy + r), fill=ROT_COLOUR)

    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(1.2)), dtype=np.float32)
    pixels += rng.normal(0, 6, size=pixels.shape)  # sensor noise: real photos are never flat
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_not_produce(size: tuple[int, int] = (640, 480), seed: int = 0) -> Image.Image:
    """A grey, receipt-like scene with text-like stripes and no produce."""
    rng = np.random.default_rng(seed)
    width, height = size
    image = Image.new("RGB", size, (235, 235, 230))
    draw = ImageDraw.Draw(image)
    for row in range(20, height - 20, 18):
        length = int(rng.integers(width // 4, width - 40))
        draw.rectangle((20, row, 20 + length, row + 6), fill=(40, 40, 40))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 5, size=(height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def synthetic_manifest(root: Path, per_cell: int = 6, source_run: int = 1) -> Path:
    """A manifest-format dataset of procedural fruit (the loader serves any manifest). The
    source alternates every ``source_run`` photos of a cell."""
    rows = []
    for produce in ("apple", "banana"):
        for rotten in (0, 1):
            for i in range(per_cell):
                split = ["train", "train", "train", "train", "val", "test"][i % 6]
                name = f"images/{produce}_{rotten}_{i}.jpg"
                path = root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                seed = 100 * len(produce) + 10 * rotten + i
                make_fruit(produce, rotten=bool(rotten), size=(96, 80), seed=seed).save(path)
                rows.append(
                    {
                        "image": name,
                        "produce": produce,
                        "condition": ["fresh", "rotten"][rotten],
                        "split": split,
                        "source_repo": f"synthetic/{(i // source_run) % 2}",
                        "source_path": name,
                        "width": 96,
                        "height": 80,
                    }
                )
    with open(root / "manifest.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root
