"""Lists as ``{total, items, next_cursor}``, paged by an opaque cursor.

A cursor is URL-safe base64 of a small JSON value the endpoint chose (an offset into a
sorted in-memory list, or the key of the last row for store queries); a cursor that does
not decode is a validation error naming the ``cursor`` parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from softswitch.api.errors import ApiError, FieldError

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Cursor",
    "Limit",
    "Page",
    "bad_cursor",
    "decode_cursor",
    "encode_cursor",
    "page_of",
]

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[
    str | None, Query(max_length=400, description="next_cursor of the previous page")
]


class Page(BaseModel, Generic[T]):
    total: int
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise bad_cursor() from None


def bad_cursor() -> ApiError:
    """The validation error of a cursor this API did not give."""
    error = ApiError(422, "validation_error", "query.cursor: not a cursor this API gave")
    error.errors = [FieldError(field="query.cursor", message="not a cursor this API gave")]
    return error


def page_of(items: Sequence[T], cursor: str | None, limit: int) -> Page[T]:
    """One page of an already filtered and sorted list (the cursor is an offset)."""
    start = decode_cursor(cursor) or 0
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise bad_cursor()
    end = start + limit
    return Page[T](
        total=len(items),
        items=list(items[start:end]),
        next_cursor=encode_cursor(end) if end < len(items) else None,
    )
