"""Upload-time problems and claim-time signals agree: what
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
    assert "photo_quality" not in api.reasons(claim)


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
    assert "not_produce" in api.reasons(claim)


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
    assert "photo_quality" in api.reasons(claim)


def _dark(image: Image.Image) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(0.15)


GATE_CASES = [
    ("rotten apple on an apple line", make_fruit("apple", rotten=True, seed=11), "apple"),
    ("fresh apple on an apple line", make_fruit("apple", rotten=False, seed=12), "apple"),
    ("rotten banana on an apple line", make_fruit("banana", rotten=True, seed=13), "apple"),
    ("dark rotten apple", _dark(make_fruit("apple", rotten=True, seed=14)), "apple"),
    ("rotten tomato on a durian line", make_fruit("tomato", rotten=True, seed=15), "durian"),
]


def test_upload_claim_and_predict_give_the_same_gate_answer(api, settings, tmp_path):
    """One photo, one ordered produce: the upload's retake answer, the claim decision's photo
    reasons and ``freshclaim predict`` are the same gate's answer."""
    import json

    from typer.testing import CliRunner

    from claims_api.cli import app
    from claims_api.rules.gate import GATE_CODES, RETAKE_CODES

    runner = CliRunner()
    routes = set()
    for number, (name, image, ordered) in enumerate(GATE_CASES):
        data = jpeg_bytes(image)
        order_id, customer_id = f"ord-gate-{number}", f"cust-gate-{number}"
        api.put_order(order_id, customer_id=customer_id, produce=ordered)
        customer = api.customer(customer_id)
        photo = _upload(api, customer, data, order_id=order_id, line_id="L1")
        response = api.claim(customer, [photo["id"]], order_id=order_id)
        assert response.status_code == 201, response.text
        claim = response.json()
        report = api.client.get(f"/v1/claims/{claim['id']}/verification", headers=api.reviewer())
        fired = [s["code"] for s in report.json()["signals"] if s["fired"]]

        path = tmp_path / f"{number}.jpg"
        path.write_bytes(data)
        args = ["predict", "--json", "--model", str(settings.model_path), "--produce", ordered]
        result = runner.invoke(app, [*args, str(path)])
        assert result.exit_code == 0, result.output
        predicted = json.loads(result.output.strip().splitlines()[-1])

        gate_fired = [code for code in fired if code in GATE_CODES]
        assert sorted(predicted["reasons"]) == sorted(gate_fired), name
        assert predicted["auto_approvable"] is (not gate_fired), name
        # nothing but the photo decides these claims, so the route is the gate's answer
        assert fired == gate_fired, name
        route = api.staff_view(claim)["decision"]["route"]
        assert (route == "auto") is predicted["auto_approvable"], name
        retake = [RETAKE_CODES[code] for code in predicted["reasons"] if code in RETAKE_CODES]
        model_problems = [
            code for code in _codes(photo["quality"]["problems"]) if code in RETAKE_CODES.values()
        ]
        assert model_problems == retake, name
        routes.add(route)
    assert routes == {"auto", "manual"}, "the cases must cover both answers"
