"""Turns the bytes of one uploaded photo into everything the service keeps about it.

:func:`process_upload` runs the steps cheapest-first, so hostile input is refused before it
costs anything:

1. byte limit;
2. format sniffed from the magic bytes (JPEG, PNG, WebP, HEIC/HEIF, AVIF) — the file name and
   the declared content type are never trusted;
3. header only: the pixel limit is enforced BEFORE any pixel is decoded (a PNG declaring
   30000×30000 is refused without allocating it);
4. EXIF facts (capture time, Software, GPS present, Make/Model) read before they are dropped;
5. decode — a JPEG with DCT scaling (``Image.draft``) straight to about the size of the stored
   reviewer copy (a 12-MP photo decodes at 1/2 scale, never at full size);
6. EXIF orientation applied, converted to RGB (alpha composited on white);
7. one small image (longer side ≤ ``small_max_side``) made from the decoded one, for the model,
   the quality gate and the hashes;
8. the stored copy re-encoded as JPEG from pixels, with no EXIF/XMP at all (so GPS can never
   be stored), content-addressed by its sha256 — on a helper thread while
9. the quality gate and the perceptual hashes run on the small image, and then the caller's
   ``alongside`` work (the service scores the photo there), until the encode is done.

Anything the decoders cannot read becomes :class:`PhotoRejected`, never another exception.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pillow_heif
from PIL import Image, ImageFile, features

from claims_api.photos.hashing import HashPair, PhotoHashes, compute_hashes, query_hashes
from claims_api.photos.messages import message
from claims_api.photos.quality import (
    DEFAULT_THRESHOLDS,
    QualityReport,
    QualityThresholds,
    assess_quality,
    edge_tiles,
    turned_size,
)

pillow_heif.register_heif_opener()

# EXIF tags (IFD0 / Exif IFD / pointers)
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_ORIENTATION = 0x0112
_TAG_SOFTWARE = 0x0131
_TAG_EXIF_IFD = 0x8769
_TAG_GPS_IFD = 0x8825
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_OFFSET_TIME = 0x9010
_TAG_OFFSET_TIME_ORIGINAL = 0x9011

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
# AVIF files also name the generic HEIF brand mif1, so they are told apart first. Pillow
# decodes them (and maps their rotation boxes to the EXIF orientation) when built with libavif.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_AVIF_DECODER = features.check("avif")


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 15 * 1024 * 1024
    # 50 MP: a 48-MP phone sensor still passes; Pillow's own bomb limit is 89 MP.
    max_pixels: int = 50_000_000
    # The stored reviewer copy: longer side at most this ...
    stored_max_side: int = 2048
    # ... and a JPEG is DCT-scaled as far as it can while its longer side stays at least this
    # fraction of the stored size (4032 px decodes at 1/2 to 2016 px and is stored as is).
    stored_min_fraction: float = 0.75
    stored_jpeg_quality: int = 85
    # The small image for the model (it resizes to its own input), quality gate and hashes.
    small_max_side: int = 320
    # Blur is measured on 4 tiles of this side at the decoded (reviewer) resolution, placed on
    # the most detailed parts of the photo.
    detail_tile_side: int = 192
    # Encode the stored copy (and hash the upload) on a helper thread while the quality gate
    # and hashes run: both release the GIL, so one upload's latency drops by the encode time.
    # Total CPU is the same; a service already using every core may turn it off.
    overlap_work: bool = True
    # EXIF DateTimeOriginal without OffsetTimeOriginal is read in this zone (UTC+8, China).
    exif_default_utc_offset_minutes: int = 480
    quality: QualityThresholds = DEFAULT_THRESHOLDS


DEFAULT_LIMITS = ImageLimits()


class PhotoRejected(Exception):
    """The upload cannot be used at all. ``code`` is machine-readable, ``message`` a sentence
    for the customer, ``status`` the HTTP status to answer with."""

    def __init__(self, code: str, status: int, detail: str = "") -> None:
        self.code = code
        self.status = status
        self.message = message(code)
        self.detail = detail  # for logs only: never shown to the customer
        super().__init__(f"{code}: {detail or self.message}")


@dataclass(frozen=True)
class ExifFacts:
    """What the upload's EXIF said, read before the metadata is dropped. Missing EXIF is
    normal (mini-program uploads usually have none) and is not a signal by itself."""

    captured_at: datetime | None = None  # aware; see captured_at_offset_known
    captured_at_offset_known: bool = False  # False: read in ImageLimits' default zone
    software: str | None = None
    make: str | None = None
    model: str | None = None
    gps_present: bool = False
    orientation: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "captured_at": self.captured_at.isoformat() if self.captured_at else None,
            "captured_at_offset_known": self.captured_at_offset_known,
            "software": self.software,
            "make": self.make,
            "model": self.model,
            "gps_present": self.gps_present,
            "orientation": self.orientation,
        }


@dataclass(frozen=True)
class ProcessedPhoto:
    # "jpeg", "png", "webp", "heif" or "avif": what the bytes are, not what they claimed
    format: str
    width: int  # of the original, after orientation
    height: int
    stored_bytes: bytes = field(repr=False)
    stored_width: int
    stored_height: int
    stored_sha256: str  # content address of the stored copy
    original_sha256: str  # of the uploaded bytes: exact re-uploads
    small_image: Image.Image = field(repr=False)  # RGB, max_side/2 < longer side <= max_side
    exif: ExifFacts
    quality: QualityReport
    hashes: PhotoHashes
    # the whole photo's hashes under the 8 rotations/flips, looked up when it is on a claim
    query_hashes: tuple[HashPair, ...] = field(repr=False)
    timings_ms: dict[str, float] = field(default_factory=dict)  # wall time per stage
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU time per stage
    alongside_result: Any = field(default=None, repr=False)  # what ``alongside`` returned


class _Stopwatch:
    """Wall time per stage, and the calling thread's CPU time per stage (which other
    processes' load does not inflate)."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._start = self._last = time.perf_counter()
        self._cpu_start = self._cpu_last = time.thread_time()

    def lap(self, stage: str) -> None:
        now, cpu_now = time.perf_counter(), time.thread_time()
        self.timings[stage] = round((now - self._last) * 1000.0, 3)
        self.cpu[stage] = round((cpu_now - self._cpu_last) * 1000.0, 3)
        self._last, self._cpu_last = now, cpu_now

    def finish(self) -> dict[str, float]:
        self.timings["total"] = round((time.perf_counter() - self._start) * 1000.0, 3)
        self.cpu["total"] = round((time.thread_time() - self._cpu_start) * 1000.0, 3)
        return self.timings


