"""Upload processing: hostile files are refused cheaply and clearly, good photos come out
upright, RGB, small for the model and re-encoded without any metadata for storage."""

from __future__ import annotations

import io
import os
import struct
import zlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, features

from claims_api.photos.imaging import (
    _ORIENTATION_TRANSPOSE,
    ImageLimits,
    PhotoRejected,
    ProcessedPhoto,
    _decode_in_one_call,
    encode_jpeg,
    parse_exif_datetime,
    parse_exif_offset,
    process_upload,
    shrink_fast,
    sniff_format,
)
from claims_api.photos.quality import edge_tiles
from data.synthetic import make_fruit
from tests.support.paths import REPO

TAG_ORIENTATION, TAG_SOFTWARE, TAG_MAKE, TAG_MODEL = 0x0112, 0x0131, 0x010F, 0x0110
EXIF_IFD, GPS_IFD = 0x8769, 0x8825


def dataset_dir() -> Path:
    default = REPO.parent / "shared" / "datasets" / "produce"
    return Path(os.environ.get("FRESHCLAIM_DATASET_DIR", default))


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose valid IHDR declares ``width``×``height`` with one tiny IDAT: decoding it
    would need width*height*3 bytes; refusing it must not."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def phone_jpeg_with_gps(size=(640, 480), orientation: int = 6) -> bytes:
    exif = Image.Exif()
    exif[TAG_ORIENTATION] = orientation
    exif[TAG_SOFTWARE] = "Adobe Photoshop 25.0"
    exif[TAG_MAKE] = "Apple"
    exif[TAG_MODEL] = "iPhone 15"
    exif.get_ifd(EXIF_IFD)[0x9003] = "2026:11:24 18:05:09"  # DateTimeOriginal
    exif.get_ifd(EXIF_IFD)[0x9011] = "+08:00"  # OffsetTimeOriginal
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (31.0, 13.0, 48.0)
    gps[3], gps[4] = "E", (121.0, 28.0, 12.0)
    # A landscape sensor image whose left half is red, right half blue.
    image = make_fruit(size=size, seed=3)
    pixels = np.asarray(image).copy()
    pixels[:, : size[0] // 2] = (220, 20, 20)
    pixels[:, size[0] // 2 :] = (20, 20, 220)
    return encode(Image.fromarray(pixels), quality=92, exif=exif.tobytes())


# --- hostile files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code", "status"),
    [
        (b"", "empty_file", 400),
        (b"hello, this is a text file named photo.jpg\n", "unsupported_format", 415),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "unsupported_format", 415),
        (b"\xff\xd8\xff", "corrupt_image", 422),
        (b"\x89PNG\r\n\x1a\n", "corrupt_image", 422),
    ],
)
def test_refuses_hostile_bytes(data: bytes, code: str, status: int) -> None:
    with pytest.raises(PhotoRejected) as info:
        process_upload(data)
    assert (info.value.code, info.value.status) == (code, status)
    assert info.value.message.endswith(".")


def test_refuses_png_declaring_30000_square_before_decoding() -> None:
    data = png_declaring(30_000, 30_000)
    assert len(data) < 200
    with pytest.raises(PhotoRejected) as info:
        process_upload(data)
    assert info.value.code == "image_too_large"
    assert info.value.status == 413


def test_pixel_limit_is_configurable_and_checked_on_the_header() -> None:
    data = png_declaring(5000, 4000)  # 20 MP, and far too little IDAT for it
    with pytest.raises(PhotoRejected) as info:
        process_upload(data, ImageLimits(max_pixels=10_000_000))
    assert info.value.code == "image_too_large"


def test_refuses_over_byte_limit_before_looking_at_it() -> None:
    data = encode(make_fruit(size=(320, 240)))
    with pytest.raises(PhotoRejected) as info:
        process_upload(data, ImageLimits(max_bytes=len(data) - 1))
    assert (info.value.code, info.value.status) == ("file_too_large", 413)


