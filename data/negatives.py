"""Generated "not produce" photos: the ``other`` class, and clearly foreign images for testing
the out-of-distribution gate.

``TRAIN_KINDS`` make the ``other`` training/validation/test images (receipts, packaging, empty
tables and counters, hands, kitchen clutter). ``FOREIGN_KINDS`` are never trained on: they
test that the gate and the ``other`` class send unfamiliar photos to a person.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from data.augment import make_background
from data.synthetic import make_fruit, make_not_produce

TRAIN_KINDS = ("receipt", "packaging", "surface", "hand", "clutter")
FOREIGN_KINDS = ("scene", "colour_noise", "stripes", "cartoon_fruit", "document")


def _receipt(rng, size):
    img = make_not_produce(size=(size, size), seed=int(rng.integers(0, 2**31)))
    return img.rotate(
        float(rng.uniform(-30, 30)), fillcolor=tuple(int(c) for c in make_background(rng, 4)[0, 0])
    )


def _packaging(rng, size):
    canvas = Image.fromarray(make_background(rng, size).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = rng.integers(0, size // 2, size=2)
        x1, y1 = x0 + rng.integers(size // 4, size), y0 + rng.integers(size // 4, size)
        colour = tuple(int(c) for c in rng.integers(0, 255, size=3))
        draw.rectangle((int(x0), int(y0), int(x1), int(y1)), fill=colour)
        for row in range(int(y0) + 8, int(y1) - 8, int(rng.integers(10, 24))):
            length = int(rng.integers(10, max(11, int(x1 - x0) - 10)))
            ink = tuple(int(c) for c in rng.integers(0, 255, size=3))
            draw.rectangle((int(x0) + 6, row, int(x0) + 6 + length, row + 4), fill=ink)
    return canvas


def _surface(rng, size):
    return Image.fromarray(make_background(rng, size).astype(np.uint8))


def _hand(rng, size):
    canvas = Image.fromarray(make_background(rng, size).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    skin = tuple(int(c) for c in rng.uniform([150, 100, 80], [240, 200, 170]))
    cx, cy = rng.uniform(0.3, 0.7, size=2) * size
    r = size * rng.uniform(0.15, 0.25)
    draw.ellipse((cx - r, cy - r * 0.8, cx + r, cy + r * 1.2), fill=skin)
    angle0 = rng.uniform(0, 2 * np.pi)
    for k in range(5):
        a = angle0 + (k - 2) * 0.35
        fx, fy = cx + np.cos(a) * r * 1.6, cy + np.sin(a) * r * 1.6
        draw.line((cx, cy, fx, fy), fill=skin, width=int(r * 0.35))
    return canvas.filter(ImageFilter.GaussianBlur(1.0))


def _clutter(rng, size):
    canvas = Image.fromarray(make_background(rng, size).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(4, 12))):
        colour = tuple(int(c) for c in rng.integers(0, 255, size=3))
        x0, y0 = (int(v) for v in rng.integers(0, size, size=2))
        w, h = (int(v) for v in rng.integers(size // 12, size // 3, size=2))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        elif shape == 1:
            draw.line((x0, y0, x0 + w, y0 + h), fill=colour, width=int(rng.integers(3, 12)))
        else:
            draw.polygon([(x0, y0), (x0 + w, y0), (x0 + w // 2, y0 + h)], fill=colour)
    return canvas.filter(ImageFilter.GaussianBlur(0.8))


def _scene(rng, size):
    """A generated 'room' scene: sky/wall gradient, floor, boxes and poles."""
    yy = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
    top, bottom = rng.uniform(0, 255, size=(2, 3))
    pixels = top * (1 - yy) + bottom * yy + np.zeros((size, size, 3), np.float32)
    canvas = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    horizon = int(size * rng.uniform(0.4, 0.7))
    draw.rectangle((0, horizon, size, size), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    for _ in range(int(rng.integers(3, 8))):
        x0 = int(rng.integers(0, size))
        w, h = int(rng.integers(10, size // 3)), int(rng.integers(20, size // 2))
        draw.rectangle(
            (x0, horizon - h, x0 + w, horizon + 10),
            fill=tuple(int(c) for c in rng.integers(0, 255, 3)),
        )
    return canvas


def _colour_noise(rng, size):
    cells = int(rng.integers(size // 16, size // 2))
    small = rng.integers(0, 255, size=(cells, cells, 3)).astype(np.uint8)
    return Image.fromarray(small).resize((size, size), Image.Resampling.NEAREST)


def _stripes(rng, size):
    xx = np.arange(size, dtype=np.float32)[None, :, None]
    yy = np.arange(size, dtype=np.float32)[:, None, None]
    a = rng.uniform(0, np.pi)
    period = rng.uniform(6, 40)
    wave = 0.5 + 0.5 * np.sign(np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / period))
    c0, c1 = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    return Image.fromarray((c0 * wave + c1 * (1 - wave)).astype(np.uint8))


def _cartoon_fruit(rng, size):
    from data.synthetic import PRODUCE_COLOURS

    kind = list(PRODUCE_COLOURS)[int(rng.integers(0, len(PRODUCE_COLOURS)))]
    return make_fruit(
        kind, rotten=bool(rng.integers(0, 2)), size=(size, size), seed=int(rng.integers(0, 2**31))
    )


def _document(rng, size):
    return make_not_produce(size=(size, size), seed=int(rng.integers(0, 2**31)))


_MAKERS = {
    "receipt": _receipt,
    "packaging": _packaging,
    "surface": _surface,
    "hand": _hand,
    "clutter": _clutter,
    "scene": _scene,
    "colour_noise": _colour_noise,
    "stripes": _stripes,
    "cartoon_fruit": _cartoon_fruit,
    "document": _document,
}


def make_other(kind: str, seed: int, size: int = 224) -> Image.Image:
    rng = np.random.default_rng([seed, sum(map(ord, kind))])
    return _MAKERS[kind](rng, size).convert("RGB")


def other_split(index: int) -> str:
    """Same 80/10/10 proportions as the manifest: deterministic by index."""
    return {8: "val", 9: "test"}.get(index % 10, "train")


def make_others(
    count: int, split: str, seed: int = 0, size: int = 224, kinds: tuple[str, ...] = TRAIN_KINDS
) -> list[tuple[str, Image.Image]]:
    """The ``other`` images of one split: ``(kind, image)`` pairs, reproducible by seed."""
    out = []
    for i in range(count):
        if other_split(i) != split:
            continue
        # train: index i -> kind i % n; val/test (every 10th index) cycle through the kinds
        # by i // 10 so that every split holds every kind
        kind = kinds[i % len(kinds)] if split == "train" else kinds[(i // 10) % len(kinds)]
        out.append((kind, make_other(kind, seed * 100_003 + i, size)))
    return out