def sniff_format(data: bytes) -> str | None:
    """The Pillow format name of ``data`` from its magic bytes, or None when unsupported."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if len(data) >= 12 and data[4:8] == b"ftyp":
        box_size = int.from_bytes(data[:4], "big")
        brands = data[8:12] + data[16 : min(box_size, 64)]
        named = {brands[i : i + 4] for i in range(0, len(brands) - 3, 4)}
        if named & _AVIF_BRANDS:
            return "AVIF" if _AVIF_DECODER else None
        if named & _HEIF_BRANDS:
            return "HEIF"
    return None


# Two helper tasks per upload; enough threads that concurrent uploads never queue behind
# each other's helpers (the work is CPU-bound either way).
_HELPERS = ThreadPoolExecutor(
    max_workers=max(4, 2 * (os.cpu_count() or 1)), thread_name_prefix="photo-helper"
)


class _Inline:
    """A finished 'future' for work done on the calling thread."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self._value = function(*args)

    def result(self) -> Any:
        return self._value


def _start(limits: ImageLimits, function: Callable[..., Any], *args: Any) -> Any:
    return _HELPERS.submit(function, *args) if limits.overlap_work else _Inline(function, *args)


def _timed_sha256(data: bytes) -> tuple[str, float, float]:
    started, cpu = time.perf_counter(), time.thread_time()
    digest = hashlib.sha256(data).hexdigest()
    return digest, (time.perf_counter() - started) * 1000.0, (time.thread_time() - cpu) * 1000.0


def _make_stored_copy(
    decoded: Image.Image,
    turn: Image.Transpose | None,
    limits: ImageLimits,
    icc_profile: bytes | None,
) -> tuple[bytes, tuple[int, int], str, float, float]:
    started, cpu = time.perf_counter(), time.thread_time()
    upright = decoded.transpose(turn) if turn is not None else decoded
    stored = shrink(upright, limits.stored_max_side)
    data = encode_jpeg(stored, limits.stored_jpeg_quality, icc_profile)
    digest = hashlib.sha256(data).hexdigest()
    wall_ms = (time.perf_counter() - started) * 1000.0
    return data, stored.size, digest, wall_ms, (time.thread_time() - cpu) * 1000.0


