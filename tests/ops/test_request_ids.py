"""Request ids and log lines: ``X-Request-ID`` is accepted (short and printable) or generated,
echoed on every response, errors included, and carried into the request's log records (its
threadpool work too); one access line per request names the route template, status, duration
and the caller's kind, never its credential."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient

from claims_api.container import Container
from claims_api.main import create_app
from claims_api.observability import (
    JsonFormatter,
    RequestIdFilter,
    accepted_request_id,
    configure_logging,
)

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    return caplog


def test_a_request_id_is_generated_or_accepted_and_echoed(client) -> None:
    assert GENERATED.fullmatch(client.get("/healthz").headers["x-request-id"])
    given = client.get("/healthz", headers={"X-Request-ID": "gw-7f3a:42"})
    assert given.headers["x-request-id"] == "gw-7f3a:42"
    for unusable in ("x" * 129, "two words", "", "caf\u00e9".encode()):
        echoed = client.get("/healthz", headers={"X-Request-ID": unusable})
        assert GENERATED.fullmatch(echoed.headers["x-request-id"]), unusable


@pytest.mark.parametrize("header", ["a", "A-b_c.d:e/f+g=h@i", "x" * 128])
def test_short_printable_ids_are_kept(header: str) -> None:
    assert accepted_request_id(header) == header


def test_errors_carry_the_request_id_too(client) -> None:
    headers = {"X-Request-ID": "req-err-1"}
    answers = [
        client.post("/v1/claims", json={}, headers=headers),  # 401
        client.get("/no/such/path", headers=headers),  # 404, no route
        client.post(  # 422, from the validation handler
            "/v1/auth/login", content=b"{", headers={**headers, "Content-Type": "application/json"}
        ),
    ]
    assert [a.status_code for a in answers] == [401, 404, 422]
    assert all(a.headers["x-request-id"] == "req-err-1" for a in answers)


def test_an_unhandled_error_is_a_500_with_the_request_id(
    container: Container, logged: pytest.LogCaptureFixture
) -> None:
    app = create_app(container=container)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert answer.headers["x-request-id"] == "req-500"
    failure = next(r for r in logged.records if r.exc_info)
    assert failure.request_id == "req-500"


def test_records_logged_in_the_threadpool_carry_the_request_id(
    container: Container, logged: pytest.LogCaptureFixture
) -> None:
    app = create_app(container=container)

    @app.get("/work")
    def work() -> dict:  # a plain def: FastAPI runs it on a worker thread
        logging.getLogger("claims_api.test").info("working")
        return {}

    with TestClient(app) as client:
        answer = client.get("/work")
    working = next(r for r in logged.records if r.getMessage() == "working")
    assert working.request_id == answer.headers["x-request-id"]


def test_one_access_line_per_request_without_credentials(
    api, logged: pytest.LogCaptureFixture
) -> None:
    customer = api.customer("pat")
    token = customer["Authorization"].split()[1]
    logged.clear()
    answer = api.claim(customer, ["pho_x"], order_id="nope")
    assert answer.status_code == 404
    lines = [r for r in logged.records if r.name == "claims_api.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line.request_id == answer.headers["x-request-id"]
    assert line.http["method"] == "POST"
    assert line.http["route"] == "/v1/claims"
    assert line.http["status"] == 404
    assert line.http["principal"] == "customer"
    assert line.http["duration_ms"] >= 0
    formatted = JsonFormatter().format(line)
    assert token not in formatted and api.shop_key not in logged.text
    assert json.loads(formatted)["http"]["route"] == "/v1/claims"


def test_probes_log_at_debug_only(client, logged: pytest.LogCaptureFixture) -> None:
    client.get("/healthz")
    assert not [r for r in logged.records if r.name == "claims_api.access"]


def test_the_json_formatter_writes_one_object_a_line() -> None:
    record = logging.makeLogRecord(
        {"name": "claims_api.x", "levelname": "INFO", "msg": "a %s", "args": ("b",)}
    )
    record.request_id = "r1"
    record.http = {"status": 200}
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "a b"
    assert document["request_id"] == "r1"
    assert document["http"] == {"status": 200}
    assert document["level"] == "info" and document["logger"] == "claims_api.x"


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_log_format_switches_the_stream(log_format: str, capsys) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(log_format)
        logging.getLogger("claims_api.test").info("hello")
    finally:
        root.handlers, _ = saved[0], root.setLevel(saved[1])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    if log_format == "json":
        assert json.loads(line)["message"] == "hello"
    else:
        assert line.endswith("claims_api.test [None] hello")
