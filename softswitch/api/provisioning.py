"""What every provisioning endpoint shares: the service, who acts, errors, ETags, scope.

Every write goes through the running switch's ``ProvisioningService`` (validated by the
``config/`` models, audited with an ``Actor``), is applied to this node at once (the other
nodes follow through the store) and published as ``config.changed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from fastapi import Request
from pydantic import BaseModel, Field

from softswitch.api.deps import TenantScope
from softswitch.api.errors import ApiError, FieldError
from softswitch.api.etag import etag_of
from softswitch.api.events import config_changed
from softswitch.api.principal import Principal
from softswitch.api.roles import Area, Role
from softswitch.provisioning import (
    Actor,
    InvalidObject,
    Item,
    NotFound,
    ProvisioningError,
    ProvisioningService,
    ReadOnly,
    VersionMismatch,
)
from storage.base import StorageError
from storage.provisioning import SECRET_FIELDS

if TYPE_CHECKING:
    from softswitch.provisioning.runtime import ProvisioningRuntime

log = structlog.get_logger(__name__)

__all__ = [
    "MASK",
    "ObjectOut",
    "Resource",
    "actor",
    "applied",
    "apply_now",
    "item_etag",
    "masked",
    "refused",
    "service",
    "unmasked",
]

MASK = "***"  # a secret as answers show it; sent back unchanged it keeps the stored value


@dataclass(frozen=True, slots=True)
class Resource:
    """One provisioning kind as a collection under ``/v1/tenants/{tenant}/``."""

    kind: str  # softswitch.provisioning.model.KINDS
    collection: str  # the path segment
    area: Area
    key_name: str  # what the key is, for people ("extension", "E.164 number", "name")
    # The bare GET of an object belongs to a live view (conferences, disaster plans): the
    # stored document is then at .../{key}/settings, and there is no document list.
    live_view: bool = False
    key_is_path: bool = False  # keys may hold "/" (a user's time frame: "101/lunch")
    filters: tuple[str, ...] = ()  # top-level fields a list may be filtered on
    # Objects of the tenant as a whole (no owning extension) that site managers and basic
    # users may read (never change): domain time frames, plans, sites, bridges.
    shared: bool = False

    def owner(self, key: str, data: Mapping[str, Any]) -> str | None:
        """The extension an object belongs to (site managers and basic users see only their
        extensions' objects), None for an object of the tenant as a whole."""
        if self.kind in ("user", "answering", "mailbox"):
            return key
        if self.kind in ("time_frame", "conference"):
            owner = data.get("owner")
            return str(owner) if owner is not None else None
        if self.kind == "number" and data.get("treatment", "user") == "user":
            destination = data.get("destination")
            return str(destination) if destination else None
        return None


class ObjectOut(BaseModel):
    """A stored provisioning object: its document in the shape of the configuration file
    (fields left at their defaults omitted, secrets shown as "***")."""

    tenant: str
    kind: str
    key: str
    version: int = Field(description="0 for an object the tenant has by default, unstored")
    data: dict[str, Any]


def service(scope: TenantScope) -> ProvisioningService:
    return scope.ctx.switch.provisioning.service


def actor(principal: Principal, request: Request) -> Actor:
    """The audit's who and from where: the login and the client's address."""
    source = request.client.host if request.client is not None else ""
    return Actor(f"api:{principal.login}", source)


def item_etag(item: Item) -> str:
    return etag_of([item.tenant, item.kind, item.key, item.version, item.data])


def masked(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            k: (MASK if k in SECRET_FIELDS and v is not None else masked(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [masked(v) for v in data]
    return data


def unmasked(data: Any, stored: Any) -> Any:
    """``data`` with every secret sent back as "***" replaced by the stored value."""
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            old = stored.get(k) if isinstance(stored, dict) else None
            out[k] = (
                old if k in SECRET_FIELDS and v == MASK and old is not None else (unmasked(v, old))
            )
        return out
    if isinstance(data, list):
        olds = stored if isinstance(stored, list) and len(stored) == len(data) else None
        return [unmasked(v, olds[i] if olds else None) for i, v in enumerate(data)]
    return data


def out(item: Item) -> ObjectOut:
    return ObjectOut(
        tenant=item.tenant,
        kind=item.kind,
        key=item.key,
        version=item.version,
        data=masked(item.data),
    )


def refused(exc: ProvisioningError, kind: str = "", key: str = "") -> ApiError:
    """A refused operation as an API answer; an InvalidObject names every field, those of
    the object written as ``body.<field>``, others as ``<kind>[<key>].<field>``."""
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", str(exc))
    if isinstance(exc, ReadOnly):
        return ApiError(403, "read_only", str(exc))
    if isinstance(exc, VersionMismatch):
        if exc.current and "already exists" in str(exc):
            return ApiError(409, "conflict", str(exc))
        return ApiError(412, "precondition_failed", str(exc))
    if isinstance(exc, InvalidObject):
        errors = []
        for e in exc.errors:
            own = e.kind == kind and (e.key == key or not key or e.key == "(new)")
            place = f"body.{e.field}" if own else f"{e.kind}[{e.key}].{e.field}"
            errors.append(FieldError(field=place.rstrip("."), message=e.message))
        first = errors[0] if errors else FieldError(field="body", message="invalid")
        error = ApiError(422, "validation_error", f"{first.field}: {first.message}")
        error.errors = errors
        return error
    return ApiError(409, "refused", str(exc))


async def applied(scope: TenantScope, kind: str, key: str, action: str, version: int) -> None:
    """After a change: this node runs it at once; listeners hear of it."""
    await apply_now(scope.ctx.switch.provisioning)
    scope.ctx.events.publish(
        config_changed(scope.tenant.name, kind, key, action=action, version=version)
    )


async def apply_now(runtime: ProvisioningRuntime) -> None:
    """Run a stored change on this node before answering. The change is stored whatever
    happens here: a store that fails now leaves it to the runtime's follow loop."""
    try:
        await runtime.refresh()
    except StorageError as exc:
        log.warning("api.apply_deferred", error=str(exc))


#: What a basic user may change of its own objects: not its rights, identity or quotas.
_BASIC_USER_FIELDS: dict[str, frozenset[str]] = {
    "user": frozenset({"display_name", "password", "moh"}),
    "mailbox": frozenset({"name", "pin", "email", "newest_first", "greetings"}),
}


def basic_user_fields(kind: str = "user") -> frozenset[str]:
    """What a basic user may change of its own object of ``kind`` (nothing of the kinds
    not listed: their area permissions decide whether they may at all)."""
    return _BASIC_USER_FIELDS.get(kind, frozenset())


def is_basic_user(principal: Principal) -> bool:
    return principal.role is Role.USER
