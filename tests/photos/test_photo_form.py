"""The upload form is read by ``claims_api.photos.form`` as the body arrives: what it keeps,
what it skips and how a broken or oversized form is answered."""

from __future__ import annotations

import asyncio
import json
import time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from python_multipart.multipart import MultipartParser

from claims_api.errors import ApiError
from claims_api.photos.form import MAX_PARTS, _PhotoFormReader
from data.synthetic import make_fruit
from tests.support.api import Api, jpeg_bytes

BOUNDARY = "freshclaim-test-boundary"


def _part(name: str, value: bytes, filename: str | None = None, extra: str = "") -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n"
    return head.encode() + value + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _post(api: Api, body: bytes, content_type: str | None = None):
    headers = api.customer() | {
        "Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}"
    }
    return api.client.post("/v1/photos", headers=headers, content=body)


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    return error


@pytest.fixture(scope="module")
def photo() -> bytes:
    return jpeg_bytes(make_fruit("apple", rotten=True, seed=11))


def test_the_file_part_is_read_whatever_else_the_form_carries(api: Api, photo: bytes) -> None:
    body = _body(
        _part("note", b"ignored " * 1000),
        _part("file", photo, "a.jpg", "Content-Type: image/jpeg\r\n"),
        _part("comment", b"also ignored"),
    )
    response = _post(api, body)
    assert response.status_code == 201, response.text
    assert response.json()["quality"]["ok"] is True


def test_two_file_parts_are_refused_not_half_taken(api: Api, photo: bytes) -> None:
    body = _body(_part("file", photo, "a.jpg"), _part("file", photo, "b.jpg"))
    error = _error(_post(api, body), 400)
    assert error["code"] == "invalid_multipart" and "one photo" in error["message"]


def test_order_and_line_fields_reach_the_upload_checks(api: Api, photo: bytes) -> None:
    api.put_order("ord-form")
    body = _body(
        _part("file", photo, "a.jpg"),
        _part("order_id", b"ord-form"),
        _part("line_id", b"NO-SUCH-LINE"),
    )
    error = _error(_post(api, body), 422)
    assert error["code"] == "unknown_line" and "NO-SUCH-LINE" in error["message"]
    body = _body(
        _part("file", photo, "a.jpg"), _part("order_id", b"ord-form"), _part("line_id", b"L1")
    )
    assert _post(api, body).status_code == 201


def test_empty_text_fields_count_as_absent(api: Api, photo: bytes) -> None:
    body = _body(_part("file", photo, "a.jpg"), _part("order_id", b""), _part("line_id", b""))
    assert _post(api, body).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "loc"),
    [
        (_body(_part("x", b"y")), None, 422, "validation_error", ["body", "file"]),
        (b'{"file": "x"}', "application/json", 422, "validation_error", ["body", "file"]),
        (b"", "multipart/form-data", 400, "invalid_multipart", None),
        (b"garbage without any boundary line", None, 400, "invalid_multipart", None),
        (
            b"--" + b"b" * 71 + b"--\r\n",
            "multipart/form-data; boundary=" + "b" * 71,
            400,
            "invalid_multipart",
            None,
        ),  # RFC 2046: at most 70
        (
            b"--" + b"b" * 5000 + b"--\r\n",
            "multipart/form-data; boundary=" + "b" * 5000,
            400,
            "invalid_multipart",
            None,
        ),  # python-multipart's own limit (256) raised a 500
        (
            _body(_part("file", b"x", "a.jpg"), _part("order_id", b"o" * 101)),
            None,
            422,
            "validation_error",
            ["body", "order_id"],
        ),
        (
            _body(*[_part(f"f{i}", b"x") for i in range(MAX_PARTS + 1)]),
            None,
            400,
            "invalid_multipart",
            None,
        ),
        (
            _body(_part("file", b"x", "a.jpg", "X-Padding: " + "p" * 9000 + "\r\n")),
            None,
            400,
            "invalid_multipart",
            None,
        ),
        (
            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode(),
            None,
            400,
            "invalid_multipart",
            None,
        ),
        (_body(_part("file", b"x", "a.jpg"))[:-20], None, 400, "invalid_multipart", None),
        (
            _body(_part("file", b"x", "a.jpg"), _part("line_id", b"L1")),
            None,
            422,
            "validation_error",
            ["body", "order_id"],
        ),
        (
            _body(_part("file", b"x", "a.jpg"), _part("order_id", b"o1")),
            None,
            422,
            "validation_error",
            ["body", "line_id"],
        ),
    ],
    ids=[
        "no file part",
        "not multipart",
        "no boundary",
        "no boundary line",
        "boundary of 71 characters",
        "boundary of 5000 characters",
        "order_id too long",
        "too many parts",
        "part headers too long",
        "part without a name",
        "no closing boundary",
        "line_id without order_id",
        "order_id without line_id",
    ],
)
def test_broken_forms_get_a_clear_4xx(api: Api, body, content_type, status, code, loc) -> None:
    error = _error(_post(api, body, content_type), status)
    assert error["code"] == code
    if loc is not None:
        assert [p["loc"] for p in error["details"]["problems"]] == [loc]


