"""The provisioning model cut into stored objects, and put back together.

A tenant as the configuration file writes it (`config.models.Tenant`) is stored as objects
of a few kinds, each keyed within its tenant and each a document in the shape of its part
of the file:

    kind            key                 part of [[tenants]]                   model
    tenant          the tenant's name   everything not listed below           Tenant (whole)
    user            extension           [[tenants.users]]                     User
    answering       extension           [tenants.routing.users.<ext>]         UserRouting
    trunk           name                [[tenants.trunks]]                    Trunk
    conference      name                [[tenants.conferences]]               ConferenceBridge
    auto_attendant  name                [[tenants.auto_attendants]]           AutoAttendant
    time_frame      name or owner/name  [[tenants.routing.time_frames]]       TimeFrame
    number          E.164 number        [[tenants.routing.dids]]              Did
    disaster_plan   name                [[tenants.routing.disaster_plans]]    DisasterPlan
    site            name                [[tenants.sites]]                     Site
    mailbox         extension           [tenants.voicemail.mailboxes.<ext>]   Mailbox
    queue           name                [[tenants.queues]]                    CallQueue
    ring_group      name                [[tenants.routing.ring_groups]]       RingGroup

A new kind of object (mailboxes, menus, queues...) is one `Kind` row: an array of the tenant
(or of its routing) whose entries are keyed by `key_field`. `split_tenant` and
`assemble_tenant` handle such rows by themselves; only the kinds in `_SPECIAL` have special
cases (derived entries, extension-keyed tables).

Documents hold only what differs from the model's defaults, like a hand-written file, and
what the tenant model derives by itself is not stored: default answering rules of users,
the DID of a conference bridge or an auto attendant. Disaster plans' history lives in its own table.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, SecretStr

from config.answering import UserRouting
from config.attendant import AutoAttendant
from config.conference import ConferenceBridge
from config.models import Tenant, User
from config.numbers import Did, DisasterPlan, Treatment
from config.queues import CallQueue
from config.ringgroups import RingGroup
from config.sites import Site
from config.timeframes import TimeFrame
from config.trunks import Trunk
from config.voicemail import Mailbox

__all__ = [
    "KINDS",
    "ROUTING_PARTS",
    "TENANT_PARTS",
    "Kind",
    "ObjectKey",
    "assemble_tenant",
    "index_keys",
    "object_key",
    "plain",
    "split_tenant",
]

ObjectKey = tuple[str, str]  # (kind, key) within a tenant


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of provisioning object: where it sits in a tenant and what validates it."""

    name: str
    path: tuple[str, ...]  # where its documents live in the tenant's table; () = the tenant
    model: type[BaseModel]
    keyed_by_dict: bool = False  # a table keyed by the object's key instead of an array
    key_field: str = "name"  # the field of the model holding the object's key


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("tenant", (), Tenant),
        Kind("user", ("users",), User, key_field="extension"),
        Kind("answering", ("routing", "users"), UserRouting, keyed_by_dict=True),
        Kind("trunk", ("trunks",), Trunk),
        Kind("conference", ("conferences",), ConferenceBridge),
        Kind("auto_attendant", ("auto_attendants",), AutoAttendant),
        Kind("time_frame", ("routing", "time_frames"), TimeFrame),
        Kind("number", ("routing", "dids"), Did, key_field="number"),
        Kind("disaster_plan", ("routing", "disaster_plans"), DisasterPlan),
        Kind("site", ("sites",), Site),
        Kind("mailbox", ("voicemail", "mailboxes"), Mailbox, keyed_by_dict=True),
        Kind("queue", ("queues",), CallQueue),
        Kind("ring_group", ("routing", "ring_groups"), RingGroup),
    )
}

# The kinds split_tenant handles one by one; every other kind is a plain keyed array.
_SPECIAL = frozenset(
    {
        "tenant",
        "user",
        "answering",
        "trunk",
        "conference",
        "time_frame",
        "number",
        "disaster_plan",
        "mailbox",
    }
)

_DEFAULT_ANSWERING = UserRouting()

