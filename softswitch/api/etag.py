"""ETags of resources and If-Match preconditions (412 when the resource changed)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel

from softswitch.api.errors import ApiError

__all__ = ["check_if_match", "etag_of", "with_etag"]


def etag_of(value: Any) -> str:
    """A strong ETag of a resource's representation (or of a version number)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode())
    return f'"{digest.hexdigest()[:20]}"'


def with_etag(response: Response, etag: str) -> None:
    response.headers["ETag"] = etag


def check_if_match(request: Request, current: str) -> None:
    """Refuse (412) a change whose If-Match names another version than ``current``."""
    header = request.headers.get("if-match")
    if header is None:
        return
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if "*" not in tags and current not in tags:
        raise ApiError(
            412,
            "precondition_failed",
            "the resource changed since it was read (If-Match does not match its ETag)",
            headers={"ETag": current},
        )