def process_upload(
    data: bytes,
    limits: ImageLimits = DEFAULT_LIMITS,
    *,
    alongside: Callable[[Image.Image], Any] | None = None,
) -> ProcessedPhoto:
    """Validate, decode, check and re-encode one uploaded photo. Raises PhotoRejected.

    ``alongside(small_image)``, when given, runs on the calling thread after the quality gate
    and the hashes, while the helper thread is still encoding the stored copy (the longest
    step: this thread would otherwise wait for it); what it returns is ``alongside_result``
    and what it raises propagates.

    ``timings_ms`` holds each stage's duration; ``encode`` (turning the decoded image upright,
    re-encoding it and hashing the result) and ``sha256`` are measured on the helper thread
    that runs them (see ``ImageLimits.overlap_work``), ``total`` is the wall time of the call.
    """
    watch = _Stopwatch()
    if not data:
        raise PhotoRejected("empty_file", 400)
    if len(data) > limits.max_bytes:
        raise PhotoRejected("file_too_large", 413, f"{len(data)} > {limits.max_bytes} bytes")
    pil_format = sniff_format(data)
    if pil_format is None:
        raise PhotoRejected("unsupported_format", 415, repr(data[:16]))
    watch.lap("sniff")

    image = _open_header(data, pil_format)
    _check_pixels(image, limits)
    declared_size = image.size
    watch.lap("header")
    original_digest = _start(limits, _timed_sha256, data)

    try:
        _draft_for_storage(image, limits)
        exif = read_exif_facts(image, limits)
        icc_profile = image.info.get("icc_profile")
        _decode_in_one_call(image, len(data))
        image.load()
        watch.lap("decode")
        decoded = to_rgb(image)
    except PhotoRejected:
        raise
    except Exception as exc:  # any failure of a decoder on untrusted bytes means a bad file
        raise PhotoRejected("corrupt_image", 422, f"{type(exc).__name__}: {exc}") from exc
    # pillow-heif turns HEIF images upright itself (and resets the tag to 1).
    turn = _ORIENTATION_TRANSPOSE.get(1 if pil_format == "HEIF" else exif.orientation)
    width, height = turned_size(declared_size, turn)
    watch.lap("orient")

    # The full-size image is turned upright only for the stored copy, on the helper thread
    # with the encode; this thread turns just the small image and the blur tiles (the same
    # pixels: see edge_tiles), so the two threads start on their work right after decoding.
    stored_copy = _start(limits, _make_stored_copy, decoded, turn, limits, icc_profile)
    small = shrink_fast(decoded, limits.small_max_side, turn)
    detail = edge_tiles(decoded, small, side=limits.detail_tile_side, turn=turn)
    watch.lap("small")

    quality = assess_quality(
        small,
        original_size=(width, height),
        detail=detail,
        detail_side=max(decoded.size),
        thresholds=limits.quality,
    )
    watch.lap("quality")
    hashes = compute_hashes(small)
    queries = query_hashes(small)
    watch.lap("hashes")
    alongside_result = None
    if alongside is not None:
        alongside_result = alongside(small)
        watch.lap("alongside")
    stored_bytes, stored_size, stored_sha256, encode_ms, encode_cpu = stored_copy.result()
    original_sha256, sha_ms, sha_cpu = original_digest.result()
    watch.lap("wait_helpers")
    timings = watch.finish()
    timings["encode"], watch.cpu["encode"] = round(encode_ms, 3), round(encode_cpu, 3)
    timings["sha256"], watch.cpu["sha256"] = round(sha_ms, 3), round(sha_cpu, 3)
    # all threads' CPU for this upload (the helpers' work included, waiting excluded)
    watch.cpu["total"] = round(watch.cpu["total"] + encode_cpu + sha_cpu, 3)

    return ProcessedPhoto(
        format=pil_format.lower(),
        width=width,
        height=height,
        stored_bytes=stored_bytes,
        stored_width=stored_size[0],
        stored_height=stored_size[1],
        stored_sha256=stored_sha256,
        original_sha256=original_sha256,
        small_image=small,
        exif=exif,
        quality=quality,
        hashes=hashes,
        query_hashes=tuple(queries),
        timings_ms=timings,
        cpu_ms=watch.cpu,
        alongside_result=alongside_result,
    )


