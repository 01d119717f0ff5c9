"""Refuse an oversized photo upload while it arrives, before the multipart parser holds it,
and bound the bytes that all uploads together hold.

Uploads are kept in memory as they are parsed (:mod:`claims_api.photos.form`; a 12-MP photo is
3-5 MB), so the byte limit must hold for the whole body, whatever its parts: a declared
``Content-Length`` over the limit is answered 413 at once, and a body without one (chunked)
is answered 413 as soon as it passes the limit; the application then sees a disconnect and
whatever it would answer is dropped.

The same goes for a burst: a hundred phones uploading at once would otherwise hold a hundred
bodies (twice, while the parts are joined) whatever the photo slots let through. Each upload
reserves its declared size (the limit when it is chunked) from :class:`UploadBudget` before a
byte of it is read and gives it back when its route has answered; uploads that do not fit
wait their turn in arrival order, their bytes left in the client's socket, and one that waits
longer than the configured time is answered ``503 server_busy`` with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import JSONResponse

from claims_api.errors import error_body
from claims_api.photos.errors import FileTooLarge, UploadsBusy

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

# multipart framing (boundaries, part headers, the optional order/line fields) around the file
MULTIPART_OVERHEAD = 64 * 1024


class UploadBudget:
    """Bytes that the uploads of this process may hold at once, handed out in arrival order
    (a large upload is not overtaken for ever by small ones). Used on the event loop only."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.free = capacity
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size: int, wait_seconds: float) -> int | None:
        """Reserve ``size`` bytes (at most the whole budget), waiting up to ``wait_seconds``;
        the bytes reserved, to :meth:`release` later, or None when the wait ran out."""
        size = min(size, self.capacity)
        if not self._waiters and size <= self.free:
            self.free -= size
            return size
        entry = (size, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(wait_seconds):
                await entry[1]
        except TimeoutError:
            return None if self._withdraw(entry) else size  # else: handed over at the bell
        except BaseException:  # the request was cancelled (the client left) while waiting
            if not self._withdraw(entry):
                self.release(size)
            raise
        return size

    def release(self, size: int) -> None:
        self.free += size
        self._admit()

    def _withdraw(self, entry: tuple[int, asyncio.Future[None]]) -> bool:
        """Take a waiter out of the queue; False when its bytes had been handed over."""
        granted = entry[1]
        if granted.done() and not granted.cancelled():
            return False
        if entry in self._waiters:
            self._waiters.remove(entry)
        self._admit()  # it may have been the head that held the others back
        return True

    def _admit(self) -> None:
        while self._waiters and self._waiters[0][0] <= self.free:
            size, granted = self._waiters.popleft()
            if granted.cancelled():  # its wait was cut short; _withdraw is on its way
                continue
            self.free -= size
            granted.set_result(None)


class UploadSizeLimit:
    """ASGI middleware: bodies of ``POST`` requests to ``paths`` stay within ``limit`` bytes
    plus the multipart framing, and together within ``budget`` (when given)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        paths: frozenset[str],
        budget: UploadBudget | None = None,
        wait_seconds: float = 10.0,
    ) -> None:
        self.app = app
        self.limit = limit
        self.max_body = limit + MULTIPART_OVERHEAD
        self.paths = paths
        self.budget = budget
        self.wait_seconds = wait_seconds

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._reject(send)
            return
        if self.budget is None:
            await self._limited(scope, receive, send)
            return
        wanted = self.max_body if declared is None else declared
        reserved = await self.budget.acquire(wanted, self.wait_seconds)
        if reserved is None:
            await self._busy(send)
            return
        try:
            await self._limited(scope, receive, send)
        finally:
            self.budget.release(reserved)

    async def _limited(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
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
        await _send_error(
            send, FileTooLarge.status, FileTooLarge.code, too_large_message(self.limit)
        )

    async def _busy(self, send: Send) -> None:
        await _send_error(
            send, UploadsBusy.status, UploadsBusy.code, UploadsBusy.message, {"retry-after": "5"}
        )


async def _send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    """Answer without reading (the rest of) the body: the connection closes after it."""
    headers = {"connection": "close", **(headers or {})}
    response = JSONResponse(error_body(code, message), status_code=status, headers=headers)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def too_large_message(limit: int) -> str:
    return f"The photo is larger than {limit // (1024 * 1024)} MB."


def _content_length(scope: MutableMapping[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