def test_truncated_jpeg_is_corrupt() -> None:
    data = encode(make_fruit(size=(640, 480)), quality=90)
    with pytest.raises(PhotoRejected) as info:
        process_upload(data[: len(data) // 2])
    assert (info.value.code, info.value.status) == ("corrupt_image", 422)


def test_format_is_sniffed_not_trusted() -> None:
    assert sniff_format(encode(make_fruit(size=(64, 48)), "PNG")) == "PNG"
    assert sniff_format(encode(make_fruit(size=(64, 48)), "WEBP")) == "WEBP"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None
    assert sniff_format(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom") is None


_SMALL_JPEG = encode(make_fruit(size=(96, 72), seed=1), quality=80)
_SMALL_PNG = encode(make_fruit(size=(48, 36), seed=2), "PNG")
_SMALL_WEBP = encode(make_fruit(size=(64, 48), seed=3), "WEBP", quality=70)


def _outcome(data: bytes) -> ProcessedPhoto | PhotoRejected:
    try:
        return process_upload(data)
    except PhotoRejected as rejected:
        assert rejected.status in (400, 413, 415, 422)
        return rejected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=512))
def test_fuzz_random_bytes_never_crash(data: bytes) -> None:
    _outcome(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_SMALL_JPEG, _SMALL_PNG, _SMALL_WEBP]),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_fuzz_truncated_files_never_crash(data: bytes, keep: float) -> None:
    _outcome(data[: int(len(data) * keep)])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([_SMALL_JPEG, _SMALL_PNG, _SMALL_WEBP]),
    st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_fuzz_corrupted_bytes_never_crash(data: bytes, edits: list[tuple[int, int]]) -> None:
    mutable = bytearray(data)
    for position, value in edits:
        mutable[position % len(mutable)] = value
    _outcome(bytes(mutable))


@pytest.mark.parametrize("size", [(256, 42240), (42240, 256), (50000, 100), (20000, 2)])
@pytest.mark.parametrize("orientation", [1, 6])
def test_long_thin_photos_are_judged_not_crashed_on(
    size: tuple[int, int], orientation: int
) -> None:
    # Found by mutating real JPEGs: a header declaring 256x42240 (under the pixel limit) made
    # the small image 2 px wide, too narrow for the blur tiles' 6x8 grid: a 500, not an answer.
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", size, (150, 90, 40)).save(buffer, "JPEG", quality=80, exif=exif.tobytes())
    result = process_upload(buffer.getvalue())
    upright = size if orientation == 1 else size[::-1]
    assert (result.width, result.height) == upright
    assert max(result.stored_width, result.stored_height) == 2048
    assert not result.quality.ok


# --- good photos -------------------------------------------------------------------------
# --- good photos -------------------------------------------------------------------------


def test_gps_never_stored_and_orientation_applied() -> None:
    result = process_upload(phone_jpeg_with_gps(size=(640, 480), orientation=6))
    # Orientation 6: the sensor image is turned 90° clockwise to be upright (portrait).
    assert (result.width, result.height) == (480, 640)
    assert (result.stored_width, result.stored_height) == (480, 640)
    assert result.small_image.mode == "RGB"
    assert result.small_image.height > result.small_image.width
    stored = Image.open(io.BytesIO(result.stored_bytes))
    assert stored.format == "JPEG"
    assert not stored.getexif()
    assert b"Exif" not in result.stored_bytes and b"GPS" not in result.stored_bytes
    assert b"http://ns.adobe.com/xap" not in result.stored_bytes
    # Sensor: red left, blue right. After turning 90° clockwise red is on top.
    top = np.asarray(stored.convert("RGB"))[10, stored.width // 2]
    bottom = np.asarray(stored.convert("RGB"))[-10, stored.width // 2]
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]
    # ... and what the EXIF said was read before it was dropped.
    facts = result.exif
    assert facts.gps_present and facts.orientation == 6
    assert facts.software == "Adobe Photoshop 25.0"
    assert (facts.make, facts.model) == ("Apple", "iPhone 15")
    assert facts.captured_at == datetime(2026, 11, 24, 10, 5, 9, tzinfo=UTC)
    assert facts.captured_at_offset_known


def test_exif_time_without_offset_uses_the_default_zone() -> None:
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[0x9003] = "2026:11:24 18:05:09"
    data = encode(make_fruit(size=(320, 240)), exif=exif.tobytes())
    facts = process_upload(data, ImageLimits(exif_default_utc_offset_minutes=60)).exif
    assert facts.captured_at == datetime(
        2026, 11, 24, 18, 5, 9, tzinfo=timezone(timedelta(hours=1))
    )
    assert not facts.captured_at_offset_known
    assert not facts.gps_present and facts.software is None


def test_no_exif_is_normal() -> None:
    facts = process_upload(encode(make_fruit(size=(320, 240)))).exif
    assert facts.captured_at is None and not facts.gps_present and facts.orientation == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026:01:02 03:04:05", datetime(2026, 1, 2, 3, 4, 5)),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("garbage", None),
        (None, None),
    ],
)
def test_parse_exif_datetime(text: str | None, expected: datetime | None) -> None:
    parsed = parse_exif_datetime(text, UTC)
    assert parsed == (expected.replace(tzinfo=UTC) if expected else None)


