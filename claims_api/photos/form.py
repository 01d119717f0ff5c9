"""Reading the photo upload form as it arrives.

``POST /v1/photos`` takes ``multipart/form-data`` (what a mini-program's ``uploadFile`` sends)
with one ``file`` part and the optional ``order_id`` and ``line_id`` fields. python-multipart's
streaming parser runs over the body's chunks and the file part's bytes are kept as the slices
it hands over, joined once at the end.

Why not FastAPI's ``File``/``Form`` parameters: Starlette's form parser writes every file part
into a ``SpooledTemporaryFile`` (a growing buffer behind a Python wrapper, on the event loop)
which the endpoint then reads back; for a phone photo that costs several times the CPU of
keeping the parser's slices, and every millisecond on the event loop holds up the other
requests. The whole body's size is capped before this runs,
by :class:`claims_api.photos.upload_limit.UploadSizeLimit`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect

from claims_api.deps import ContainerDep
from claims_api.errors import ValidationFailed
from claims_api.photos.errors import (
    ClientDisconnected,
    FileTooLarge,
    InvalidMultipart,
    UploadTimeout,
)
from claims_api.photos.upload_limit import too_large_message

FILE_FIELD = "file"
TEXT_FIELDS = {"order_id": 100, "line_id": 100}  # name: longest accepted value
MAX_PARTS = 16  # the form has three; a body of thousands of tiny parts is refused early
MAX_PART_HEADER_BYTES = 8 * 1024
MAX_BOUNDARY_LENGTH = 70  # RFC 2046

# The request body as OpenAPI describes it (the endpoint reads the body itself).
OPENAPI_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "JPEG, PNG, WebP, HEIC or AVIF",
                    },
                    **{
                        name: {"type": "string", "maxLength": longest}
                        for name, longest in TEXT_FIELDS.items()
                    },
                },
            }
        }
    },
}


@dataclass(frozen=True)
class PhotoForm:
    data: bytes
    order_id: str | None = None
    line_id: str | None = None


def _invalid(field_name: str, problem: str) -> ValidationFailed:
    return ValidationFailed(
        f"{field_name}: {problem}",
        problems=[{"loc": ["body", field_name], "message": problem}],
    )


def _too_large(limit: int) -> FileTooLarge:
    return FileTooLarge(too_large_message(limit))


def _malformed(detail: str) -> InvalidMultipart:
    return InvalidMultipart(f"The upload is not valid multipart/form-data: {detail}")


@dataclass
class _Part:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    name: str | None = None
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class _PhotoFormReader:
    """The parser's callbacks: keeps the ``file`` part and the known text fields, skips the
    bytes of any other part, and stops at the byte and part limits."""

    def __init__(self, file_limit: int) -> None:
        self.file_limit = file_limit
        self.parts = 0
        self.part = _Part()
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.header_bytes = 0
        self.file: bytes | None = None
        self.fields: dict[str, str] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise _malformed(f"more than {MAX_PARTS} parts")
        self.part = _Part()
        self.header_bytes = 0

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > MAX_PART_HEADER_BYTES:
            raise _malformed("part headers too long")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers.append((bytes(self.header_name).lower(), bytes(self.header_value)))
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        disposition = next((v for k, v in self.part.headers if k == b"content-disposition"), b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise _malformed('a part without a Content-Disposition "name"')
        self.part.name = options[b"name"].decode("utf-8", errors="replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        if part.name == FILE_FIELD:
            part.size += end - start
            if part.size > self.file_limit:
                raise _too_large(self.file_limit)
            part.chunks.append(data[start:end])
        elif part.name in TEXT_FIELDS:
            part.size += end - start
            if part.size <= 4 * TEXT_FIELDS[part.name]:  # UTF-8: up to 4 bytes a character
                part.chunks.append(data[start:end])

    def on_part_end(self) -> None:
        part = self.part
        if part.name == FILE_FIELD:
            if self.file is not None:  # the customer would think both photos were sent
                raise _malformed("more than one file part (upload one photo per request)")
            self.file = b"".join(part.chunks)
        elif part.name in TEXT_FIELDS and part.name not in self.fields:
            longest = TEXT_FIELDS[part.name]
            if part.size > 4 * longest:
                raise _invalid(part.name, f"String should have at most {longest} characters")
            self.fields[part.name] = b"".join(part.chunks).decode("utf-8", errors="replace")
        part.chunks = []

    def result(self) -> PhotoForm:
        if self.file is None:
            raise _invalid(FILE_FIELD, "Field required")
        values: dict[str, str | None] = {}
        for name, longest in TEXT_FIELDS.items():
            value = self.fields.get(name) or None  # an empty field is an absent one
            if value is not None and len(value) > longest:
                raise _invalid(name, f"String should have at most {longest} characters")
            values[name] = value
        for given, missing in (("line_id", "order_id"), ("order_id", "line_id")):
            if values[given] and not values[missing]:  # the item check needs both
                raise _invalid(missing, f"Field required with {given}")
        return PhotoForm(data=self.file, **values)


async def read_photo_form(request: Request, container: ContainerDep) -> PhotoForm:
    """FastAPI dependency: the parsed form, or a 4xx (``validation_error`` without a file
    part, ``file_too_large``, ``invalid_multipart``, ``client_disconnected``,
    ``upload_timeout``)."""
    media_type, params = parse_options_header(request.headers.get("content-type", ""))
    if media_type != b"multipart/form-data":
        raise _invalid(FILE_FIELD, "Field required (send multipart/form-data)")
    boundary = params.get(b"boundary")
    if not boundary:
        raise _malformed("no boundary in Content-Type")
    if len(boundary) > MAX_BOUNDARY_LENGTH:
        raise _malformed(f"a boundary longer than {MAX_BOUNDARY_LENGTH} characters")
    settings = container.settings
    reader = _PhotoFormReader(settings.max_upload_bytes)
    idle = settings.upload_idle_timeout_seconds
    loop = asyncio.get_running_loop()
    # a body trickling in forever holds its share of the upload budget: a limit in all too
    last_moment = loop.time() + settings.upload_body_seconds
    try:
        parser = MultipartParser(boundary, reader.callbacks())
        async with asyncio.timeout(min(idle, settings.upload_body_seconds)) as deadline:
            async for chunk in request.stream():
                parser.write(chunk)
                deadline.reschedule(min(loop.time() + idle, last_moment))
        parser.finalize()
    except FormParserError as exc:  # the parser's own errors, its constructor's included
        raise _malformed(str(exc) or type(exc).__name__) from exc
    except ClientDisconnect as exc:  # the mini-program lost its connection mid-upload
        raise ClientDisconnected() from exc
    except TimeoutError as exc:
        if loop.time() >= last_moment:
            text = f"The photo took more than {settings.upload_body_seconds:g} s to arrive"
        else:
            text = f"The photo stopped arriving for {idle:g} s"
        raise UploadTimeout(f"{text}; please try again.") from exc
    if parser.state != MultipartState.END:  # e.g. a body cut short by a proxy
        raise _malformed("the body ended before the closing boundary")
    return reader.result()


PhotoFormDep = Annotated[PhotoForm, Depends(read_photo_form)]
