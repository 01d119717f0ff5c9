"""Refuse an oversized photo upload while it arrives, before the multipart parser holds it.

Uploads are kept in memory as they are parsed (:mod:`claims_api.photos.form`; a 12-MP photo is
3-5 MB), so the byte limit must hold for the whole body, whatever its parts: a declared
``Content-Length`` over the limit is answered 413 at once, and a body without one (chunked)
is answered 413 as soon as it passes the limit; the application then sees a disconnect and
whatever it would answer is dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from claims_api.errors import error_body

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# multipart framing (boundaries, part headers, the optional order/line fields) around the file
MULTIPART_OVERHEAD = 64 * 1024


class UploadSizeLimit:
    """ASGI middleware: bodies of ``POST`` requests to ``paths`` stay within ``limit`` bytes
    plus the multipart framing."""

    def __init__(self, app: ASGIApp, *, limit: int, paths: frozenset[str]) -> None:
        self.app = app
        self.limit = limit
        self.max_body = limit + MULTIPART_OVERHEAD
        self.paths = paths

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._reject(send)
            return
        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    rejected = True
                    await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _reject(self, send: Send) -> None:
        response = JSONResponse(
            error_body("file_too_large", too_large_message(self.limit)),
            status_code=413,
            headers={"connection": "close"},
        )
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


def too_large_message(limit: int) -> str:
    return f"The photo is larger than {limit // (1024 * 1024)} MB."


def _content_length(scope: MutableMapping[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
