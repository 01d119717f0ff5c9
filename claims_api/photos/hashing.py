"""Perceptual hashes that find re-used photos (the duplicate-photo signals).

What is stored per photo (:class:`PhotoHashes`): for the whole image and for 22 crop windows
(:data:`WINDOWS`) a 64-bit pHash (DCT) and a 64-bit dHash (gradient), all in the photo's
upright orientation. The windows make a cropped copy (≤ 15 % off any side) line up
with one stored window; the two hash families fail differently, so a match needs BOTH to be
close.

What is looked up (:func:`query_hashes`): the whole-image hashes of the new photo under the 8
rotations/flips (the dihedral group), so a rotated or mirrored copy hits the stored upright
hash.

Indexed lookup (banding, :func:`index_band_values`): each stored window row carries six
indexed integer columns, its pHash and its dHash each cut into ``INDEX_BANDS`` = 3 bands of 21
bits (the top bit of each hash is left out). Candidates are the rows that share a band value,
column for column, with any of the query hashes (:func:`query_index_band_values`). By
pigeonhole a row whose pHash or dHash is within Hamming distance 2 of a query hash always
shares a band; most rows within the match threshold do too (``bench/bench_duplicates.py``
counts how many). Candidates are then checked with exact Hamming distances
(:func:`is_match`).

Thresholds (:data:`MATCH_THRESHOLDS`) were chosen on the shared real photos with
``bench/bench_duplicates.py`` (transformed copies of each photo against all pairs of different
photos): T = 10 is where re-encoded, resized, rotated, flipped, recoloured and cropped copies
nearly all match while false matches stay rare. Most "false" matches are look-alike web
photos (one round fruit on white), some of them in fact the same photo. A match routes a
claim to a person; it never rejects one.

Hash values are unsigned Python ints in 0..2**64-1; :func:`to_signed64` gives the value for a
signed BIGINT column.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

HASH_BITS = 64
BANDS = 4  # band_values' default: the 4 x 16-bit layout bench_duplicates.py compares against
Box = tuple[float, float, float, float]

# Crop windows stored besides the whole image: (width share, height share, x anchor, y anchor)
# with anchors 0 = left/top, 0.5 = centre, 1 = right/bottom. A cropped copy lines up with one
# of them to within ~3 % (the hashes tolerate that): 10 % off two sides or a corner, 15 % off
# a corner, 8-15 % off one side.
_GRID = (0.0, 0.5, 1.0)
WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    *((0.9, 0.9, fx, fy) for fy in _GRID for fx in _GRID),
    *((0.85, 0.85, fx, fy) for fx, fy in ((0, 0), (1, 0), (0, 1), (1, 1), (0.5, 0.5))),
    *((1.0, share, 0.5, fy) for share in (0.85, 0.92) for fy in (0.0, 1.0)),
    *((share, 1.0, fx, 0.5) for share in (0.85, 0.92) for fx in (0.0, 1.0)),
)

# The 8 dihedral transforms, identity first. A query photo is hashed under each of them.
# The bits are computed exactly as imagehash.phash / imagehash.dhash compute them from their
# 32×32 / 9×8 inputs (tests/photos/test_hashing.py checks bit equality); the inputs are resampled
# with the same Lanczos-3 kernel as PIL's resize but as numpy matrix products, which keeps
# hashing all 23 windows plus the 8 query transforms a small part of an upload's work.
DIHEDRAL: tuple[Image.Transpose | None, ...] = (
    None,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_180,
    Image.Transpose.ROTATE_270,
    Image.Transpose.FLIP_LEFT_RIGHT,
    Image.Transpose.FLIP_TOP_BOTTOM,
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
)


@dataclass(frozen=True)
class MatchThresholds:
    """A stored window matches a query hash when BOTH distances are at most these (and, when
    both colour signatures are known, the colours agree: see :func:`colours_compatible`)."""

    phash_max: int = 10
    dhash_max: int = 10
    # Colour signatures (mean opponent colours, see colour_signature) may differ by this much
    # plus colour_relative × their size: ±10 % brightness/saturation and a light tint stay
    # inside, a green apple against a red one does not.
    colour_absolute: int = 14
    colour_relative: float = 0.30


MATCH_THRESHOLDS = MatchThresholds()


@dataclass(frozen=True)
class HashPair:
    """The pHash and dHash of one image region, as unsigned 64-bit ints."""

    phash: int
    dhash: int

    @property
    def phash_hex(self) -> str:
        return f"{self.phash:016x}"

    @property
    def dhash_hex(self) -> str:
        return f"{self.dhash:016x}"


@dataclass(frozen=True)
class PhotoHashes:
    """The canonical hashes stored for one photo: ``windows[0]`` is the whole image,
    ``windows[1:]`` the crop windows (one stored row each; window index = position).
    ``colour`` is the photo's colour signature (the hashes are greyscale), None when unknown."""

    windows: tuple[HashPair, ...]
    colour: tuple[int, int] | None = None

    @property
    def whole(self) -> HashPair:
        return self.windows[0]

    def to_dict(self) -> dict:
        return {
            "phash": self.whole.phash_hex,
            "dhash": self.whole.dhash_hex,
            "windows": [[w.phash_hex, w.dhash_hex] for w in self.windows],
            "colour": list(self.colour) if self.colour is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> PhotoHashes:
        windows = tuple(HashPair(int(p, 16), int(d, 16)) for p, d in data["windows"])
        colour = data.get("colour")
        return cls(windows, (int(colour[0]), int(colour[1])) if colour else None)


def _dct_matrix(size: int) -> np.ndarray:
    """Unnormalised DCT-II as a matrix: the transform imagehash (scipy.fftpack.dct) uses."""
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size))