def test_parse_exif_offset() -> None:
    assert parse_exif_offset("-05:30") == timezone(-timedelta(hours=5, minutes=30))
    assert parse_exif_offset("+8") is None and parse_exif_offset("+99:00") is None


def test_large_jpeg_is_draft_decoded_to_the_stored_size() -> None:
    # A cheap 12-MP photo: nearest-neighbour upscaling keeps its edges sharp.
    sharp = make_fruit(size=(1008, 756), seed=5).resize((4032, 3024), Image.Resampling.NEAREST)
    data = encode(sharp, quality=85)
    result = process_upload(data)
    assert (result.width, result.height) == (4032, 3024)
    # 1/2-scale DCT decode: 2016 px, stored as is (no full decode, no resize).
    assert (result.stored_width, result.stored_height) == (2016, 1512)
    assert max(result.small_image.size) <= ImageLimits().small_max_side
    assert set(result.timings_ms) >= {"sniff", "header", "decode", "encode", "quality", "total"}
    # (An upscaled photo is rightly "too_blurry" at 2016 px: see tests/photos/test_quality.py.)


@pytest.mark.parametrize("size", [(2016, 1512), (1001, 757), (757, 1001), (333, 100)])
def test_small_image_and_blur_tiles_made_without_turning_the_large_image(
    size: tuple[int, int],
) -> None:
    # The decoded image is turned upright only for the stored copy: the small image and the
    # blur tiles come from the un-turned pixels and must equal what the turned image gives.
    rng = np.random.default_rng(size[0])
    decoded = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8))
    for turn in _ORIENTATION_TRANSPOSE.values():
        upright = decoded.transpose(turn)
        for side in (320, 97):
            expected = shrink_fast(upright, side)
            small = shrink_fast(decoded, side, turn)
            assert (small.size, small.tobytes()) == (expected.size, expected.tobytes()), turn
        small = shrink_fast(upright, 320)
        expected_tiles = edge_tiles(upright, small, side=192)
        tiles = edge_tiles(decoded, small, side=192, turn=turn)
        assert [(t.size, t.tobytes()) for t in tiles] == [
            (t.size, t.tobytes()) for t in expected_tiles
        ], turn


def test_jpeg_is_decoded_in_one_call_to_the_same_pixels(monkeypatch) -> None:
    data = encode(make_fruit(size=(1600, 1200), seed=4), quality=95)
    assert len(data) > 2 * 65536
    expected = Image.open(io.BytesIO(data))
    expected.load()
    calls = []
    original = Image._getdecoder

    def counting(*args, **kwargs):
        decoder = original(*args, **kwargs)
        return _Counted(decoder, calls)

    monkeypatch.setattr(Image, "_getdecoder", counting)
    image = Image.open(io.BytesIO(data))
    _decode_in_one_call(image, len(data))
    image.load()
    assert len(calls) == 1 and image.tobytes() == expected.tobytes()


class _Counted:
    def __init__(self, decoder, calls: list) -> None:
        self._decoder, self._calls = decoder, calls

    def decode(self, buffer):
        self._calls.append(len(buffer))
        return self._decoder.decode(buffer)

    def __getattr__(self, name):
        return getattr(self._decoder, name)


def test_stored_side_limit_is_honoured_for_non_jpeg() -> None:
    data = encode(make_fruit(size=(1200, 900)), "PNG")
    result = process_upload(data, ImageLimits(stored_max_side=800))
    assert (result.width, result.height) == (1200, 900)
    assert max(result.stored_width, result.stored_height) <= 800
    assert result.format == "png"


def test_alpha_is_composited_on_white() -> None:
    image = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (100, 50, 200, 150))
    result = process_upload(encode(image, "PNG"))
    pixels = np.asarray(result.small_image)
    assert tuple(pixels[5, 5]) == (255, 255, 255)
    assert pixels[100, 150][0] > 180 and pixels[100, 150][1] < 40


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "I;16", "1", "LA"])
def test_every_mode_becomes_rgb(mode: str) -> None:
    base = make_fruit(size=(320, 240), seed=7)
    if mode == "I;16":
        wide = np.asarray(base.convert("L"), dtype=np.uint16) * np.uint16(257)
        image = Image.fromarray(wide)  # uint16 -> mode I;16, saved as a 16-bit PNG
    else:
        image = base.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    result = process_upload(encode(image, fmt))
    assert result.small_image.mode == "RGB"
    if mode == "I;16":  # 16-bit values are scaled, not clipped to white
        assert 60 < np.asarray(result.small_image).mean() < 230


