"""A thin client for tests: the calls a shop backend, a mini-program and a reviewer make."""

from __future__ import annotations

import io
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from claims_api.auth.service import create_api_key, create_reviewer
from claims_api.container import Container
from data.synthetic import make_fruit


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


class Api:
    def __init__(self, client, container: Container) -> None:
        self.client = client
        self.container = container
        with container.db.session() as session:
            _, self.shop_key = create_api_key(session, "shop", "test shop")

    def shop_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.shop_key}"}

    def customer(self, customer_id: str = "cust-1") -> dict[str, str]:
        response = self.client.post(
            f"/v1/customers/{customer_id}/tokens", headers=self.shop_headers()
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def reviewer(self, username: str | None = None, role: str = "reviewer") -> dict[str, str]:
        username = username or f"rev-{secrets.token_hex(3)}"
        with self.container.db.session() as session:
            create_reviewer(session, username, "correct-horse-1", role)
        response = self.client.post(
            "/v1/auth/login", json={"username": username, "password": "correct-horse-1"}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def put_order(
        self,
        order_id: str = "ord-1",
        customer_id: str = "cust-1",
        produce: str = "apple",
        quantity: int = 5,
        unit_price_cents: int = 300,
        delivered_hours_ago: float = 2,
        **extra: Any,
    ) -> dict:
        body = {
            "customer_id": customer_id,
            "delivered_at": (datetime.now(UTC) - timedelta(hours=delivered_hours_ago)).isoformat(),
            "lines": [
                {
                    "line_id": "L1",
                    "sku": f"SKU-{produce}",
                    "produce": produce,
                    "quantity": quantity,
                    "unit_price_cents": unit_price_cents,
                }
            ],
            **extra,
        }
        response = self.client.put(f"/v1/orders/{order_id}", json=body, headers=self.shop_headers())
        assert response.status_code in (200, 201), response.text
        return response.json()

    def staff_view(self, claim: dict | str) -> dict:
        """The shop's full view of a claim: the customer's view plus the decision."""
        claim_id = claim if isinstance(claim, str) else claim["id"]
        response = self.client.get(f"/v1/claims/{claim_id}", headers=self.shop_headers())
        assert response.status_code == 200, response.text
        return response.json()

    def reasons(self, claim: dict | str) -> list[str]:
        return [r["code"] for r in self.staff_view(claim)["decision"]["reasons"]]

    def upload(
        self, headers: dict[str, str], data: bytes, filename: str = "photo.jpg", **form: str
    ):
        return self.client.post(
            "/v1/photos", headers=headers, files={"file": (filename, data, "image/jpeg")}, data=form
        )

    def upload_fruit(
        self, headers: dict[str, str], produce: str = "apple", rotten: bool = True, seed: int = 0
    ) -> str:
        response = self.upload(headers, jpeg_bytes(make_fruit(produce, rotten=rotten, seed=seed)))
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def claim(
        self,
        headers: dict[str, str],
        photo_ids: list[str],
        key: str | None = None,
        order_id: str = "ord-1",
        line_id: str = "L1",
        quantity: int = 2,
        **extra: Any,
    ):
        body = {
            "order_id": order_id,
            "line_id": line_id,
            "issue": "rotten",
            "affected_quantity": quantity,
            "photo_ids": photo_ids,
            **extra,
        }
        return self.client.post(
            "/v1/claims",
            json=body,
            headers={**headers, "Idempotency-Key": key or secrets.token_hex(8)},
        )
