"""One error shape for every answer that is not a success, and the handlers producing it.

``{"status": 404, "code": "not_found", "message": "...", "errors": [{"field": ..., ...}]}``:
validation errors list each field (``body.role``, ``query.limit``) with its problem.
An object of a tenant the caller may not see is "not found", never "forbidden".
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from storage.base import StorageError

log = structlog.get_logger(__name__)

__all__ = [
    "COMMON_ERRORS",
    "ApiError",
    "ErrorBody",
    "FieldError",
    "install_error_handlers",
    "not_found",
]


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """What every 4xx/5xx answer carries."""

    status: int
    code: str
    message: str
    errors: list[FieldError] = []


class ApiError(Exception):
    """Raised by endpoints; becomes an ErrorBody answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = [FieldError(field=field, message=message)] if field else []
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def _doc(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: Answers every authenticated endpoint may give (documented in the OpenAPI document).
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _doc("no valid token"),
    403: _doc("the login's role or permissions do not allow this"),
    404: _doc("no such object for this caller"),
    422: _doc("a field is invalid (each is named)"),
}


def _body(
    status: int, code: str, message: str, errors: list[FieldError] | None = None
) -> dict[str, Any]:
    return ErrorBody(status=status, code=code, message=message, errors=errors or []).model_dump()


def _field(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        _body(exc.status, exc.code, exc.message, exc.errors),
        status_code=exc.status,
        headers=exc.headers,
    )


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=_field(tuple(e.get("loc", ()))), message=str(e.get("msg", "invalid")))
        for e in exc.errors()
    ]
    first = errors[0] if errors else FieldError(field="", message="invalid request")
    return JSONResponse(
        _body(422, "validation_error", f"{first.field}: {first.message}", errors),
        status_code=422,
    )


_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _CODES.get(exc.status_code, "error")
    return JSONResponse(
        _body(exc.status_code, code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("api.request_failed", method=request.method, path=request.url.path)
    return JSONResponse(
        _body(500, "internal_error", "the request failed; the switch's log says why"),
        status_code=500,
    )


async def _storage(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        _body(503, "storage_unavailable", "the database is unavailable, try again"),
        status_code=503,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(StorageError, _storage)
    app.add_exception_handler(Exception, _unexpected)  # a bug: logged, answered in shape