def _open_header(data: bytes, pil_format: str) -> Image.Image:
    """Parse the header only (Pillow decodes lazily), restricted to the sniffed format."""
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit right after; Pillow's warning adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=[pil_format])
    except Image.DecompressionBombError as exc:
        raise PhotoRejected("image_too_large", 413, str(exc)) from exc
    except Exception as exc:
        raise PhotoRejected("corrupt_image", 422, f"{type(exc).__name__}: {exc}") from exc


def _check_pixels(image: Image.Image, limits: ImageLimits) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise PhotoRejected("corrupt_image", 422, f"size {width}x{height}")
    if width * height > limits.max_pixels:
        raise PhotoRejected("image_too_large", 413, f"{width}x{height} > {limits.max_pixels} px")


def _draft_for_storage(image: Image.Image, limits: ImageLimits) -> None:
    """Ask the JPEG decoder for the smallest DCT scale (1/2, 1/4, 1/8) whose longer side is
    still at least ``stored_min_fraction`` of the stored copy's size."""
    if image.format != "JPEG":
        return
    width, height = image.size
    longest = max(width, height)
    wanted = min(longest, limits.stored_max_side) * limits.stored_min_fraction
    scale = wanted / longest
    image.draft("RGB", (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))))


def _decode_in_one_call(image: Image.Image, size: int) -> None:
    """Hand a JPEG's decoder the whole file at once. Pillow feeds it 64 KB per call by default
    (~50 calls for a 12-MP photo), releasing the GIL for each and taking it back after: with
    other request threads running Python, every take-back can wait up to the 5 ms switch
    interval, so a decode next to a busy Python thread took markedly longer. Same pixels; one
    extra copy of the file's bytes while it decodes."""
    if image.format == "JPEG":
        image.decodermaxblock = max(size, ImageFile.MAXBLOCK)


def read_exif_facts(image: Image.Image, limits: ImageLimits = DEFAULT_LIMITS) -> ExifFacts:
    """Capture time, Software, Make/Model, GPS presence and orientation; never raises (a
    malformed EXIF block just yields fewer facts)."""
    try:
        exif = image.getexif()
    except Exception:
        return ExifFacts()
    if not exif:
        heif_orientation = image.info.get("original_orientation")
        if isinstance(heif_orientation, int) and 1 <= heif_orientation <= 8:
            return ExifFacts(orientation=heif_orientation)
        return ExifFacts()
    try:
        exif_ifd = exif.get_ifd(_TAG_EXIF_IFD)
    except Exception:
        exif_ifd = {}
    try:
        gps_present = bool(exif.get_ifd(_TAG_GPS_IFD)) or _TAG_GPS_IFD in exif
    except Exception:
        gps_present = _TAG_GPS_IFD in exif
    offset_text = _text(exif_ifd.get(_TAG_OFFSET_TIME_ORIGINAL)) or _text(
        exif_ifd.get(_TAG_OFFSET_TIME)
    )
    offset = parse_exif_offset(offset_text)
    default_zone = timezone(timedelta(minutes=limits.exif_default_utc_offset_minutes))
    captured_at = parse_exif_datetime(
        _text(exif_ifd.get(_TAG_DATETIME_ORIGINAL)), offset or default_zone
    )
    orientation = image.info.get("original_orientation") or exif.get(_TAG_ORIENTATION, 1)
    return ExifFacts(
        captured_at=captured_at,
        captured_at_offset_known=captured_at is not None and offset is not None,
        software=_text(exif.get(_TAG_SOFTWARE)),
        make=_text(exif.get(_TAG_MAKE)),
        model=_text(exif.get(_TAG_MODEL)),
        gps_present=gps_present,
        orientation=orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1,
    )


def _text(value: object, max_length: int = 200) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned[:max_length] or None


def parse_exif_offset(text: str | None) -> timezone | None:
    """``"+08:00"`` -> UTC+8; anything malformed -> None."""
    if not text or len(text) < 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        hours, minutes = int(text[1:3]), int(text[4:6])
    except ValueError:
        return None
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def parse_exif_datetime(text: str | None, zone: timezone) -> datetime | None:
    """``"2026:11:24 18:05:09"`` -> an aware datetime in ``zone``; malformed or blank -> None."""
    if not text:
        return None
    try:
        parsed = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if parsed.year < 1990:
        return None
    return parsed.replace(tzinfo=zone)


