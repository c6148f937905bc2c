"""What the portal's editing pages share: the API's provisioning endpoints by name, and an
API refusal turned into messages next to the fields of a form.

A page saves by calling the same endpoint ``/v1`` serves (``create_user``,
``replace_answering``...), so validation, scope, audit and live apply are the API's; a
refusal names fields as the API does (``body.caller_id``, ``body.rules[0].forward...``),
which this module maps to the form's own field names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from fastapi import Request
from fastapi.routing import APIRoute

from softswitch.api import routes_provisioning
from softswitch.api.errors import ApiError

__all__ = [
    "FormErrors",
    "endpoint",
    "errors_of",
    "form_text",
    "general_error",
    "upload_request",
]

FormErrors = dict[str, str]  # form field name -> message; "" for the form as a whole


def endpoint(name: str) -> Callable[..., Any]:
    """The provisioning route function ``name`` (``create_user``, ``patch_time_frame``...)."""
    for route in routes_provisioning.router.routes:
        if isinstance(route, APIRoute) and route.name == name:
            return route.endpoint
    raise LookupError(f"no provisioning endpoint {name!r}")


def errors_of(exc: ApiError, fields: Mapping[str, str], key_field: str = "") -> FormErrors:
    """``exc``'s problems by form field. ``fields`` maps an API field path prefix (without
    ``body.``) to the form field showing it, longest prefix first wins; a 409 (exists
    already) goes to ``key_field``; anything unmatched to the form as a whole ("")."""
    if exc.status == 409 and key_field:
        return {key_field: exc.message}
    if exc.status != 422 or not exc.errors:
        return {"": exc.message}
    found: FormErrors = {}
    order = sorted(fields, key=len, reverse=True)
    for error in exc.errors:
        path = error.field.removeprefix("body.").removeprefix("body")
        target = next(
            (fields[p] for p in order if path == p or path.startswith((p + ".", p + "["))), ""
        )
        message = error.message.removeprefix("Value error, ")
        if target == "" and path:
            message = f"{path}: {message}"
        found.setdefault(target, message)
    return found


def general_error(message: str) -> FormErrors:
    return {"": message}


async def form_text(request: Request) -> dict[str, str]:
    """The submitted form's text fields (files are read by the pages that take them)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


class _Upload:
    """A page's request as an API import reads it: the uploaded file is its body."""

    def __init__(self, request: Request, data: bytes) -> None:
        self._data = data
        self.client = request.client
        self.headers = request.headers

    async def body(self) -> bytes:
        return self._data


def upload_request(request: Request, data: bytes) -> Request:
    """``request`` with ``data`` (a file from a multipart form) as its body, for the API's
    import operations, which take the raw file as the request body."""
    return cast(Request, _Upload(request, data))
