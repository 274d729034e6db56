"""The API's one error shape, `{"error": {"code", "message", "field"}}`, and its handlers.

Every refusal names the field it is about (`field` is null when the request as a whole is
refused); nothing the client sends can produce a 500: validation errors become 4xx, a database
that went away becomes 503.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from aggregator.api.responses import Json
from aggregator.store.database import DatabaseUnavailable

log = logging.getLogger("xmargin.api")


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, machine code, message, offending field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def not_found(what: str, field: str) -> ApiError:
    return ApiError(404, "not_found", what, field)


def bad_request(message: str, field: str | None, code: str = "invalid") -> ApiError:
    return ApiError(422, code, message, field)


def error_body(code: str, message: str, field: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(
    status: int, code: str, message: str, field: str | None, headers: dict[str, str] | None = None
) -> Json:
    return Json(error_body(code, message, field), status_code=status, headers=headers)


def field_path(loc: Sequence[int | str]) -> str | None:
    """`("body", "changes", 3, "amount")` → `changes[3].amount`; the request part (body,
    query, path, header) is dropped."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or None


def _validation_message(error: dict[str, Any]) -> tuple[str, str]:
    kind = str(error.get("type", "invalid"))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if kind == "json_invalid":
        return "malformed_json", "the body is not valid JSON"
    if kind == "missing":
        return "missing", "required"
    if kind == "extra_forbidden":
        return "unknown_field", "unknown field"
    return "invalid", message


async def _on_validation(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
    code, message = _validation_message(first)
    field = field_path(first.get("loc", ()))
    if code == "malformed_json":
        field = "body"
    status = 400 if code == "malformed_json" else 422
    return error_response(status, code, message, field)


async def _on_api_error(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 401: "unauthorized"}
    code = codes.get(exc.status_code, "http_error")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, code, message, None, dict(exc.headers or {}))


async def _on_database_down(request: Request, exc: Exception) -> Json:
    log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503,
        "database_unavailable",
        "the database is unreachable; try again shortly",
        None,
        {"Retry-After": "2"},
    )


async def _on_dbapi_error(request: Request, exc: Exception) -> Json:
    assert isinstance(exc, DBAPIError)
    if exc.connection_invalidated or _is_connection_error(exc):
        return await _on_database_down(request, exc)
    return await _on_unexpected(request, exc)


def _is_connection_error(exc: DBAPIError) -> bool:
    import psycopg

    return isinstance(exc.orig, psycopg.OperationalError | psycopg.InterfaceError)


async def _on_unexpected(request: Request, exc: Exception) -> Json:
    # A bug, not the client's doing: logged with its traceback, answered in the one shape.
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "an internal error; it has been logged", None)


def install_error_handlers(app: FastAPI) -> None:
    """Route every known failure to the one error shape."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DatabaseUnavailable, _on_database_down)
    app.add_exception_handler(PoolTimeout, _on_database_down)
    app.add_exception_handler(ConnectionError, _on_database_down)
    app.add_exception_handler(DBAPIError, _on_dbapi_error)
    app.add_exception_handler(Exception, _on_unexpected)
