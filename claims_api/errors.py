"""One error shape for every 4xx: ``{"error": {"code": ..., "message": ...}}``.

Each error a route can answer with is a :class:`NamedError` subclass (status, code and a
default message), declared once in its domain's ``errors.py``; the routes list the ones they
can raise with :func:`document`, so ``/openapi.json`` names every code a client may see."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from claims_api.db import DatabaseBusy

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as ``{"error": {...}}``; raise a :class:`NamedError` where one fits."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details


class NamedError(ApiError):
    """One documented error: subclasses set ``status``, ``code`` and a default ``message``
    (the example in the API schema); a raise site may pass a more precise message and
    details. Every code belongs to one class, so a code always comes with the same status."""

    registry: ClassVar[dict[str, type[NamedError]]] = {}
    # the answer carries Retry-After (documented as a response header)
    retry_after: ClassVar[bool] = False
    # details shown in the schema's example, where the error carries some
    example_details: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        taken = NamedError.registry.get(cls.code)
        if taken is not None and taken.__qualname__ != cls.__qualname__:
            raise TypeError(f"error code {cls.code!r} is already {taken.__qualname__}'s")
        NamedError.registry[cls.code] = cls

    def __init__(
        self, message: str | None = None, *, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        cls = type(self)
        super().__init__(cls.status, cls.code, message or cls.message, headers=headers, **details)


ErrorClasses = type[NamedError] | Iterable["ErrorClasses"]


def _flatten(groups: Iterable[ErrorClasses]) -> list[type[NamedError]]:
    found: list[type[NamedError]] = []
    for group in groups:
        members = [group] if isinstance(group, type) else _flatten(group)
        found += [error for error in members if error not in found]
    return found


def document(*errors: ErrorClasses) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer with ``errors`` (classes or groups of
    them): one entry per status, whose description lists its codes, each with an example."""
    by_status: dict[int, list[type[NamedError]]] = {}
    for error in _flatten(errors):
        by_status.setdefault(error.status, []).append(error)
    return {status: _response(status, by_status[status]) for status in sorted(by_status)}


def _response(status: int, errors: list[type[NamedError]]) -> dict[str, Any]:
    codes = "\n".join(f"- `{e.code}`: {e.message}" for e in errors)
    response: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase}. The error codes:\n\n{codes}",
        "content": {
            "application/json": {
                "schema": _error_schema([e.code for e in errors]),
                "examples": {
                    e.code: {
                        "summary": e.message,
                        "value": error_body(e.code, e.message, e.example_details),
                    }
                    for e in errors
                },
            }
        },
    }
    if any(e.retry_after for e in errors):
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer"},
            }
        }
    return response


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": codes},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            }
        },
    }


# ---------------------------------------------------------------- errors every domain shares


class Unauthorized(NamedError):
    status, code, message = 401, "unauthorized", "Send 'Authorization: Bearer <token>'."


class InvalidToken(NamedError):
    status, code, message = 401, "invalid_token", "The token is invalid, revoked or expired."


class Forbidden(NamedError):
    status, code, message = 403, "forbidden", "This needs a different credential."


class ValidationFailed(NamedError):
    status, code = 422, "validation_error"
    message = "affected_quantity: Input should be greater than or equal to 1"
    example_details: ClassVar[dict[str, Any]] = {
        "problems": [{"loc": ["body", "affected_quantity"], "message": "Input should be >= 1"}]
    }


class InvalidJson(NamedError):
    status, code = 422, "invalid_json"
    message = "The request body is not valid JSON (EOF while parsing a value at character 12)."


class UnstorableValue(NamedError):
    status, code = 422, "invalid_value"
    message = (
        "A value in the request cannot be stored (a NUL character in a text, or a number out "
        "of range)."
    )


class DatabaseBusyError(NamedError):
    status, code = 503, "database_busy"
    message = "The service is busy; please retry in a few seconds."
    retry_after = True


# Groups for routes' ``responses=``: who may call, and what any input or write can meet.
AUTHENTICATED = (Unauthorized, InvalidToken, Forbidden)
INPUT = (ValidationFailed, UnstorableValue)
JSON_BODY = (*INPUT, InvalidJson)
WRITES = (DatabaseBusyError, UnstorableValue)


def not_found(what: str, code: str | None = None) -> ApiError:
    return ApiError(404, code or f"{what}_not_found", f"No such {what.replace('_', ' ')}.")


def conflict(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(409, code, message, **details)


def unprocessable(code: str, message: str, **details: Any) -> ApiError:
    return ApiError(422, code, message, **details)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def _json_problem(error: dict[str, Any]) -> str:
    """pydantic reports a body that is not JSON at ``("body", <character offset>)``."""
    loc = error.get("loc", ())
    where = f" at character {loc[1]}" if len(loc) > 1 else ""
    reason = (error.get("ctx") or {}).get("error") or error.get("msg", "")
    return f"The request body is not valid JSON ({reason}{where})."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        broken = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if broken is not None:
            return JSONResponse(
                error_body(InvalidJson.code, _json_problem(broken)), status_code=InvalidJson.status
            )
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "message": "invalid request"}
        message = f"{'.'.join(first['loc'][1:]) or 'request'}: {first['message']}"
        return JSONResponse(
            error_body(ValidationFailed.code, message, {"problems": problems}),
            status_code=ValidationFailed.status,
        )

    @app.exception_handler(DatabaseBusy)
    async def _busy(_: Request, exc: DatabaseBusy) -> JSONResponse:
        return JSONResponse(
            error_body(DatabaseBusyError.code, DatabaseBusyError.message),
            status_code=DatabaseBusyError.status,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refuses some values that pass validation and that SQLite stores: a NUL
        # character in any text, an integer past its column's range. The transaction has
        # been rolled back; the database's own wording stays in the log.
        log.info(
            "%s %s: value refused by the database: %s", request.method, request.url.path, exc.orig
        )
        return JSONResponse(
            error_body(UnstorableValue.code, UnstorableValue.message),
            status_code=UnstorableValue.status,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
