"""Perceptual hashes: the same algorithm as imagehash, rotation/flip/crop tolerant, bands that
make the index find what the exact distance would accept, and real-photo match rates."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import imagehash
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageEnhance, ImageOps

from claims_api.photos import hashing
from claims_api.photos.hashing import (
    BANDS,
    DIHEDRAL,
    HashPair,
    PhotoHashes,
    band_values,
    colour_signature,
    colours_compatible,
    compute_hashes,
    from_signed64,
    hamming,
    is_match,
    query_hashes,
    to_signed64,
)
from claims_api.photos.imaging import process_upload
from data.synthetic import make_fruit
from tests.support.paths import REPO

U64 = st.integers(min_value=0, max_value=(1 << 64) - 1)


def dataset_dir() -> Path:
    default = REPO.parent / "shared" / "datasets" / "produce"
    return Path(os.environ.get("FRESHCLAIM_DATASET_DIR", default))


def small_of(image: Image.Image, quality: int = 95) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return process_upload(buffer.getvalue()).small_image


def test_bits_equal_imagehash() -> None:
    grey = make_fruit(size=(320, 240), seed=9).convert("L")
    p32 = grey.resize((32, 32), Image.Resampling.LANCZOS)
    d98 = grey.resize((9, 8), Image.Resampling.LANCZOS)
    assert hashing.phash_bits(np.asarray(p32, dtype=np.float64)) == int(
        str(imagehash.phash(p32)), 16
    )
    assert hashing.dhash_bits(np.asarray(d98, dtype=np.float64)) == int(
        str(imagehash.dhash(d98)), 16
    )


def test_query_hashes_cover_the_eight_transforms() -> None:
    photo = make_fruit("banana", size=(320, 240), seed=2)
    stored = compute_hashes(photo)
    queries = query_hashes(photo)
    assert len(queries) == 8 and queries[0] == stored.whole
    for op in DIHEDRAL[1:]:
        turned = photo.transpose(op)
        matched, distance = is_match(stored, query_hashes(turned))
        assert matched and distance <= 8, (op, distance)
        # Only because one of the 8 query hashes undoes the turn: the upright one alone differs.
        assert not is_match(stored, query_hashes(turned)[0])[0] or op in (
            Image.Transpose.ROTATE_180,
        )


@pytest.mark.parametrize("size", [(320, 240), (240, 320), (213, 320), (319, 241), (64, 48)])
def test_batched_hashes_equal_one_region_at_a_time(size: tuple[int, int]) -> None:
    # compute_hashes and query_hashes stack the 23 windows / 8 transforms into one matrix
    # product each: the bits must be those of hashing every region on its own.
    for seed, photo in enumerate([make_fruit("apple", size=size, seed=3), noise_image(size)]):
        grey = hashing._grey(photo)
        boxes = [None, *hashing.crop_windows((grey.shape[1], grey.shape[0]))]
        assert compute_hashes(photo).windows == tuple(hashing.hash_region(grey, b) for b in boxes)
        p32 = hashing._resample(grey, None, (32, 32))
        wide, tall = hashing._resample(grey, None, (9, 8)), hashing._resample(grey, None, (8, 9))
        swaps = (False, True, False, True, False, False, True, True)
        one_by_one = [
            HashPair(hashing.phash_bits(p), hashing.dhash_bits(t if swap else w))
            for p, w, t, swap in zip(
                hashing._dihedral_arrays(p32),
                hashing._dihedral_arrays(wide),
                hashing._dihedral_arrays(tall),
                swaps,
                strict=True,
            )
        ]
        assert query_hashes(photo) == one_by_one, seed


def noise_image(size: tuple[int, int]) -> Image.Image:
    pixels = np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), np.uint8)
    return Image.fromarray(pixels)


def test_serialisation_round_trip() -> None:
    hashes = compute_hashes(make_fruit(size=(200, 150)))
    assert len(hashes.windows) == 1 + len(hashing.WINDOWS)
    again = PhotoHashes.from_dict(hashes.to_dict())
    assert again == hashes
    legacy = {"windows": hashes.to_dict()["windows"]}  # stored before colours existed
    assert PhotoHashes.from_dict(legacy).colour is None


@given(U64)
def test_bands_reassemble_and_fit_an_integer_column(value: int) -> None:
    bands = band_values(value)
    assert len(bands) == BANDS and all(0 <= b < 1 << 16 for b in bands)
    rebuilt = 0
    for band in bands:
        rebuilt = (rebuilt << 16) | band
    assert rebuilt == value
    assert from_signed64(to_signed64(value)) == value
    assert -(1 << 63) <= to_signed64(value) < 1 << 63


@given(U64, st.sets(st.integers(0, 63), max_size=BANDS - 1))
def test_pigeonhole_close_hashes_share_a_band(value: int, flips: set[int]) -> None:
    other = value
    for bit in flips:
        other ^= 1 << bit
    assert hamming(value, other) == len(flips)
    assert any(a == b for a, b in zip(band_values(value), band_values(other), strict=True))


@given(U64, U64, st.sets(st.integers(0, 62), max_size=2), st.sets(st.integers(0, 62), max_size=2))
def test_recommended_index_bands(phash: int, dhash: int, p_flips: set[int], d_flips: set[int]):
    stored = HashPair(phash, dhash)
    query = HashPair(phash ^ sum(1 << b for b in p_flips), dhash ^ sum(1 << b for b in d_flips))
    columns = hashing.index_band_values(stored)
    assert len(columns) == 6 and all(0 <= v < 1 << 21 for v in columns)
    # <= 2 flipped bits in the 63 indexed bits of each hash: pigeonhole finds it.
    sets = hashing.query_index_band_values([query])
    assert any(value in sets[i] for i, value in enumerate(columns))


def test_is_match_reports_the_closest_distance() -> None:
    stored = PhotoHashes((HashPair(0, 0), HashPair(0b1111, 0b11)))
    assert is_match(stored, HashPair(0b1111, 0b1)) == (True, 1)
    assert is_match(stored, [HashPair((1 << 64) - 1, 0)]) == (False, 62)  # 60 + 2
    assert is_match(stored, HashPair(0b111 << 8, 0), hashing.MatchThresholds(2, 2)) == (False, 3)


def test_colour_vetoes_a_different_colour_but_not_a_light_shift() -> None:
    red = make_fruit("apple", size=(320, 240), seed=1)
    assert colours_compatible(
        colour_signature(red), colour_signature(ImageEnhance.Color(red).enhance(1.1))
    )
    assert colours_compatible(
        colour_signature(red), colour_signature(ImageEnhance.Brightness(red).enhance(0.9))
    )
    green = Image.fromarray(np.asarray(red)[..., [1, 0, 2]])  # swap red and green
    assert not colours_compatible(colour_signature(red), colour_signature(green))
    stored = compute_hashes(red)
    assert is_match(stored, query_hashes(green))[0]  # greyscale hashes alone cannot tell
    assert not is_match(stored, query_hashes(green), query_colour=colour_signature(green))[0]
    assert colours_compatible(None, (1, 2))


def _real_photos(count: int) -> list[tuple[str, Image.Image]]:
    folder = dataset_dir()
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"shared produce dataset not found at {folder} (set FRESHCLAIM_DATASET_DIR)")
    with (folder / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # apples, bananas, oranges: the kinds with many look-alike photos on white backgrounds
    rows = [r for r in rows if r["produce"] in ("apple", "banana", "orange")]
    rows = rows[:: max(1, len(rows) // count)][:count]
    return [(r["produce"], Image.open(folder / r["image"]).convert("RGB")) for r in rows]


def _crop(image: Image.Image, left: float, top: float, right: float, bottom: float):
    w, h = image.size
    return image.crop(
        (round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom)))
    )


TRANSFORMS = {
    "jpeg_q60": lambda im: small_of(im, 60),
    "resize_50": lambda im: small_of(im.resize((im.width // 2, im.height // 2))),
    "crop_10": lambda im: small_of(_crop(im, 0.06, 0.03, 0.04, 0.07)),
    "crop_15_one_side": lambda im: small_of(_crop(im, 0.15, 0, 0, 0)),
    "rotate_90": lambda im: small_of(im.transpose(Image.Transpose.ROTATE_90)),
    "flip": lambda im: small_of(ImageOps.mirror(im)),
    "brightness_+10": lambda im: small_of(ImageEnhance.Brightness(im).enhance(1.1)),
    "colour_-10": lambda im: small_of(ImageEnhance.Color(im).enhance(0.9)),
}


@pytest.mark.dataset
def test_real_photos_match_their_transformed_copies_and_not_each_other() -> None:
    photos = _real_photos(24)
    stored = [compute_hashes(small_of(image)) for _, image in photos]
    misses = []
    for (_, image), own in zip(photos, stored, strict=True):
        for name, transform in TRANSFORMS.items():
            if not is_match(own, query_hashes(transform(image)))[0]:
                misses.append(name)
    true_rate = 1 - len(misses) / (len(photos) * len(TRANSFORMS))
    assert true_rate >= 0.95, misses

    queries = [query_hashes(small_of(image)) for _, image in photos]
    false_matches = [
        (i, j)
        for i, own in enumerate(stored)
        for j, query in enumerate(queries)
        if i != j and is_match(own, query)[0]
    ]
    pairs = len(photos) * (len(photos) - 1)
    # Full measurement over all 1822 photos: bench/bench_duplicates.py
    assert len(false_matches) / pairs <= 0.005, false_matches


def test_hash_source_keeps_matrix_products_single_threaded() -> None:
    """Every resampling product must stay below OpenBLAS's multi-threading threshold
    (65536 x 4 multiply-adds): its spinning threads made uploads 40x slower under load."""
    for size in [(4000, 3000), (3000, 4000), (5000, 500), (64, 64)]:
        grey = hashing._grey(Image.new("L", size, 128))
        height, width = grey.shape
        assert max(height, width) <= 64
        assert 32 * height * width <= 65536 * 4
