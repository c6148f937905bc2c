"""The validated provisioning model a service keeps between writes.

A write must cost what the change costs, not what the tenant costs (issue 17): with
10,000 users, validating the whole tenant from its documents took over a second per write.
`ModelState` keeps, per tenant, the stored objects and the validated model of each one
(`TenantState.parts`, indexed by (kind, key)), at one store revision. A change validates
the changed objects from their documents and passes every other object in as its
validated model, which pydantic takes as it is; the tenant-wide rules (unique extensions,
numbers and names, references from rules, numbers, ring groups and queues to users,
feature-code collisions from config/routable.py) then run as the tenant's own validators,
over those validated objects. The errors are the ones the whole tenant's validation gives,
located at the object and field the same way (`validate_tenant`).

    state = TenantState.build(name, objects)                     # full validation, once
    tenant = validate_change(name, state, documents, {("user", "201")})
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from config.answering import UserRouting
from config.loader import located_errors
from config.models import Tenant
from softswitch.provisioning.errors import FieldError, InvalidObject
from softswitch.provisioning.incremental import TenantIndex, changed_tenant
from softswitch.provisioning.model import (
    KINDS,
    ObjectKey,
    assemble_tenant,
    index_keys,
    object_key,
)
from storage.provisioning import ProvisionedObject

__all__ = [
    "ModelState",
    "TenantState",
    "field_path",
    "parts_of",
    "validate_change",
    "validate_tenant",
]

# The answering rules a user without any of its own gets (what the tenant derives from an
# empty table), shared like config.models does for validated routing.
_DEFAULT_ANSWERING = UserRouting()


@dataclass(frozen=True, slots=True)
class TenantState:
    """One tenant's stored objects and, when they validate, the tenant and the validated
    model of each stored object (`parts`)."""

    name: str
    objects: Mapping[ObjectKey, ProvisionedObject]
    tenant: Tenant | None
    problem: str = ""  # why it does not validate (tenant None)
    parts: Mapping[ObjectKey, BaseModel] = field(default_factory=dict, repr=False)
    # The tenant-wide rules' index (softswitch.provisioning.incremental), built on the
    # first write that needs it and moved along by `after`: {"index": TenantIndex | None}.
    cache: dict[str, TenantIndex | None] = field(default_factory=dict, repr=False, compare=False)

    def index(self) -> TenantIndex | None:
        """The index of a valid tenant (built once, on first use)."""
        if self.tenant is None:
            return None
        if "index" not in self.cache:
            self.cache["index"] = TenantIndex.build(self.tenant, self.documents())
        return self.cache["index"]

    @classmethod
    def build(cls, name: str, objects: Mapping[ObjectKey, ProvisionedObject]) -> TenantState:
        """Validate a tenant's objects as a whole (a load, or a change by another process)."""
        try:
            tenant = validate_tenant(name, {k: o.data for k, o in objects.items()})
        except InvalidObject as exc:
            return cls(name, objects, None, str(exc))
        return cls(name, objects, tenant, "", parts_of(tenant, objects.keys()))

    def documents(self) -> dict[ObjectKey, Any]:
        """{(kind, key): document}, a new dict the caller may change."""
        return {k: o.data for k, o in self.objects.items()}

    def after(
        self, writes: Mapping[ObjectKey, dict[str, Any] | None], tenant: Tenant, at: float
    ) -> TenantState:
        """This tenant once `writes` (document, None: deleted) are stored, validated as
        `tenant`; versions move as the store moves them (a document that did not change
        keeps its version)."""
        objects = dict(self.objects)
        for ident, doc in writes.items():
            old = objects.get(ident)
            if doc is None:
                objects.pop(ident, None)
            elif old is None or old.data != doc:
                version = old.version + 1 if old is not None else 1
                objects[ident] = ProvisionedObject(self.name, *ident, version, doc, at)
        return self.moved(objects, writes.keys(), tenant)

    def moved(
        self,
        objects: Mapping[ObjectKey, ProvisionedObject],
        changed: Collection[ObjectKey],
        tenant: Tenant,
    ) -> TenantState:
        """This tenant with `objects` stored, which differ from its own in the `changed`
        ones only, validated as `tenant` (built from this one's, `validate_change`): the
        untouched objects keep their validated models and a one-user or one-number change
        moves the index instead of dropping it."""
        if self.tenant is None:
            return TenantState(self.name, objects, tenant, "", parts_of(tenant, objects.keys()))
        # The untouched objects went into `tenant` as their validated models: only the
        # changed ones are new.
        parts = dict(self.parts)
        for ident in changed:
            parts.pop(ident, None)
            if ident in objects and ident[0] != "tenant":
                part = _part(tenant, *ident)
                if part is not None:
                    parts[ident] = part
        moved = TenantState(self.name, objects, tenant, "", parts)
        index = self.cache.get("index")
        if index is not None and len(changed) == 1:
            (ident,) = changed
            if ident[0] in ("user", "number"):
                old, new = self.objects.get(ident), objects.get(ident)
                before = old.data if old is not None else None
                moved.cache["index"] = index.moved(
                    ident, before, new.data if new is not None else None, tenant
                )
        return moved