def test_webp_and_heif_are_accepted() -> None:
    webp = process_upload(encode(make_fruit(size=(400, 300)), "WEBP", quality=80))
    assert webp.format == "webp" and (webp.width, webp.height) == (400, 300)
    heif = process_upload(encode(make_fruit(size=(400, 300)), "HEIF", quality=80))
    assert heif.format == "heif" and (heif.width, heif.height) == (400, 300)


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF decoder")
def test_avif_is_told_from_heif_and_turned_upright() -> None:
    # An AVIF names the generic HEIF brand (mif1) too: sniffed as HEIF it went to pillow-heif,
    # which has no AV1 decoder here, and a good photo came back "damaged" (422).
    sensor = Image.new("RGB", (64, 48), (220, 20, 20))
    sensor.paste((20, 20, 220), (32, 0, 64, 48))  # red left, blue right
    exif = Image.Exif()
    exif[TAG_ORIENTATION] = 6
    data = encode(sensor, "AVIF", quality=90, exif=exif.tobytes())
    assert b"mif1" in data[:32]
    result = process_upload(data)
    assert result.format == "avif" and (result.width, result.height) == (48, 64)
    top, bottom = result.small_image.getpixel((24, 5)), result.small_image.getpixel((24, 58))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]


def test_heif_orientation_is_applied_once_and_reported() -> None:
    sensor = Image.new("RGB", (64, 48), (220, 20, 20))
    sensor.paste((20, 20, 220), (32, 0, 64, 48))  # red left, blue right
    exif = Image.Exif()
    exif[TAG_ORIENTATION] = 6
    result = process_upload(encode(sensor, "HEIF", quality=90, exif=exif.tobytes()))
    assert (result.width, result.height) == (48, 64)
    assert result.exif.orientation == 6
    top, bottom = result.small_image.getpixel((24, 5)), result.small_image.getpixel((24, 58))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]  # turned once, clockwise


def test_content_addresses() -> None:
    data = encode(make_fruit(size=(320, 240)))
    first, second = process_upload(data), process_upload(data)
    assert first.stored_sha256 == second.stored_sha256 and len(first.stored_sha256) == 64
    assert first.original_sha256 != first.stored_sha256


def test_stored_copy_encode_matches_pillows_in_memory_encode() -> None:
    # encode_jpeg writes into an in-memory file (so Pillow releases the GIL): same bytes as
    # Pillow's BytesIO path, colour profile kept, nothing else.
    image = make_fruit(size=(640, 480))
    profile = b"\x00" * 128
    expected = io.BytesIO()
    image.save(expected, "JPEG", quality=85, exif=b"", xmp=b"", comment=b"", icc_profile=profile)
    data = encode_jpeg(image, 85, profile)
    assert data == expected.getvalue()
    stored = Image.open(io.BytesIO(data))
    assert stored.size == (640, 480) and stored.info.get("icc_profile") == profile
    assert not stored.getexif() and "comment" not in stored.info


@pytest.mark.dataset
def test_real_photos_pass_through() -> None:
    folder = dataset_dir()
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"shared produce dataset not found at {folder} (set FRESHCLAIM_DATASET_DIR)")
    every = sorted((folder / "images").glob("*/*.jpg"))
    paths = every[:: max(1, len(every) // 40)]
    assert paths
    for path in paths:
        result = process_upload(path.read_bytes())
        assert result.format == "jpeg"
        assert result.quality.ok, (path.name, result.quality.problems)
        assert result.small_image.mode == "RGB"


def test_alongside_work_runs_on_the_small_image_while_the_stored_copy_is_encoded() -> None:
    """The service scores the photo in process_upload's ``alongside`` hook: it gets the very
    small image the photo keeps, exactly once, after the quality gate, and its result (or
    its error, unwrapped) comes back."""
    data = encode(make_fruit(size=(1600, 1200), seed=2), quality=90)
    seen: list[Image.Image] = []

    def alongside(small: Image.Image) -> tuple[int, int]:
        seen.append(small)
        return small.size

    result = process_upload(data, alongside=alongside)

    assert len(seen) == 1 and seen[0] is result.small_image
    assert result.alongside_result == result.small_image.size
    assert list(result.timings_ms).index("alongside") > list(result.timings_ms).index("quality")
    assert process_upload(data).alongside_result is None

    def failing(_: Image.Image) -> None:
        raise LookupError("model gone")

    with pytest.raises(LookupError, match="model gone"):
        process_upload(data, alongside=failing)