def test_a_file_part_over_the_limit_is_refused_while_it_is_read(api: Api) -> None:
    api.container.settings.max_upload_bytes = 40_000
    # Under the declared-length cut-off (limit + framing), so the form reader must catch it.
    body = _body(_part("file", b"\xff\xd8\xff" + b"\0" * 50_000, "a.jpg"))
    assert _error(_post(api, body), 413)["code"] == "file_too_large"


def _read_in_chunks(body: bytes, cuts: list[int], limit: int = 10_000_000):
    reader = _PhotoFormReader(limit)
    parser = MultipartParser(BOUNDARY, reader.callbacks())
    edges = [0, *sorted(set(cuts)), len(body)]
    for start, end in pairwise(edges):
        parser.write(body[start:end])
    parser.finalize()
    return reader.result()


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=3000),
    order_id=st.text(min_size=1, max_size=100).filter(lambda s: "\r" not in s),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12),
)
def test_any_chunking_of_the_body_reads_the_same_form(data: bytes, order_id: str, cuts) -> None:
    body = _body(
        _part("file", data, "a.jpg"), _part("order_id", order_id.encode()), _part("line_id", b"L1")
    )
    cuts = [c for c in cuts if c <= len(body)]
    form = _read_in_chunks(body, cuts)
    assert form.data == data
    assert form.order_id == order_id
    assert form.line_id == "L1"


def test_the_file_limit_counts_bytes_across_chunks() -> None:
    body = _body(_part("file", b"\0" * 5000, "a.jpg"))
    with pytest.raises(ApiError) as raised:
        _read_in_chunks(body, list(range(0, len(body), 700)), limit=4999)
    assert raised.value.code == "file_too_large"


def _asgi_upload(api: Api, receive) -> list[dict]:
    """Drive the app at ASGI level with ``receive``; returns what it sent."""
    headers = api.customer() | {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/photos",
        "raw_path": b"/v1/photos",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(asyncio.wait_for(api.client.app(scope, receive, send), timeout=10))
    return sent


def test_an_upload_cut_off_by_the_client_is_a_400_not_a_500(api: Api, photo: bytes) -> None:
    """The body stops halfway and the server hears the disconnect."""
    body = _body(_part("file", photo, "a.jpg"))
    messages = iter(
        [
            {"type": "http.request", "body": body[: len(body) // 2], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict:
        return next(messages, {"type": "http.disconnect"})

    sent = _asgi_upload(api, receive)
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"]["code"] == "client_disconnected"


def test_an_upload_that_stops_arriving_is_answered_408(api: Api, photo: bytes) -> None:
    """A client that sends part of the body and then nothing (a lost signal, or a slow-loris
    holding connections) gets 408 once no byte came for the idle timeout."""
    api.container.settings.upload_idle_timeout_seconds = 0.3
    body = _body(_part("file", photo, "a.jpg"))
    chunks = [body[i : i + 512] for i in range(0, len(body) // 2, 512)]
    pulled = 0

    async def receive() -> dict:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            await asyncio.sleep(0.01)  # slow, but never pausing as long as the timeout
            return {"type": "http.request", "body": chunks[pulled - 1], "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    started = time.monotonic()
    sent = _asgi_upload(api, receive)
    assert pulled == len(chunks) and len(chunks) > 30  # longer in all than the timeout
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"]["code"] == "upload_timeout"
    assert time.monotonic() - started < 5


def test_an_upload_trickling_in_for_too_long_is_answered_408(api: Api, photo: bytes) -> None:
    """A body that never pauses as long as the idle timeout but never ends either (a byte at
    a time) would hold its share of the upload budget for ever: it has a limit in all."""
    api.container.settings.upload_body_seconds = 0.4
    body = _body(_part("file", photo, "a.jpg"))
    pulled = 0

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        await asyncio.sleep(0.01)
        return {"type": "http.request", "body": body[pulled - 1 : pulled], "more_body": True}

    started = time.monotonic()
    sent = _asgi_upload(api, receive)
    assert 0.4 <= time.monotonic() - started < 5 and pulled > 20
    assert sent[0]["status"] == 408
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "upload_timeout" and "0.4 s to arrive" in error["message"]


def test_the_file_part_needs_no_plain_filename(api: Api, photo: bytes) -> None:
    """Clients name the file differently (RFC 5987 ``filename*``, or none at all): the part
    named ``file`` is the photo either way."""
    for extra in ("; filename*=UTF-8''%E8%8B%B9%E6%9E%9C.jpg", ""):
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"{extra}\r\n\r\n'
        response = _post(api, head.encode() + photo + f"\r\n--{BOUNDARY}--\r\n".encode())
        assert response.status_code == 201, (extra, response.text)
