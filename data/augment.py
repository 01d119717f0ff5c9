"""Phone-photo augmentations for the produce photos.

The developer photos are mostly single fruits on clean backgrounds; customers photograph a
fruit on a kitchen counter with a phone. :class:`PhonePhotoAugment` bridges part of that gap:
it pastes the fruit onto generated surfaces, then applies rotation, flips, crops, perspective,
colour / brightness / white-balance jitter, blur and JPEG re-compression. Its output is a PIL
image of any size: training then applies the service's own preprocessing
(:func:`claims_api.inference.preprocess.to_model_input`), so train and serve see the same
resize and normalisation.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

# ---------------------------------------------------------------- backgrounds


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in 0..1, [size, size, channels]."""
    small = (rng.random((cells, cells, channels)) * 255).astype(np.uint8)
    mode = "L" if channels == 1 else "RGB"
    img = Image.fromarray(small.squeeze(-1) if channels == 1 else small, mode)
    big = np.asarray(img.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 255
    return big.reshape(size, size, channels)


def make_background(rng: np.random.Generator, size: int = 256) -> np.ndarray:
    """A generated surface (table, counter, cloth, board...) as float32 RGB 0..255."""
    kind = int(rng.integers(0, 6))
    base = rng.uniform(30, 240, size=3).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 0:  # plain surface with sensor noise
        out = np.broadcast_to(base, (size, size, 3)).copy()
    elif kind == 1:  # wood grain
        freq = rng.uniform(8, 30)
        warp = _smooth_noise(rng, size, 6)[..., 0] * rng.uniform(0.5, 2.0)
        grain = 0.5 + 0.5 * np.sin((yy + warp) * freq * np.pi)
        wood = rng.uniform([120, 70, 30], [200, 140, 90]).astype(np.float32)
        out = wood * (0.75 + 0.25 * grain[..., None])
    elif kind == 2:  # checked tablecloth
        n = int(rng.integers(4, 12))
        check = ((xx * n).astype(int) + (yy * n).astype(int)) % 2
        other = rng.uniform(30, 240, size=3).astype(np.float32)
        out = np.where(check[..., None] == 1, base, other)
    elif kind == 3:  # marble / stone counter
        veins = _smooth_noise(rng, size, int(rng.integers(4, 16)))
        out = base * (0.7 + 0.3 * veins)
    elif kind == 4:  # gradient (window light across the counter)
        other = rng.uniform(30, 240, size=3).astype(np.float32)
        t = xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        out = base * (1 - t[..., None]) + other * t[..., None]
    else:  # coloured blotches (cloth, paper bag)
        out = _smooth_noise(rng, size, int(rng.integers(3, 8)), 3) * 200 + 30
    out = out + rng.normal(0, rng.uniform(2, 10), size=(size, size, 1))
    return np.clip(out, 0, 255).astype(np.float32)


# ---------------------------------------------------------------- foreground mask


def background_mask(pixels: np.ndarray, tolerance: float = 38.0) -> np.ndarray | None:
    """Pixels of the plain background that touch the border (float 0..1, [H, W]), or ``None``
    when the photo has no plain background to swap. Only border-connected pixels count, so a
    white mould spot inside the fruit is never treated as background."""
    import torch
    import torch.nn.functional as F

    h, w, _ = pixels.shape
    border = np.concatenate(
        [
            pixels[:3].reshape(-1, 3),
            pixels[-3:].reshape(-1, 3),
            pixels[:, :3].reshape(-1, 3),
            pixels[:, -3:].reshape(-1, 3),
        ]
    )
    colour = np.median(border, axis=0)
    close = np.linalg.norm(pixels - colour, axis=-1) < tolerance
    frac = close.mean()
    if not 0.12 <= frac <= 0.8:
        return None
    small = torch.from_numpy(close.astype(np.float32))[None, None]
    small = F.interpolate(small, size=(64, 64), mode="area") > 0.5
    allowed = small.float()
    seed = torch.zeros_like(allowed)
    seed[..., 0, :] = seed[..., -1, :] = 1
    seed[..., :, 0] = seed[..., :, -1] = 1
    seed = seed * allowed
    for _ in range(64):
        grown = F.max_pool2d(seed, 3, 1, 1) * allowed
        if torch.equal(grown, seed):
            break
        seed = grown
    connected = F.interpolate(seed, size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    mask = (connected.numpy() > 0.5) & close
    if mask.mean() < 0.1:
        return None
    soft = Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))
    return np.asarray(soft, dtype=np.float32) / 255


