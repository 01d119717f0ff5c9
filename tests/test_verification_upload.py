"""Upload-time problems and claim-time signals agree (issue 4, signals 3 and 4): what
``POST /v1/photos`` tells the customer is judged at claim time by the signal of the same
meaning, never twice and never under another name."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance

from data.synthetic import make_fruit
from tests.support.api import jpeg_bytes
from tests.support.real_photos import jpeg, photo_bytes


def _upload(api, headers, data: bytes, **form: str) -> dict:
    response = api.upload(headers, data, **form)
    assert response.status_code == 201, response.text
    return response.json()


def _claim_signals(api, headers, photo_id: str) -> tuple[dict, dict[str, dict]]:
    response = api.claim(headers, [photo_id])
    assert response.status_code == 201, response.text
    claim = response.json()
    report = api.client.get(f"/v1/claims/{claim['id']}/verification", headers=api.reviewer())
    return claim, {s["code"]: s for s in report.json()["signals"]}


def _codes(items: list[dict]) -> list[str]:
    return [item["code"] for item in items]


def test_a_wrong_item_at_upload_is_a_produce_mismatch_at_claim_time(api):
    api.put_order(produce="apple")
    customer = api.customer()
    photo = _upload(
        api,
        customer,
        jpeg_bytes(make_fruit("banana", rotten=True)),
        order_id="ord-1",
        line_id="L1",
    )
    assert _codes(photo["quality"]["problems"]) == ["wrong_item"]

    claim, signals = _claim_signals(api, customer, photo["id"])

    assert signals["produce_mismatch"]["fired"] is True
    assert signals["photo_quality"]["fired"] is False
    assert "photo_quality" not in _codes(claim["decision"]["reasons"])


def test_not_produce_at_upload_is_not_produce_at_claim_time(api):
    api.put_order()
    customer = api.customer()
    rng = np.random.default_rng(3)
    grey = rng.normal(150, 25, size=(480, 640, 1)).repeat(3, axis=2).clip(0, 255)
    photo = _upload(api, customer, jpeg_bytes(Image.fromarray(grey.astype(np.uint8))))
    assert _codes(photo["quality"]["problems"]) == ["not_produce"]

    claim, signals = _claim_signals(api, customer, photo["id"])

    assert signals["not_produce"]["fired"] is True
    assert signals["photo_quality"]["fired"] is False
    assert "not_produce" in _codes(claim["decision"]["reasons"])


def test_a_dark_real_photo_fails_the_quality_gate_at_upload_and_at_claim_time(api):
    api.put_order()
    customer = api.customer()
    real = Image.open(io.BytesIO(photo_bytes("apple", 6))).convert("RGB")
    dark = jpeg(ImageEnhance.Brightness(real).enhance(0.2))
    photo = _upload(api, customer, dark)
    assert "too_dark" in _codes(photo["quality"]["problems"])

    claim, signals = _claim_signals(api, customer, photo["id"])

    signal = signals["photo_quality"]
    assert signal["fired"] is True and signal["value"] == 1
    assert "too_dark" in signal["details"]["problems"][photo["id"]]
    assert "photo_quality" in _codes(claim["decision"]["reasons"])
