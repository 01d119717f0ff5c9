"""Bad input gets a clear 4xx with a machine-readable code, never a 500, and nothing is
half-written."""

from __future__ import annotations

import struct
import zlib

import pytest
from sqlalchemy import func, select

from claims_api.claims.models import Claim, IdempotencyRecord
from claims_api.photos.models import Photo
from data.synthetic import make_fruit
from tests.support.api import jpeg_bytes


def _png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _rows(container, model) -> int:
    with container.db.read_session() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(
    ("name", "payload", "status", "code"),
    [
        ("empty", b"", 400, "empty_file"),
        ("text named .jpg", b"this is not a photo, just text\n" * 20, 415, "unsupported_format"),
        ("truncated jpeg", jpeg_bytes(make_fruit())[:600], 422, "corrupt_image"),
        ("png declaring 30000x30000", _png_declaring(30000, 30000), 413, "image_too_large"),
    ],
)
def test_hostile_uploads_are_refused_cleanly(api, container, name, payload, status, code):
    customer = api.customer()
    response = api.upload(customer, payload)
    assert response.status_code == status, (name, response.text)
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert _rows(container, Photo) == 0


def test_upload_over_the_byte_limit_is_refused(api, container):
    container.settings.max_upload_bytes = 50_000
    customer = api.customer()
    response = api.upload(customer, b"\xff\xd8\xff" + b"\0" * 60_000)
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    assert _rows(container, Photo) == 0


def test_missing_file_field_is_a_422_in_the_error_shape(api):
    response = api.client.post("/v1/photos", headers=api.customer(), data={"x": "y"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"line_id": "NOPE"}, 422, "unknown_line"),
        ({"quantity": 6}, 422, "quantity_exceeds_line"),
        ({"order_id": "missing"}, 404, "order_not_found"),
        ({"photo_ids": ["pho_doesnotexist"]}, 404, "photo_not_found"),
        ({"quantity": 0}, 422, "validation_error"),
        ({"issue": "ugly"}, 422, "validation_error"),
        ({"photo_ids": []}, 422, "validation_error"),
    ],
)
def test_invalid_claims_are_refused_and_nothing_is_written(api, container, change, status, code):
    api.put_order(quantity=5)
    customer = api.customer()
    photo = api.upload_fruit(customer)
    args = {"photo_ids": [photo], **change}
    response = api.claim(customer, **args)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert _rows(container, Claim) == 0
    assert _rows(container, IdempotencyRecord) == 0


@pytest.mark.parametrize(
    ("key", "code"), [(None, "idempotency_key_required"), ("k" * 201, "invalid_idempotency_key")]
)
def test_claim_without_a_usable_idempotency_key_is_refused(api, container, key, code):
    api.put_order()
    customer = api.customer()
    response = api.client.post(
        "/v1/claims",
        headers={**customer, **({"Idempotency-Key": key} if key else {})},
        json={
            "order_id": "ord-1",
            "line_id": "L1",
            "issue": "rotten",
            "affected_quantity": 1,
            "photo_ids": [api.upload_fruit(customer)],
        },
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert _rows(container, Claim) == 0


def test_malformed_json_is_a_422(api):
    response = api.client.post(
        "/v1/claims",
        headers={**api.customer(), "Idempotency-Key": "k", "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert response.status_code == 422


def test_order_upsert_is_idempotent_and_protects_claimed_lines(api):
    first = api.put_order(quantity=5)
    second = api.put_order(quantity=5)
    assert first["lines"] == second["lines"]
    customer = api.customer()
    api.claim(customer, [api.upload_fruit(customer)])
    body = {
        "customer_id": "cust-1",
        "delivered_at": first["delivered_at"],
        "lines": [
            {
                "line_id": "L1",
                "sku": "SKU-apple",
                "produce": "apple",
                "quantity": 5,
                "unit_price_cents": 9999,
            }
        ],
    }
    changed = api.client.put("/v1/orders/ord-1", json=body, headers=api.shop_headers())
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "line_has_claims"
    naive = {**body, "delivered_at": "2026-11-01T10:00:00"}
    assert (
        api.client.put("/v1/orders/ord-x", json=naive, headers=api.shop_headers()).status_code
        == 422
    )


def test_nul_characters_are_never_a_500(api, client, backend):
    """PostgreSQL refuses NUL in text (422 invalid_value); SQLite stores it."""
    customer = api.customer()
    api.put_order()
    answers = {
        "order id": client.get("/v1/orders/ord%001", headers=api.shop_headers()),
        "order body": client.put(
            "/v1/orders/ord-2",
            headers=api.shop_headers(),
            json={
                "customer_id": "cust\u00001",
                "delivered_at": "2026-12-01T08:00:00+00:00",
                "lines": [
                    {
                        "line_id": "L1",
                        "sku": "S\u0000",
                        "produce": "apple",
                        "quantity": 1,
                        "unit_price_cents": 100,
                    }
                ],
            },
        ),
        "claim": api.claim(customer, ["pho_\u0000"], order_id="ord\u00001"),
        "login": client.post("/v1/auth/login", json={"username": "a\u0000", "password": "x"}),
        "photo form": api.upload(
            customer,
            jpeg_bytes(make_fruit("apple", rotten=True)),
            order_id="ord\x001",
            line_id="L1",
        ),
    }
    for what, answer in answers.items():
        assert answer.status_code < 500, (backend, what, answer.status_code, answer.text)
        if backend == "postgres":
            assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text)
            assert answer.json()["error"]["code"], what
    if backend == "postgres":
        assert answers["order body"].json()["error"]["code"] == "invalid_value"
