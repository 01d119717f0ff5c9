"""A write is committed before its response leaves the server: an auto-approved claim is
``paid`` in the database (ledger written) by the time the client reads "paid".
FastAPI's default scope for yield dependencies ends them after the response is sent."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from claims_api.container import Container
from claims_api.main import create_app
from tests.support.api import Api

Check = Callable[[dict[str, Any]], None]


class CheckBeforeSend:
    """ASGI wrapper: when the body of a ``POST path`` response is about to be sent, run
    ``check`` on it (from a separate database connection) and remember what it saw."""

    def __init__(self, app: Any, path: str, check: Check) -> None:
        self.app, self.path, self.check = app, path, check
        self.checked = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        async def send_checked(message: dict) -> None:
            if (
                scope["type"] == "http"
                and scope["method"] == "POST"
                and scope["path"] == self.path
                and message["type"] == "http.response.body"
                and message.get("body")
            ):
                self.check(json.loads(message["body"]))
                self.checked += 1
            await send(message)

        await self.app(scope, receive, send_checked)


def _ledger_rows(url: str, claim_id: str) -> tuple[str | None, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            status = conn.execute(
                text("SELECT status FROM claims WHERE id = :id"), {"id": claim_id}
            ).scalar()
            postings = conn.execute(
                text("SELECT count(*) FROM ledger_postings WHERE claim_id = :id"), {"id": claim_id}
            ).scalar()
    finally:
        engine.dispose()
    return status, int(postings or 0)


def test_auto_approved_claim_is_paid_in_the_database_before_the_response(
    container: Container, database_url: str
) -> None:
    seen: list[tuple[str | None, int]] = []

    def check(body: dict[str, Any]) -> None:
        if body.get("status") == "paid":
            seen.append(_ledger_rows(database_url, body["id"]))

    wrapped = CheckBeforeSend(create_app(container=container), "/v1/claims", check)
    with TestClient(wrapped) as client:
        api = Api(client, container)
        api.put_order()
        customer = api.customer()
        claim = api.claim(customer, [api.upload_fruit(customer)])
    assert claim.status_code == 201, claim.text
    assert claim.json()["status"] == "paid"
    assert seen == [("paid", 1)], "the response was sent before the payout was committed"