_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _wide_grey_to_rgb(image)
    has_alpha = (
        mode in ("RGBA", "LA", "PA", "RGBa", "La")
        or (mode == "P" and "transparency" in image.info)
        or (mode in ("L", "RGB") and "transparency" in image.info)
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _wide_grey_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit greyscale: scale to 0..255 instead of clipping (Pillow clips)."""
    pixels = np.asarray(image, dtype=np.float64)
    peak = float(pixels.max()) if pixels.size else 0.0
    if peak > 255.0:
        pixels = pixels * (255.0 / (65535.0 if peak <= 65535.0 else peak))
    grey = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB")


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    """Longer side at most ``max_side``: integer box reduction (cheap), then bilinear."""
    longest = max(image.size)
    if longest <= max_side:
        return image
    factor = longest // max_side
    if factor >= 2:
        image = image.reduce(factor)
        longest = max(image.size)
    if longest > max_side:
        scale = max_side / longest
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    return image


def shrink_fast(
    image: Image.Image, max_side: int, turn: Image.Transpose | None = None
) -> Image.Image:
    """Longer side at most ``max_side`` by one integer box reduction only (cheap: the result is
    between max_side/2 and max_side): the model, the quality gate and the hashes all resize
    again to their own, smaller input sizes.

    With ``turn``, the result is ``shrink_fast(image.transpose(turn), max_side)`` — the same
    pixels — made without turning the large image: the boxes are laid out from the corner
    that becomes the top left, so the partial boxes of a side that is not a multiple of the
    factor end up right and bottom as they would, and only the small result is turned."""
    longest = max(image.size)
    if longest <= max_side:
        return image if turn is None else image.transpose(turn)
    factor = math.ceil(longest / max_side)
    if turn is None:
        return image.reduce(factor)
    columns = _box_runs(image.width, factor, turn in _REVERSES_X)
    rows = _box_runs(image.height, factor, turn in _REVERSES_Y)
    small = Image.new(image.mode, (sum(n for *_, n in columns), sum(n for *_, n in rows)))
    top = 0
    for y0, y1, y_factor, height in rows:
        left = 0
        for x0, x1, x_factor, width in columns:
            piece = image.reduce((x_factor, y_factor), box=(x0, y0, x1, y1))
            small.paste(piece, (left, top))
            left += width
        top += height
    return small.transpose(turn)


# Turns that run along a source axis backwards: there the partial box comes first.
_REVERSES_X = frozenset(
    {
        Image.Transpose.FLIP_LEFT_RIGHT,
        Image.Transpose.ROTATE_90,
        Image.Transpose.ROTATE_180,
        Image.Transpose.TRANSVERSE,
    }
)
_REVERSES_Y = frozenset(
    {
        Image.Transpose.FLIP_TOP_BOTTOM,
        Image.Transpose.ROTATE_180,
        Image.Transpose.ROTATE_270,
        Image.Transpose.TRANSVERSE,
    }
)


def _box_runs(length: int, factor: int, partial_first: bool) -> list[tuple[int, int, int, int]]:
    """(start, stop, box size, output pixels) of the runs of whole boxes and the partial box
    along one axis of ``length`` pixels."""
    whole, rest = divmod(length, factor)
    if not rest:
        return [(0, length, factor, whole)]
    if partial_first:
        runs = [(0, rest, rest, 1)]
        if whole:
            runs.append((rest, length, factor, whole))
        return runs
    runs = [(0, whole * factor, factor, whole)] if whole else []
    return [*runs, (whole * factor, length, rest, 1)]


def encode_jpeg(image: Image.Image, quality: int, icc_profile: bytes | None = None) -> bytes:
    """Re-encode pixels as a baseline JPEG. Only the colour profile is kept: no EXIF, XMP,
    comments or thumbnails, whatever ``image.info`` holds."""
    options: dict[str, Any] = {"quality": quality, "exif": b"", "xmp": b"", "comment": b""}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if not hasattr(os, "memfd_create"):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", **options)
        return buffer.getvalue()
    # Pillow encodes into a file descriptor with the GIL released, but into a BytesIO holding
    # it: a reviewer-copy encode would stop every other request's Python code while it runs.
    # So encode into an anonymous in-memory file (never on disk) and read the bytes back.
    with open(os.memfd_create("freshclaim-jpeg", os.MFD_CLOEXEC), "w+b", buffering=0) as file:
        image.save(file, "JPEG", **options)
        file.seek(0)
        return file.read()