#: The fields of a tenant (and of its routing) that hold objects of their own kinds.
TENANT_PARTS = frozenset(k.path[0] for k in KINDS.values() if len(k.path) == 1)
ROUTING_PARTS = frozenset(
    k.path[1] for k in KINDS.values() if len(k.path) == 2 and k.path[0] == "routing"
)


def plain(value: Any) -> Any:
    """A model dump (python mode) as JSON/TOML values: secrets revealed, enums as their
    values, times as ISO text, sets sorted, paths as text."""
    if isinstance(value, BaseModel):
        return _document(value)
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=repr)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def object_key(kind: str, model: BaseModel, key: str = "") -> str:
    """The key of a validated object of `kind` (answering objects are keyed by the
    extension they belong to, given as `key`)."""
    if isinstance(model, TimeFrame):
        return model.name if model.owner is None else f"{model.owner}/{model.name}"
    if kind in ("answering", "mailbox"):
        if key:
            return key
        raise ValueError(f"no key for a {kind} object")
    spec = KINDS.get(kind)
    value = getattr(model, spec.key_field, None) if spec is not None else None
    if value is None:
        raise ValueError(f"no key for a {kind} object")
    return str(value)


def _document(model: BaseModel, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of `model` that differ from their defaults (`kind`, the tag of unions
    such as a time frame's `when`, always kept)."""
    out: dict[str, Any] = {}
    skip = set(exclude)
    for name, field in type(model).model_fields.items():
        if name in skip:
            continue
        value = getattr(model, name)
        if (
            name != "kind"
            and not field.is_required()
            and value == field.get_default(call_default_factory=True)
        ):
            continue
        out[name] = plain(value)
    return out


def split_tenant(tenant: Tenant) -> dict[ObjectKey, dict[str, Any]]:
    """A validated tenant as its stored objects: {(kind, key): document}."""
    out: dict[ObjectKey, dict[str, Any]] = {}
    bridge_dids = {
        (b.did, b.extension) for b in tenant.conferences if b.did is not None
    }  # the DIDs Tenant adds for its bridges by itself
    attendant_dids = {(a.did, a.extension) for a in tenant.auto_attendants if a.did is not None}
    for user in tenant.users:
        doc = _document(user)
        if doc.get("username") == user.extension:
            del doc["username"]  # derived from the extension
        out[("user", user.extension)] = doc
    users = {u.extension for u in tenant.users}
    for ext, rules in tenant.routing.users.items():
        if ext in users and rules == _DEFAULT_ANSWERING:
            continue
        out[("answering", ext)] = _document(rules)
    for trunk in tenant.trunks:
        out[("trunk", trunk.name)] = _document(trunk)
    for bridge in tenant.conferences:
        out[("conference", bridge.name)] = _document(bridge)
    for frame in tenant.routing.time_frames:
        out[("time_frame", object_key("time_frame", frame))] = _document(frame)
    for did in tenant.routing.dids:
        if (
            did.treatment is Treatment.CONFERENCE
            and (did.number, did.destination) in bridge_dids
            and not did.caller_id_prefix
            and not did.notes
        ):
            continue
        if (
            did.treatment is Treatment.AUTO_ATTENDANT
            and (did.number, did.destination) in attendant_dids
            and not did.caller_id_prefix
            and not did.notes
        ):
            continue
        out[("number", did.number)] = _document(did)
    for plan in tenant.routing.disaster_plans:
        out[("disaster_plan", plan.name)] = _document(plan, {"history"})
    for kind in KINDS.values():
        if kind.name in _SPECIAL or not kind.path:
            continue
        holder: Any = tenant
        for part in kind.path:
            holder = getattr(holder, part, ())
        for entry in holder:
            out[(kind.name, object_key(kind.name, entry))] = _document(entry)
    boxes = tenant.voicemail.mailboxes
    for ext, box in boxes.items():
        out[("mailbox", ext)] = _document(box)
    bridges = {b.extension for b in tenant.conferences}
    own = _document(tenant, TENANT_PARTS)
    routing = own.get("routing", {})
    for part in ROUTING_PARTS:
        routing.pop(part, None)
    conferences = [e for e in routing.get("conferences", []) if e not in bridges]
    if conferences:
        routing["conferences"] = conferences
    else:
        routing.pop("conferences", None)
    attendants = {a.extension for a in tenant.auto_attendants}
    pool = [e for e in routing.get("auto_attendants", []) if e not in attendants]
    if pool:
        routing["auto_attendants"] = pool
    else:
        routing.pop("auto_attendants", None)
    shared = [e for e in routing.get("mailboxes", []) if e not in boxes]  # others derived
    if shared:
        routing["mailboxes"] = shared
    else:
        routing.pop("mailboxes", None)
    queue_extensions = {q.extension for q in tenant.queues}
    queues = [e for e in routing.get("queues", []) if e not in queue_extensions]
    if queues:
        routing["queues"] = queues
    else:
        routing.pop("queues", None)
    if routing:
        own["routing"] = routing
    else:
        own.pop("routing", None)
    voicemail = own.get("voicemail", {})
    voicemail.pop("mailboxes", None)
    if not voicemail:
        own.pop("voicemail", None)
    out[("tenant", tenant.name)] = own
    return out


def assemble_tenant(
    objects: Mapping[ObjectKey, Mapping[str, Any]],
    reuse: Mapping[ObjectKey, BaseModel] | None = None,
) -> dict[str, Any]:
    """One tenant's stored objects as its table in the file (not yet validated).

    Objects go in key order, so a tenant reads the same whichever way it was built. An
    object in `reuse` goes in as that validated model instead of its document: validation
    takes a model instance as it is, so only the other objects are validated again.
    """
    reuse = reuse or {}
    tenant = next((doc for (kind, _), doc in objects.items() if kind == "tenant"), None)
    data: dict[str, Any] = _copy(tenant) if tenant is not None else {}
    for (kind_name, key), doc in sorted(objects.items(), key=lambda item: _order(item[0])):
        kind = KINDS.get(kind_name)
        if kind is None or not kind.path:
            continue
        parent = data
        for part in kind.path[:-1]:
            parent = parent.setdefault(part, {})
        leaf = kind.path[-1]
        entry: Any = reuse.get((kind_name, key))
        if entry is None:
            entry = _copy(doc)
        if kind.keyed_by_dict:
            parent.setdefault(leaf, {})[key] = entry
        else:
            parent.setdefault(leaf, []).append(entry)
    return data


def _order(ident: ObjectKey) -> tuple[str, int, str]:
    kind, key = ident
    # Extensions sort as numbers (100 before 1000), everything else as text.
    return (kind, int(key) if (key.isascii() and key.isdigit()) else -1, key)


def _copy(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else _copy_list(v) for k, v in doc.items()}


def _copy_list(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) if isinstance(v, Mapping) else _copy_list(v) for v in value]
    return value


def index_keys(
    objects: Mapping[ObjectKey, Any],
) -> Callable[[tuple[str | int, ...]], tuple[str, str, tuple[str | int, ...]]]:
    """For a tenant assembled from `objects`: which object a validation error's location
    (relative to the tenant) is in, as (kind, key, location within the object)."""
    by_path: dict[tuple[str, ...], tuple[str, list[str]]] = {}
    for kind in KINDS.values():
        if kind.path:
            keys = sorted(
                (k for (n, k) in objects if n == kind.name), key=lambda k: _order((kind.name, k))
            )
            by_path[kind.path] = (kind.name, keys)
    tenant_key = next((k for (n, k) in objects if n == "tenant"), "")

    def locate(loc: tuple[str | int, ...]) -> tuple[str, str, tuple[str | int, ...]]:
        for path, (kind_name, keys) in by_path.items():
            n = len(path)
            if tuple(loc[:n]) == path and len(loc) > n:
                where = loc[n]
                if isinstance(where, int):
                    if where < len(keys):
                        return kind_name, keys[where], tuple(loc[n + 1 :])
                    break  # an entry the tenant model added itself: the tenant's
                return kind_name, str(where), tuple(loc[n + 1 :])
        return "tenant", tenant_key, tuple(loc)

    return locate