@dataclass(frozen=True, slots=True)
class ModelState:
    """Every tenant's state at one store revision."""

    revision: int
    tenants: Mapping[str, TenantState]


def validate_tenant(name: str, docs: Mapping[ObjectKey, Mapping[str, Any]]) -> Tenant:
    """A tenant's objects validated together as the file loader validates a [[tenants]]."""
    return _validated(name, docs, assemble_tenant(docs))


def validate_change(
    name: str,
    state: TenantState | None,
    docs: Mapping[ObjectKey, Mapping[str, Any]],
    changed: Iterable[ObjectKey],
) -> Tenant:
    """The tenant `docs` (its objects after a change of the `changed` ones) make, validated:
    every unchanged object of a valid `state` goes in as its validated model, so only the
    changed objects and the tenant-wide rules are checked. Same result, same errors as
    `validate_tenant(name, docs)`."""
    if state is None or state.tenant is None:
        return validate_tenant(name, docs)  # nothing validated to build on
    skip = set(changed)
    if len(skip) == 1:
        # One object written: the indexes may prove the tenant-wide rules still hold.
        (ident,) = skip
        index = state.index()
        if index is not None:
            tenant = changed_tenant(state.tenant, index, ident, docs.get(ident), state.objects)
            if tenant is not None:
                return tenant
    reuse = {k: p for k, p in state.parts.items() if k not in skip and k in docs}
    data = assemble_tenant(docs, reuse)
    # The default answering rules of users without their own, as validated models (the
    # tenant would otherwise validate 10,000 empty tables again); in the order the
    # tenant's own default (config.models.Tenant._default_user_routing) puts them.
    extensions = [_extension(u) for u in data.get("users", ())]
    routing = data.get("routing")
    if extensions and (routing is None or isinstance(routing, dict)):
        routing = dict(routing or {})
        explicit = routing.get("users", {})
        if isinstance(explicit, dict):
            defaults = {e: explicit.get(e, _DEFAULT_ANSWERING) for e in extensions if e}
            routing["users"] = {**defaults, **explicit}
            data["routing"] = routing
    return _validated(name, docs, data)


def _extension(entry: Any) -> str:
    value = getattr(entry, "extension", None) if isinstance(entry, BaseModel) else None
    if isinstance(entry, dict):
        value = entry.get("extension")
    return value if isinstance(value, str) and (value.isascii() and value.isdigit()) else ""


def _validated(name: str, docs: Mapping[ObjectKey, Any], data: dict[str, Any]) -> Tenant:
    try:
        return Tenant.model_validate(data)
    except ValidationError as exc:
        located = index_keys(docs)
        errors = []
        for loc, msg in located_errors(exc):
            kind, key, rest = located(loc)
            errors.append(FieldError(name, kind, key or name, field_path(rest), msg))
        raise InvalidObject(errors) from None


def parts_of(tenant: Tenant, keys: Iterable[ObjectKey]) -> dict[ObjectKey, BaseModel]:
    """The validated model of each stored object (`keys`) of a validated tenant; the
    tenant's own fields are not a part (they are always validated from their document)."""
    wanted = set(keys)
    out: dict[ObjectKey, BaseModel] = {}
    for kind in KINDS.values():
        if not kind.path:
            continue
        holder: Any = tenant
        for part in kind.path:
            holder = getattr(holder, part, ())
        if isinstance(holder, Mapping):
            entries: Iterable[tuple[str, Any]] = holder.items()
        else:
            entries = ((object_key(kind.name, entry), entry) for entry in holder)
        for key, entry in entries:
            ident = (kind.name, key)
            if ident in wanted and isinstance(entry, BaseModel):
                out[ident] = entry
    return out


def _part(tenant: Tenant, kind_name: str, key: str) -> BaseModel | None:
    """The validated model of one stored object of a validated tenant."""
    kind = KINDS[kind_name]
    if kind_name == "user":
        return tenant.user_by_extension(key)
    holder: Any = tenant
    for part in kind.path:
        holder = getattr(holder, part, ())
    if isinstance(holder, Mapping):
        found = holder.get(key)
        return found if isinstance(found, BaseModel) else None
    for entry in holder:
        if isinstance(entry, BaseModel) and object_key(kind_name, entry) == key:
            return entry
    return None


def field_path(loc: Sequence[str | int]) -> str:
    """A location inside an object as `a.b[2].c`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