_PHASH_SIDE = 32  # imagehash.phash: hash_size 8 × highfreq_factor 4
_DCT = _dct_matrix(_PHASH_SIDE)


def _bits_to_int(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def phash_bits(pixels32: np.ndarray) -> int:
    """imagehash.phash of a 32×32 greyscale array, as an int (same bits, much faster)."""
    coefficients = _DCT @ pixels32 @ _DCT.T
    low = coefficients[:8, :8]
    return _bits_to_int(low > np.median(low))


def dhash_bits(pixels8x9: np.ndarray) -> int:
    """imagehash.dhash of an 8-row × 9-column greyscale array, as an int."""
    return _bits_to_int(pixels8x9[:, 1:] > pixels8x9[:, :-1])


# Hash inputs are at most 32 px, so a 64-px source loses nothing they use. It also keeps every
# resampling matrix product at most 32 x 64 x 64 multiply-adds, below OpenBLAS's threshold for
# multi-threaded GEMM (65536 x 4): on a busy machine its spinning threads slow an upload
# down many times over.
_SOURCE_MAX_SIDE = 64


def _grey(image: Image.Image) -> np.ndarray:
    """Greyscale float array, at most 64 px: every hash of a photo starts from this one."""
    grey = image if image.mode == "L" else image.convert("L")
    longest = max(grey.size)
    if longest > _SOURCE_MAX_SIDE:
        scale = _SOURCE_MAX_SIDE / longest
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(grey, dtype=np.float64)


@lru_cache(maxsize=4096)
def _lanczos_weights(start: float, stop: float, outputs: int, inputs: int) -> np.ndarray:
    """``outputs`` × ``inputs`` Lanczos-3 resampling matrix for the span [start, stop) of a
    pixel row: the kernel, support and pixel-centre convention of PIL's LANCZOS resize
    (which imagehash uses), without its 8-bit rounding between the two passes."""
    scale = (stop - start) / outputs
    filter_scale = max(scale, 1.0)
    centres = start + (np.arange(outputs, dtype=np.float64) + 0.5) * scale
    offsets = (np.arange(inputs, dtype=np.float64) + 0.5)[None, :] - centres[:, None]
    t = offsets / filter_scale
    weights = np.where(np.abs(t) < 3.0, np.sinc(t) * np.sinc(t / 3.0), 0.0)
    totals = weights.sum(axis=1, keepdims=True)
    matrix = weights / np.where(totals == 0.0, 1.0, totals)
    matrix.setflags(write=False)  # shared through the cache
    return matrix


def _resample(grey: np.ndarray, box: Box | None, size: tuple[int, int]) -> np.ndarray:
    """Resample ``box`` of ``grey`` to ``size`` (width, height) with Lanczos-3: two small
    matrix products instead of a PIL resize call (46 per photo were most of its cost)."""
    height, width = grey.shape
    left, top, right, bottom = box if box is not None else (0.0, 0.0, width, height)
    # Rounded so the few distinct photo sizes reuse cached matrices.
    rows = _lanczos_weights(round(top, 3), round(bottom, 3), size[1], height)
    columns = _lanczos_weights(round(left, 3), round(right, 3), size[0], width)
    return rows @ grey @ columns.T


def hash_region(grey: np.ndarray, box: Box | None = None) -> HashPair:
    """pHash + dHash of a region of a greyscale array (the whole array when ``box`` is None):
    the region is resampled to 32×32 (pHash) and 9 wide × 8 high (dHash)."""
    return HashPair(
        phash=phash_bits(_resample(grey, box, (_PHASH_SIDE, _PHASH_SIDE))),
        dhash=dhash_bits(_resample(grey, box, (9, 8))),
    )


def crop_windows(size: tuple[int, int]) -> list[Box]:
    """The crop boxes hashed besides the whole image, in :data:`WINDOWS` order."""
    width, height = size
    boxes = []
    for width_share, height_share, anchor_x, anchor_y in WINDOWS:
        crop_w, crop_h = width * width_share, height * height_share
        left, top = (width - crop_w) * anchor_x, (height - crop_h) * anchor_y
        boxes.append((left, top, left + crop_w, top + crop_h))
    return boxes


@lru_cache(maxsize=64)
def _window_weights(height: int, width: int) -> tuple[np.ndarray, ...]:
    """The Lanczos matrices of the whole image and every crop window of a ``width`` ×
    ``height`` source, stacked: rows / columns for the 32×32 pHash input and for the 9×8
    dHash input. Built once per source size (the small images of one camera all share one)."""
    boxes: list[Box] = [(0.0, 0.0, width, height), *crop_windows((width, height))]

    def stack(index: tuple[int, int], outputs: int, inputs: int) -> np.ndarray:
        spans = [(round(box[index[0]], 3), round(box[index[1]], 3)) for box in boxes]
        matrix = np.stack([_lanczos_weights(a, b, outputs, inputs) for a, b in spans])
        matrix.setflags(write=False)
        return matrix

    return (
        stack((1, 3), _PHASH_SIDE, height),
        stack((0, 2), _PHASH_SIDE, width),
        stack((1, 3), 8, height),
        stack((0, 2), 9, width),
    )


def _packed_bits(bits: np.ndarray) -> list[int]:
    """One int per leading index of a (n, 8, 8) boolean array, row-major, first bit highest."""
    packed = np.packbits(bits.reshape(len(bits), -1), axis=1)
    return [int.from_bytes(row.tobytes(), "big") for row in packed]


def compute_hashes(image: Image.Image) -> PhotoHashes:
    """The stored hashes of an upright photo (pass the small decoded image).

    Same bits as :func:`hash_region` on the whole image and each of :func:`crop_windows`
    (tests/photos/test_hashing.py checks it), computed for all 23 regions at once: one stacked
    matrix product per resampling pass and one for the DCT, instead of 115 small ones."""
    grey = _grey(image)
    p_rows, p_cols, d_rows, d_cols = _window_weights(*grey.shape)
    p32 = np.matmul(np.matmul(p_rows, grey), p_cols.transpose(0, 2, 1))
    d98 = np.matmul(np.matmul(d_rows, grey), d_cols.transpose(0, 2, 1))
    low = np.matmul(np.matmul(_DCT, p32), _DCT.T)[:, :8, :8]
    medians = np.median(low.reshape(len(low), -1), axis=1)
    phashes = _packed_bits(low > medians[:, None, None])
    dhashes = _packed_bits(d98[:, :, 1:] > d98[:, :, :-1])
    windows = tuple(HashPair(p, d) for p, d in zip(phashes, dhashes, strict=True))
    return PhotoHashes(windows, colour_signature(image))


def colour_signature(image: Image.Image) -> tuple[int, int]:
    """Mean red-green and yellow-blue opponent colour of the photo (rounded; each within
    about ±180). Unchanged by rotation and flips, moved only a little by crops."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    pixels = np.asarray(rgb.resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    red_green = (red - green) / np.sqrt(2.0)
    yellow_blue = (red + green - 2.0 * blue) / np.sqrt(6.0)
    return round(float(red_green.mean())), round(float(yellow_blue.mean()))


def colours_compatible(
    a: tuple[int, int] | None,
    b: tuple[int, int] | None,
    thresholds: MatchThresholds = MATCH_THRESHOLDS,
) -> bool:
    """Could these two colour signatures belong to one photo? Unknown colours never veto."""
    if a is None or b is None:
        return True
    difference = abs(a[0] - b[0]) + abs(a[1] - b[1])
    size = max(abs(a[0]) + abs(a[1]), abs(b[0]) + abs(b[1]))
    return difference <= thresholds.colour_absolute + thresholds.colour_relative * size


def _dihedral_arrays(pixels: np.ndarray) -> list[np.ndarray]:
    """``pixels`` under the 8 transforms, in :data:`DIHEDRAL` order."""
    return [
        pixels,
        np.rot90(pixels, 1),  # Transpose.ROTATE_90 is counter-clockwise, as is rot90
        np.rot90(pixels, 2),
        np.rot90(pixels, 3),
        pixels[:, ::-1],
        pixels[::-1, :],
        pixels.T,
        np.rot90(pixels, 2).T,
    ]


def query_hashes(image: Image.Image) -> list[HashPair]:
    """Whole-image hashes of ``image`` under the 8 rotations/flips (:data:`DIHEDRAL` order,
    identity first). A transformed copy of a stored photo hits its stored window 0."""
    grey = _grey(image)
    p32 = _resample(grey, None, (_PHASH_SIDE, _PHASH_SIDE))
    # dHash samples 9 columns × 8 rows; a transform that swaps the axes needs 8 × 9 instead.
    d_wide = _resample(grey, None, (9, 8))
    d_tall = _resample(grey, None, (8, 9))
    # The 8 DCTs in one stacked product (same bits as phash_bits on each, tests check it).
    low = np.matmul(np.matmul(_DCT, np.stack(_dihedral_arrays(p32))), _DCT.T)[:, :8, :8]
    medians = np.median(low.reshape(len(low), -1), axis=1)
    phashes = _packed_bits(low > medians[:, None, None])
    d_from_wide = _dihedral_arrays(d_wide)
    d_from_tall = _dihedral_arrays(d_tall)
    swaps_axes = (False, True, False, True, False, False, True, True)
    return [
        HashPair(phash, dhash_bits(d_tall_v if swap else d_wide_v))
        for phash, d_wide_v, d_tall_v, swap in zip(
            phashes, d_from_wide, d_from_tall, swaps_axes, strict=True
        )
    ]


def band_values(value: int, bands: int = BANDS) -> list[int]:
    """Split a 64-bit hash into ``bands`` integers of ``64 // bands`` bits, most significant
    first; top bits left over are dropped (3 bands: 21 bits each, bit 63 unused). Every value
    fits an INTEGER column."""
    width = HASH_BITS // bands
    mask = (1 << width) - 1
    return [(value >> (width * (bands - 1 - i))) & mask for i in range(bands)]


# The stored layout (PhotoHash.band0-band5): 3 pHash bands + 3 dHash bands of 21 bits. Bands
# of 21 bits collide by chance far less often than bands of 16, so a lookup in a large table
# fetches far fewer candidate rows; and the dHash bands still find a copy whose pHash changed
# in every band, so more true matches become candidates (bench_duplicates.py compares them).
INDEX_BANDS = 3


def index_band_values(pair: HashPair, bands: int = INDEX_BANDS) -> list[int]:
    """The band columns of one stored window in the recommended layout: ``bands`` pHash
    bands then ``bands`` dHash bands."""
    return band_values(pair.phash, bands) + band_values(pair.dhash, bands)


def query_index_band_values(
    queries: Iterable[HashPair], bands: int = INDEX_BANDS
) -> list[set[int]]:
    """Per band column of :func:`index_band_values`, the values to look up (``col IN (...)``
    OR-ed over the columns): a candidate shares at least one band with some query hash."""
    sets: list[set[int]] = [set() for _ in range(2 * bands)]
    for query in queries:
        for i, value in enumerate(index_band_values(query, bands)):
            sets[i].add(value)
    return sets


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def window_distance(stored: HashPair, query: HashPair) -> tuple[int, int]:
    return hamming(stored.phash, query.phash), hamming(stored.dhash, query.dhash)


def is_match(
    stored: HashPair | PhotoHashes,
    query: HashPair | Sequence[HashPair],
    thresholds: MatchThresholds = MATCH_THRESHOLDS,
    *,
    query_colour: tuple[int, int] | None = None,
) -> tuple[bool, int]:
    """Does any stored window match any query hash?

    Returns ``(matched, distance)`` where distance = pHash + dHash Hamming distance (0..128) of
    the closest (window, query) pair that is within both thresholds, or of the closest pair
    overall when none is. When ``stored`` is a PhotoHashes with a colour and ``query_colour``
    is given (:func:`colour_signature` of the query photo), the colours must agree too.
    """
    windows = stored.windows if isinstance(stored, PhotoHashes) else (stored,)
    queries = (query,) if isinstance(query, HashPair) else tuple(query)
    best_match: int | None = None
    best_any = 2 * HASH_BITS + 1
    for window in windows:
        for candidate in queries:
            p_dist, d_dist = window_distance(window, candidate)
            total = p_dist + d_dist
            best_any = min(best_any, total)
            if p_dist <= thresholds.phash_max and d_dist <= thresholds.dhash_max:
                best_match = total if best_match is None else min(best_match, total)
    stored_colour = stored.colour if isinstance(stored, PhotoHashes) else None
    if best_match is not None and colours_compatible(stored_colour, query_colour, thresholds):
        return True, best_match
    return False, best_match if best_match is not None else best_any


def to_signed64(value: int) -> int:
    """An unsigned 64-bit hash as the value of a signed BIGINT column."""
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
