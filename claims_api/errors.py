"""One error shape for every 4xx: ``{"error": {"code": ..., "message": ...}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from claims_api.db import DatabaseBusy

log = logging.getLogger(__name__)


class ApiError(Exception):
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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": text,
        "content": {"application/json": {"example": error_body(code, text)}},
    }
    for status, code, text in [
        (400, "bad_request", "The request is malformed."),
        (401, "unauthorized", "Missing or invalid credentials."),
        (403, "forbidden", "Not allowed for this role."),
        (404, "not_found", "No such resource."),
        (409, "conflict", "The resource is not in a state that allows this."),
        (422, "validation_error", "The request body is invalid."),
    ]
}

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
            return JSONResponse(error_body("invalid_json", _json_problem(broken)), status_code=422)
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"loc": [], "message": "invalid request"}
        message = f"{'.'.join(first['loc'][1:]) or 'request'}: {first['message']}"
        return JSONResponse(
            error_body("validation_error", message, {"problems": problems}), status_code=422
        )

    @app.exception_handler(DatabaseBusy)
    async def _busy(_: Request, exc: DatabaseBusy) -> JSONResponse:
        return JSONResponse(
            error_body("database_busy", "The service is busy; please retry in a few seconds."),
            status_code=503,
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
            error_body(
                "invalid_value",
                "A value in the request cannot be stored (a NUL character in a text, or a "
                "number out of range).",
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )
