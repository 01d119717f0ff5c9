"""Capture time and editing software from EXIF: a real photo re-saved
with Pillow's Exif API, uploaded and claimed through the HTTP API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from claims_api.rules.policy import Policy
from claims_api.rules.signals import editing_program
from tests.support.real_photos import photo_bytes, with_exif

CHINA = timezone(timedelta(hours=8))


def _delivered_at(api, order_id: str = "ord-1") -> datetime:
    order = api.put_order(order_id, delivered_hours_ago=30)
    return datetime.fromisoformat(order["delivered_at"])


def _claim_signals(api, data: bytes, order_id: str = "ord-1") -> tuple[dict, dict[str, dict]]:
    customer = api.customer()
    upload = api.upload(customer, data)
    assert upload.status_code == 201, upload.text
    response = api.claim(customer, [upload.json()["id"]], order_id=order_id)
    assert response.status_code == 201, response.text
    claim = response.json()
    report = api.client.get(f"/v1/claims/{claim['id']}/verification", headers=api.reviewer())
    return claim, {s["code"]: s for s in report.json()["signals"]}


def test_a_photo_taken_days_before_delivery_is_flagged(api):
    delivered = _delivered_at(api)
    captured = (delivered - timedelta(days=3)).astimezone(CHINA)

    claim, signals = _claim_signals(api, with_exif(photo_bytes("apple", 4), captured))

    signal = signals["captured_before_delivery"]
    assert signal["fired"] is True
    assert signal["value"] == pytest.approx(72, abs=0.02)
    assert signal["threshold"] == pytest.approx(0.5)  # 30 minutes, the offset is known
    [photo] = signal["details"]["photos"]
    assert photo["offset_known"] is True
    assert datetime.fromisoformat(photo["captured_at"]) == captured.replace(microsecond=0)
    assert "captured_before_delivery" in api.reasons(claim) and claim["status"] == "in_review"


def test_a_photo_taken_after_delivery_is_not_flagged(api):
    delivered = _delivered_at(api)
    captured = (delivered + timedelta(hours=3)).astimezone(CHINA)

    claim, signals = _claim_signals(api, with_exif(photo_bytes("apple", 4), captured))

    signal = signals["captured_before_delivery"]
    assert signal["fired"] is False
    assert signal["value"] == pytest.approx(-3, abs=0.02)
    assert "captured_before_delivery" not in api.reasons(claim)


def test_clock_skew_within_the_tolerance_is_not_flagged(api):
    delivered = _delivered_at(api)
    captured = (delivered - timedelta(minutes=20)).astimezone(CHINA)

    _, signals = _claim_signals(api, with_exif(photo_bytes("apple", 4), captured))

    assert signals["captured_before_delivery"]["fired"] is False


@pytest.mark.parametrize(("offset", "fired"), [(True, True), (False, False)])
def test_a_missing_utc_offset_widens_the_tolerance(api, offset, fired):
    """10 hours before delivery: flagged when EXIF says the zone; without it the time was read
    as UTC+8 and may be up to 20 hours early, so it is not."""
    delivered = _delivered_at(api)
    captured = (delivered - timedelta(hours=10)).astimezone(CHINA)

    _, signals = _claim_signals(api, with_exif(photo_bytes("apple", 4), captured, offset=offset))

    signal = signals["captured_before_delivery"]
    assert signal["fired"] is fired
    policy = Policy()
    widened = policy.capture_tolerance_minutes / 60 + policy.capture_unknown_offset_hours
    assert signal["threshold"] == pytest.approx(0.5 if offset else widened)


def test_missing_exif_is_not_a_flag(api):
    _delivered_at(api)

    claim, signals = _claim_signals(api, photo_bytes("apple", 4))

    for code in ("captured_before_delivery", "edited_photo"):
        assert signals[code]["fired"] is False
        assert code not in api.reasons(claim)
    assert signals["captured_before_delivery"]["value"] is None


@pytest.mark.parametrize(
    "software",
    ["Adobe Photoshop 25.0 (Windows)", "Snapseed 2.0", "美图秀秀".encode(), "PicsArt"],
    ids=["photoshop", "snapseed", "meitu-utf8", "picsart"],
)
def test_an_editing_program_in_software_is_flagged(api, software):
    _delivered_at(api)
    captured = datetime.now(UTC).astimezone(CHINA)

    claim, signals = _claim_signals(
        api, with_exif(photo_bytes("banana", 2), captured, software=software)
    )

    signal = signals["edited_photo"]
    assert signal["fired"] is True and signal["value"] == 1
    assert signal["details"]["photos"][0]["program"] in Policy().editing_software
    assert "edited_photo" in api.reasons(claim)


def test_camera_firmware_in_software_is_not_flagged(api):
    _delivered_at(api)

    _, signals = _claim_signals(
        api, with_exif(photo_bytes("banana", 2), software="HDR+ 1.0.540104767zd")
    )

    assert signals["edited_photo"]["fired"] is False


def test_the_editing_list_is_configurable():
    assert editing_program("MyEditor 3", ("myeditor",)) == "myeditor"
    assert editing_program("MyEditor 3", Policy().editing_software) is None
    assert editing_program("iOS 17.1", Policy().editing_software) is None
    assert editing_program(None, Policy().editing_software) is None