def paste_on_background(
    image: Image.Image, rng: np.random.Generator, scale: tuple[float, float] = (0.55, 1.0)
) -> Image.Image:
    """Cut the fruit out of its plain background and paste it, maybe smaller and off-centre,
    onto a generated surface. Photos without a plain background come back unchanged."""
    pixels = np.asarray(image, dtype=np.float32)
    mask = background_mask(pixels)
    if mask is None:
        return image
    h, w, _ = pixels.shape
    side = max(h, w)
    canvas = np.asarray(
        Image.fromarray(make_background(rng, 256).astype(np.uint8)).resize((w, h)), np.float32
    ).copy()
    s = rng.uniform(*scale)
    nh, nw = max(8, int(h * s)), max(8, int(w * s))
    fg = np.asarray(image.resize((nw, nh), Image.Resampling.BILINEAR), np.float32)
    alpha = (
        1
        - np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).resize((nw, nh)), np.float32)[
            ..., None
        ]
        / 255
    )
    y0 = int(rng.integers(0, h - nh + 1))
    x0 = int(rng.integers(0, w - nw + 1))
    region = canvas[y0 : y0 + nh, x0 : x0 + nw]
    canvas[y0 : y0 + nh, x0 : x0 + nw] = alpha * fg + (1 - alpha) * region
    # a soft shadow-free composite; a little noise so the seams are not perfectly clean
    canvas += rng.normal(0, 2.0, size=(h, w, 1)) * (side > 0)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------- photometric


def white_balance(image: Image.Image, rng: np.random.Generator, strength: float = 0.12):
    gains = 1 + rng.uniform(-strength, strength, size=3)
    pixels = np.asarray(image, np.float32) * gains
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg_recompress(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as out:
        return out.convert("RGB")


class PhonePhotoAugment:
    """Random phone-photo look for one PIL RGB image; returns a PIL RGB image.

    Geometric changes keep most of the fruit in view (crop scale >= 0.65) so rot spots near the
    edge are rarely cut away and the label stays true.
    """

    def __init__(self, seed: int = 0, paste_p: float = 0.4) -> None:
        self.seed = seed
        self.paste_p = paste_p
        self.calls = 0

    def __call__(self, image: Image.Image) -> Image.Image:
        import torchvision.transforms.v2.functional as TF
        from torchvision.transforms import RandomResizedCrop

        # One reproducible stream per call: seed + call count (the training loop is serial).
        self.calls += 1
        rng = np.random.default_rng([self.seed, self.calls])
        prng = random.Random(int(rng.integers(0, 2**31)))

        if rng.random() < self.paste_p:
            image = paste_on_background(image, rng)
        border = tuple(int(c) for c in np.asarray(image)[0].mean(axis=0))
        if rng.random() < 0.5:
            image = image.rotate(
                float(rng.uniform(-25, 25)), Image.Resampling.BILINEAR, fillcolor=border
            )
        if rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if rng.random() < 0.2:
            image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if rng.random() < 0.7:
            i, j, h, w = RandomResizedCrop.get_params(image, (0.65, 1.0), (0.75, 1.333))
            image = image.crop((j, i, j + w, i + h))
        if rng.random() < 0.3:
            w, h = image.size
            d = 0.15
            start = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
            end = [
                [x + int(prng.uniform(-d, d) * w / 2), y + int(prng.uniform(-d, d) * h / 2)]
                for x, y in start
            ]
            image = TF.perspective(image, start, end, fill=list(border))
        for enhance, amount in (
            (ImageEnhance.Brightness, 0.3),
            (ImageEnhance.Contrast, 0.25),
            (ImageEnhance.Color, 0.25),
        ):
            image = enhance(image).enhance(float(rng.uniform(1 - amount, 1 + amount)))
        image = white_balance(image, rng)
        if rng.random() < 0.25:
            image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.5))))
        if rng.random() < 0.5:
            image = jpeg_recompress(image, int(rng.integers(35, 92)))
        return image
