"""Property-based: whatever schemathesis sends that the OpenAPI schema allows (and much that it
does not), the API answers without a 5xx, and every 4xx carries the error shape."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from claims_api.auth.service import create_api_key, create_reviewer
from claims_api.config import Settings
from claims_api.container import build_container
from claims_api.main import create_app
from claims_api.migrate import upgrade
from tests.conftest import migrated_postgres_schema


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_url(request, tmp_path_factory) -> Iterator[str]:
    """Both backends: PostgreSQL refuses values SQLite stores (a NUL character, say)."""
    if request.param == "postgres":
        with migrated_postgres_schema() as url:
            yield url
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz-db') / 'fuzz.db'}"
    upgrade(url)
    yield url


@pytest.fixture(scope="module")
def fuzz_env(fuzz_url, tmp_path_factory, tiny_model_path):
    home = tmp_path_factory.mktemp("fuzz")
    url = fuzz_url
    container = build_container(
        Settings(
            home=home,
            database_url=url,
            model_path=tiny_model_path,
            secret_key="fuzz-" + "k" * 40,
            background_workers=False,
        )
    )
    with container.db.session() as session:
        _, shop_key = create_api_key(session, "shop")
        create_reviewer(session, "fuzzer", "fuzz-password-1")
    app = create_app(container=container)
    with TestClient(app) as client:
        shop = {"Authorization": f"Bearer {shop_key}"}
        client.put(
            "/v1/orders/ord-1",
            headers=shop,
            json={
                "customer_id": "cust-1",
                "delivered_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                "lines": [
                    {
                        "line_id": "L1",
                        "sku": "S",
                        "produce": "apple",
                        "quantity": 3,
                        "unit_price_cents": 100,
                    }
                ],
            },
        )
        customer = client.post("/v1/customers/cust-1/tokens", headers=shop).json()["token"]
        reviewer = client.post(
            "/v1/auth/login", json={"username": "fuzzer", "password": "fuzz-password-1"}
        ).json()
        yield (
            app,
            {
                "shop": shop,
                "customer": {"Authorization": f"Bearer {customer}", "Idempotency-Key": "fuzz-key"},
                "reviewer": {"Authorization": f"Bearer {reviewer['token']}"},
            },
        )
    container.db.dispose()


def _operation_labels() -> list[str]:
    routes_only = create_app(Settings())  # the schema needs routes, not a database
    schema = schemathesis.openapi.from_dict(routes_only.openapi())
    return [result.ok().label for result in schema.get_all_operations()]


def _role(path: str) -> str:
    if path.startswith(("/v1/review", "/v1/auth")):
        return "reviewer"
    if path.startswith(("/v1/claims", "/v1/photos")):
        return "customer"
    return "shop"


@pytest.mark.parametrize("label", _operation_labels())
def test_no_server_errors_and_errors_have_a_shape(label, fuzz_env):
    app, headers_by_role = fuzz_env
    operation = schemathesis.openapi.from_asgi("/openapi.json", app).find_operation_by_label(label)

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def check(case):
        headers = {**headers_by_role[_role(case.path)], **(case.headers or {})}
        response = case.call(headers=headers)
        assert response.status_code < 500, (label, response.status_code, response.text[:300])
        if 400 <= response.status_code < 500 and response.status_code != 405:
            error = response.json()["error"]
            assert error["code"] and error["message"]

    check()
