"""The provisioning service: typed operations on the model kept in the Store.

Over 600 lines because every operation (one object, a batch, the whole model) shares the
validation and storage helpers at the bottom; split them only together.

    service = ProvisioningService(store, mode="database")
    who = Actor("alice", "192.0.2.7")
    item = await service.create(who, "user", "acme", {"extension": "201", "password": "..."})
    item = await service.update(who, "user", "acme", "201", {...}, expected_version=item.version)
    page = await service.list_objects("user", "acme", limit=50)          # page.next_cursor pages on
    await service.delete(who, "user", "acme", "201")

Every change is validated by the `config/` models and the same cross-object rules the file
loader applies (the tenant is validated as `config.models.Tenant`, with the objects the
change leaves alone passed in as their validated models: `softswitch.provisioning.validated`),
written with its audit record in one transaction, and refused whole otherwise
(`InvalidObject` names each object and field). The service keeps the validated model at the
store's revision between calls; a change by another process (another node, the command
line, the admin API as a running switch sees it) moves the revision, and the next call reads
the objects it changed (`Store.load_provisioning_changes`) and validates them.
The admin API and the command line both use this; nothing here knows HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from config.loader import located_errors
from config.models import Tenant
from softswitch.provisioning.errors import (
    FieldError,
    InvalidObject,
    NotFound,
    ReadOnly,
    VersionMismatch,
)
from softswitch.provisioning.model import (
    KINDS,
    TENANT_PARTS,
    ObjectKey,
    object_key,
    plain,
    split_tenant,
)
from softswitch.provisioning.validated import (
    ModelState,
    TenantState,
    field_path,
    parts_of,
    validate_change,
)
from storage.base import Store
from storage.provisioning import (
    AuditQuery,
    AuditRecord,
    ObjectWrite,
    ProvisionedObject,
    ProvisioningDelta,
    RevisionMoved,
    VersionConflict,
)

__all__ = [
    "Actor",
    "Change",
    "Item",
    "ObjectChange",
    "Page",
    "ProvisioningService",
    "Snapshot",
]

_T = TypeVar("_T")
# What a planned write leaves of each tenant it touches, for the kept model: the documents
# written (None: deleted) and the tenant validated with them; None: the tenant is deleted.
_Updates = dict[str, tuple[dict[ObjectKey, dict[str, Any] | None], Tenant] | None]
_RETRIES = 8  # re-validations when another writer changed the model meanwhile


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a change and from where: an admin login and its client address, the
    command line user and host, or the configuration file."""

    name: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class Item:
    """One provisioning object as stored: `version` is its ETag."""

    tenant: str
    kind: str
    key: str
    version: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Page:
    """A page of `list`; pass `next_cursor` back for the next one (None: the last page)."""

    items: list[Item]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """One object a whole-model apply (import, file reload) creates, updates or deletes."""

    action: Literal["create", "update", "delete"]
    tenant: str
    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.action} {self.kind} {self.key!r} (tenant {self.tenant!r})"


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One object of a batch (`change_many`): `data` None deletes it. `key` is needed for
    updates, deletes and answering objects; a create derives it from `data`.
    `expected_version`: None = whatever is stored, 0 = must not exist, N = must be at N."""

    tenant: str
    kind: str
    data: Mapping[str, Any] | None
    key: str = ""
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The whole model at one revision, validated; `problems` lists tenants that did not
    validate (left out), which only a database edited by hand can cause."""

    revision: int
    tenants: tuple[Tenant, ...]
    problems: tuple[str, ...] = ()
    invalid: frozenset[str] = frozenset()  # names of the tenants left out
    # The stored documents the tenants were built from, per tenant.
    documents: Mapping[str, Mapping[ObjectKey, Any]] = field(default_factory=dict, repr=False)


class ProvisioningService:
    """Typed operations on the stored provisioning model; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        mode: Literal["database", "file"] = "database",
        clock: Callable[[], float] = time.time,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.mode = mode
        self.clock = clock
        # Told the new revision after every change made through this service (the running
        # switch applies it at once instead of at its next poll).
        self.on_change = on_change
        # The validated model at the store's revision, kept between calls: a write
        # validates only what it changes against it (softswitch.provisioning.validated).
        self._state: ModelState | None = None

    # -- reading ---------------------------------------------------------------------------

    async def get(self, kind: str, tenant: str, key: str) -> Item:
        """One object; raises NotFound. Read from the kept model at the store's revision
        (one single-row read when nothing changed since)."""
        _kind(kind)
        state = await self._model(await self.store.provisioning_revision())
        held = state.tenants.get(tenant)
        obj = held.objects.get((kind, key)) if held is not None else None
        if obj is not None:
            # a copy: the kept document must not change with what a caller does to it
            return Item(obj.tenant, obj.kind, obj.key, obj.version, copy.deepcopy(obj.data))
        raise NotFound(f"no {kind} {key!r} in tenant {tenant!r}")

    async def list_objects(
        self,
        kind: str,
        tenant: str | None = None,
        *,
        cursor: str | None = None,
        limit: int = 100,
        where: Mapping[str, Any] | None = None,
    ) -> Page:
        """Objects of a kind (of one tenant, or all) in (tenant, key) order, `limit` at a
        time after `cursor`; `where` keeps objects whose top-level fields equal the values
        given (e.g. {"treatment": "user"})."""
        _kind(kind)
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be from 1 to 1000")
        after = _decode_cursor(cursor)
        items: list[Item] = []
        for obj in await self.store.load_provisioning(tenant, kind):
            if after is not None and (obj.tenant, obj.key) <= after:
                continue
            if where and any(obj.data.get(f) != v for f, v in where.items()):
                continue
            items.append(_item(obj))
            if len(items) > limit:
                break
        more = len(items) > limit
        items = items[:limit]
        last = items[-1] if items else None
        return Page(items, f"{last.tenant}\x1f{last.key}" if more and last else None)

    async def snapshot(self, previous: Snapshot | None = None) -> Snapshot:
        """The whole model, validated tenant by tenant (what a switch runs with). A tenant
        whose objects are those of `previous` is not validated again: it is the same
        `Tenant` object, so only the tenants a change touched are rebuilt."""
        revision = await self.store.provisioning_revision()
        state = await self._model(revision, previous)
        tenants: list[Tenant] = []
        problems: list[str] = []
        invalid: set[str] = set()
        documents: dict[str, Mapping[ObjectKey, Any]] = {}
        for name in sorted(state.tenants):
            held = state.tenants[name]
            documents[name] = held.documents()
            if held.tenant is None:
                problems.append(held.problem)
                invalid.add(name)
            else:
                tenants.append(held.tenant)
        return Snapshot(
            state.revision, tuple(tenants), tuple(problems), frozenset(invalid), documents
        )

    async def _model(self, revision: int, previous: Snapshot | None = None) -> ModelState:
        """The validated model at `revision` (the store's, just read): the kept one, or the
        store's objects with each tenant a change touched validated again (incrementally
        when the kept one was valid: `validate_change`)."""
        state = self._state
        if state is not None and state.revision == revision:
            return state
        if state is not None and state.revision < revision:
            # Another process wrote (the API's writes as a running switch sees them): read
            # only what changed, so a one-object change costs that object, not the model.
            delta = await self.store.load_provisioning_changes(state.revision)
            if delta is not None:
                self._state = await _moved(state, delta)
                return self._state
        objects = await self.store.load_provisioning()
        loaded = await self.store.provisioning_revision()
        known = state.tenants if state is not None else {}
        earlier = {t.name: t for t in previous.tenants} if previous is not None else {}
        tenants: dict[str, TenantState] = {}
        for name, held in _by_tenant(objects).items():
            docs = {k: o.data for k, o in held.items()}
            kept = known.get(name)
            if kept is not None and kept.tenant is not None:
                changed = {
                    k
                    for k in docs.keys() | kept.objects.keys()
                    if k not in kept.objects or k not in docs or kept.objects[k].data != docs[k]
                }
                if not changed:
                    tenants[name] = TenantState(name, held, kept.tenant, "", kept.parts)
                    continue
                try:
                    tenant = await _off_loop(validate_change, name, kept, docs, changed)
                except InvalidObject as exc:
                    tenants[name] = TenantState(name, held, None, str(exc))
                    continue
                tenants[name] = TenantState(name, held, tenant, "", parts_of(tenant, held))
            elif previous is not None and name in earlier and previous.documents.get(name) == docs:
                tenant = earlier[name]
                tenants[name] = TenantState(name, held, tenant, "", parts_of(tenant, held))
            else:
                tenants[name] = await _off_loop(TenantState.build, name, held)
        model = ModelState(revision, tenants)
        if loaded == revision:  # else another writer moved it while we read: keep nothing
            self._state = model
        return model

    async def audit(self, query: AuditQuery) -> list[AuditRecord]:
        """The audit log, newest first (`softswitch audit`, the API's GET /v1/audit)."""
        return await self.store.load_audit(query)

    # -- changing one object ---------------------------------------------------------------

    async def create(
        self, actor: Actor, kind: str, tenant: str, data: Mapping[str, Any], key: str = ""
    ) -> Item:
        """Create an object (`key` only for `answering`: the extension it belongs to; for a
        tenant, `tenant` is its name). Raises InvalidObject, VersionMismatch (exists)."""
        self._writable()
        model = _validate_object(kind, tenant, key or "(new)", data)
        if kind == "answering" and not key:
            raise InvalidObject(
                [FieldError(tenant, kind, "", "", "give the extension the rules belong to")]
            )
        key = object_key(kind, model, key)
        if kind == "tenant":
            tenant = key
        return await self._change(actor, kind, tenant, key, _stored(kind, model), 0)

    async def update(
        self,
        actor: Actor,
        kind: str,
        tenant: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> Item:
        """Replace an object's fields (its key stays). Raises NotFound, InvalidObject,
        VersionMismatch (`expected_version` given and the object changed since)."""
        self._writable()
        model = _validate_object(kind, tenant, key, data)
        if object_key(kind, model, key) != key:
            raise InvalidObject(
                [
                    FieldError(
                        tenant, kind, key, _key_field(kind), "cannot change; delete and create"
                    )
                ]
            )
        return await self._change(
            actor, kind, tenant, key, _stored(kind, model), expected_version, must_exist=True
        )

    async def delete(
        self, actor: Actor, kind: str, tenant: str, key: str, expected_version: int | None = None
    ) -> None:
        """Delete an object (a tenant with everything in it). Raises NotFound, InvalidObject
        (something still refers to it), VersionMismatch."""
        self._writable()
        await self._change(actor, kind, tenant, key, None, expected_version, must_exist=True)

    async def create_all(
        self, actor: Actor, kind: str, tenant: str, documents: Sequence[Mapping[str, Any]]
    ) -> list[Item]:
        """Create several objects of one kind in one tenant in one transaction, all or none
        (an import): a `change_many` of creates. Raises InvalidObject (every problem found),
        VersionMismatch (one exists already)."""
        changes = [ObjectChange(tenant, kind, data, expected_version=0) for data in documents]
        return await self.change_many(actor, changes)

    async def _change(
        self,
        actor: Actor,
        kind: str,
        tenant: str,
        key: str,
        doc: dict[str, Any] | None,
        expected_version: int | None,
        *,
        must_exist: bool = False,
    ) -> Item:
        async def plan(revision: int) -> tuple[list[ObjectWrite], Item, _Updates]:
            held = (await self._model(revision)).tenants.get(tenant)
            current = held.objects if held is not None else {}
            existing = current.get((kind, key))
            if existing is None and (must_exist or (kind != "tenant" and not current)):
                if not current:
                    raise NotFound(f"no tenant {tenant!r}")
                raise NotFound(f"no {kind} {key!r} in tenant {tenant!r}")
            if expected_version is not None:
                actual = existing.version if existing is not None else 0
                if actual != expected_version:
                    raise VersionMismatch(
                        _mismatch(kind, tenant, key, expected_version, actual), actual
                    )
            updates: _Updates
            if kind == "tenant" and doc is None:
                writes = [ObjectWrite(tenant, k, ky, None) for k, ky in current]
                updates = {tenant: None}
            else:
                docs = held.documents() if held is not None else {}
                if doc is None:
                    docs.pop((kind, key), None)
                else:
                    docs[(kind, key)] = doc
                validated = await _off_loop(validate_change, tenant, held, docs, {(kind, key)})
                if kind == "tenant":
                    await self._check_domain(tenant, doc)
                writes = [ObjectWrite(tenant, kind, key, doc, expected_version)]
                updates = {tenant: ({(kind, key): doc}, validated)}
            version = (existing.version if existing else 0) + (1 if doc is not None else 0)
            if existing is not None and doc is not None and existing.data == doc:
                version = existing.version
            item = Item(tenant, kind, key, version, doc if doc is not None else {})
            return writes, item, updates

        return await self._write(actor, plan)

    async def _write(
        self,
        actor: Actor,
        plan: Callable[[int], Awaitable[tuple[list[ObjectWrite], _T, _Updates | None]]],
    ) -> _T:
        """Store what `plan` (read against the revision given) writes and return its result;
        when another writer moved the revision meanwhile, plan again. Nothing to write (a
        dry run, no difference) stores nothing. The plan's `_Updates` move the kept model
        to the new revision (None: it is read again next time)."""
        for _ in range(_RETRIES):
            revision = await self.store.provisioning_revision()
            writes, result, updates = await plan(revision)
            if not writes:
                return result
            at = self.clock()
            try:
                new_revision, _ = await self.store.write_provisioning(
                    writes,
                    actor=actor.name,
                    source=actor.source,
                    at=at,
                    base_revision=revision,
                )
            except RevisionMoved:
                continue
            except VersionConflict as exc:
                raise VersionMismatch(str(exc), exc.actual) from None
            self._keep(revision, new_revision, updates, at)
            self._notify(new_revision, revision)
            return result
        raise RevisionMoved("provisioning keeps changing; try again")

    def _keep(self, base: int, revision: int, updates: _Updates | None, at: float) -> None:
        """After a write from `base` to `revision`: the kept model, moved by `updates`."""
        state = self._state
        if state is None or state.revision != base or revision == base:
            return
        if updates is None or revision != base + 1:
            self._state = None
            return
        tenants = dict(state.tenants)
        for name, update in updates.items():
            if update is None:
                tenants.pop(name, None)
                continue
            written, tenant = update
            held = tenants.get(name) or TenantState(name, {}, None)
            tenants[name] = held.after(written, tenant, at)
        self._state = ModelState(revision, tenants)

    async def _check_domain(self, tenant: str, doc: Mapping[str, Any] | None) -> None:
        # The one rule across tenants (config.models.SwitchConfig): names and domains are
        # unique. Names are keys already; domains are checked here.
        if doc is None:
            return
        domain = str(doc.get("domain", "")).lower()
        for other in await self.store.load_provisioning(kind="tenant"):
            if other.tenant != tenant and str(other.data.get("domain", "")).lower() == domain:
                raise InvalidObject(
                    [
                        FieldError(
                            tenant,
                            "tenant",
                            tenant,
                            "domain",
                            f"duplicate domain {domain!r} (tenant {other.tenant!r})",
                        )
                    ]
                )

    # -- several objects at once: bulk operations, imports, what-if ------------------------

    async def change_many(
        self, actor: Actor, changes: Sequence[ObjectChange], *, dry_run: bool = False
    ) -> list[Item]:
        """Apply a batch of object changes in one transaction, all or nothing: every object
        and every tenant touched is validated with the whole batch in place (InvalidObject
        lists every problem of every object). With `dry_run`, only validate."""
        self._writable()

        async def plan(revision: int) -> tuple[list[ObjectWrite], list[Item], _Updates]:
            writes, items, tenants = await self._plan(changes, revision)
            updates: _Updates = {}
            for w in writes:
                written = updates.setdefault(w.tenant, ({}, tenants[w.tenant]))
                assert written is not None
                written[0][(w.kind, w.key)] = dict(w.data) if w.data is not None else None
            return ([] if dry_run else writes), items, updates

        return await self._write(actor, plan)

    async def proposed(self, changes: Sequence[ObjectChange]) -> dict[str, Tenant]:
        """The tenants a batch would leave, validated, without storing anything (what-if)."""
        _, _, tenants = await self._plan(changes, await self.store.provisioning_revision())
        return tenants

    async def _plan(
        self, changes: Sequence[ObjectChange], revision: int
    ) -> tuple[list[ObjectWrite], list[Item], dict[str, Tenant]]:
        errors: list[FieldError] = []
        resolved: list[tuple[ObjectChange, str, dict[str, Any] | None]] = []
        for change in changes:
            try:
                if change.kind == "tenant" and change.data is None:
                    raise InvalidObject(
                        [
                            FieldError(
                                change.tenant,
                                "tenant",
                                change.tenant,
                                "",
                                "delete a tenant on its own, not in a batch",
                            )
                        ]
                    )
                if change.data is None:
                    _kind(change.kind)
                    resolved.append((change, change.key, None))
                    continue
                model = _validate_object(
                    change.kind, change.tenant, change.key or "(new)", change.data
                )
                if change.kind == "answering" and not change.key:
                    raise InvalidObject(
                        [FieldError(change.tenant, "answering", "", "", "give the extension")]
                    )
                key = object_key(change.kind, model, change.key)
                if change.key and key != change.key:
                    raise InvalidObject(
                        [
                            FieldError(
                                change.tenant,
                                change.kind,
                                change.key,
                                _key_field(change.kind),
                                "cannot change; delete and create",
                            )
                        ]
                    )
                resolved.append((change, key, _stored(change.kind, model)))
            except InvalidObject as exc:
                errors += exc.errors
        if errors:
            raise InvalidObject(errors)
        names = sorted({c.tenant for c, _, _ in resolved})
        state = await self._model(revision)
        held = {name: state.tenants.get(name) for name in names}
        stored: dict[str, Mapping[ObjectKey, ProvisionedObject]] = {
            name: h.objects if h is not None else {} for name, h in held.items()
        }
        docs = {name: h.documents() if h is not None else {} for name, h in held.items()}
        touched: dict[str, set[ObjectKey]] = {name: set() for name in names}
        writes: list[ObjectWrite] = []
        items: list[Item] = []
        for change, key, doc in resolved:
            existing = stored[change.tenant].get((change.kind, key))
            actual = existing.version if existing is not None else 0
            if change.expected_version is not None and actual != change.expected_version:
                raise VersionMismatch(
                    _mismatch(change.kind, change.tenant, key, change.expected_version, actual),
                    actual,
                )
            if doc is None and existing is None:
                raise NotFound(f"no {change.kind} {key!r} in tenant {change.tenant!r}")
            if doc is None:
                docs[change.tenant].pop((change.kind, key), None)
            else:
                docs[change.tenant][(change.kind, key)] = doc
            touched[change.tenant].add((change.kind, key))
            writes.append(
                ObjectWrite(change.tenant, change.kind, key, doc, change.expected_version)
            )
            version = (
                actual + 1
                if doc is not None and (existing is None or existing.data != doc)
                else actual
            )
            items.append(Item(change.tenant, change.kind, key, version, doc or {}))
        tenants: dict[str, Tenant] = {}
        domains: dict[str, str] = {}
        for other in await self.store.load_provisioning(kind="tenant"):
            if other.tenant not in docs:
                domains[str(other.data.get("domain", "")).lower()] = other.tenant
        for name in names:
            if not stored[name] and not any(k == "tenant" for k, _ in docs[name]):
                raise NotFound(f"no tenant {name!r}")
            try:
                tenants[name] = await _off_loop(
                    validate_change, name, held[name], docs[name], touched[name]
                )
            except InvalidObject as exc:
                errors += exc.errors
                continue
            domain = tenants[name].domain.lower()
            if domain in domains:
                errors.append(
                    FieldError(
                        name,
                        "tenant",
                        name,
                        "domain",
                        f"duplicate domain {domain!r} (tenant {domains[domain]!r})",
                    )
                )
            domains.setdefault(domain, name)
        if errors:
            raise InvalidObject(errors)
        return writes, items, tenants

    # -- the whole model at once: seed, import, file reload --------------------------------

    async def apply(
        self,
        actor: Actor,
        tenants: Sequence[Tenant],
        *,
        dry_run: bool = False,
        from_file: bool = False,
    ) -> list[Change]:
        """Make the stored model equal to `tenants` (validated, e.g. a loaded file's), in one
        transaction; returns what changes (with `dry_run`, what would). `from_file` is the
        file mode's reload, the only whole-model write allowed in that mode."""
        if not from_file:
            self._writable()
        wanted: dict[tuple[str, str, str], dict[str, Any]] = {}
        for tenant in tenants:
            for (kind, key), doc in split_tenant(tenant).items():
                wanted[(tenant.name, kind, key)] = doc

        async def plan(_revision: int) -> tuple[list[ObjectWrite], list[Change], None]:
            stored = {(o.tenant, o.kind, o.key): o for o in await self.store.load_provisioning()}
            changes: list[Change] = []
            writes: list[ObjectWrite] = []
            for ident, doc in wanted.items():
                old = stored.get(ident)
                if old is None or old.data != doc:
                    changes.append(Change("create" if old is None else "update", *ident))
                    writes.append(ObjectWrite(*ident, doc))
            for ident in stored.keys() - wanted.keys():
                changes.append(Change("delete", *ident))
                writes.append(ObjectWrite(*ident, None))
            changes.sort(key=lambda c: (c.tenant, c.kind, c.key))
            return ([] if dry_run else writes), changes, None

        return await self._write(actor, plan)

    async def seed(self, actor: Actor, tenants: Sequence[Tenant]) -> bool:
        """Database mode's first start: store the file's tenants when the store has never
        held any provisioning (revision 0). True when it seeded."""
        if await self.store.provisioning_revision() != 0:
            return False
        if not tenants:
            return False
        await self.apply(actor, tenants, from_file=True)
        return True

    def _writable(self) -> None:
        if self.mode == "file":
            raise ReadOnly(
                'provisioning = "file": the configuration file is the truth; edit it and run '
                "`softswitch reload` (or send SIGHUP)"
            )

    def _notify(self, revision: int, before: int) -> None:
        if self.on_change is not None and revision != before:
            self.on_change(revision)


# -- helpers ------------------------------------------------------------------------------


async def _off_loop(work: Callable[..., _T], *args: Any) -> _T:
    """Validation in a worker thread: the switch's loop (where the API's provisioning
    endpoints run) keeps serving calls meanwhile. What it validates is not changed by
    anyone while it runs (documents built for it, the kept state immutable)."""
    return await asyncio.to_thread(work, *args)


def _kind(kind: str) -> None:
    if kind not in KINDS:
        raise NotFound(f"no object kind {kind!r} (kinds: {', '.join(KINDS)})")


def _key_field(kind: str) -> str:
    return KINDS[kind].key_field


def _mismatch(kind: str, tenant: str, key: str, expected: int, actual: int) -> str:
    where = f"{kind} {key!r} of tenant {tenant!r}"
    if expected == 0:
        return f"{where} already exists"
    if actual == 0:
        return f"{where} does not exist"
    return f"{where} is at version {actual}, not {expected}"


def _item(obj: ProvisionedObject) -> Item:
    return Item(obj.tenant, obj.kind, obj.key, obj.version, obj.data)


def _decode_cursor(cursor: str | None) -> tuple[str, str] | None:
    if not cursor:
        return None
    tenant, sep, key = cursor.partition("\x1f")
    if not sep:
        raise ValueError("not a cursor of this list")
    return tenant, key


async def _moved(state: ModelState, delta: ProvisioningDelta) -> ModelState:
    """`state` with the objects `delta` says changed, at the delta's revision: each tenant
    they touched validated again (incrementally when it was valid), the others as they
    were. The same model a full load at that revision gives."""
    touched: dict[str, dict[ObjectKey, ProvisionedObject | None]] = {}
    for (owner, kind, key), obj in delta.objects.items():
        touched.setdefault(owner, {})[(kind, key)] = obj
    tenants = dict(state.tenants)
    for name, changes in touched.items():
        kept = tenants.get(name)
        objects = dict(kept.objects) if kept is not None else {}
        for ident, obj in changes.items():
            if obj is None:
                objects.pop(ident, None)
            else:
                objects[ident] = obj
        if not objects:
            tenants.pop(name, None)  # every object of the tenant deleted
            continue
        if kept is None or kept.tenant is None:
            tenants[name] = await _off_loop(TenantState.build, name, objects)
            continue
        # Written and written back, or only the version moved: nothing to validate.
        changed = {
            ident
            for ident in changes
            if (ident in objects) != (ident in kept.objects)
            or (ident in objects and objects[ident].data != kept.objects[ident].data)
        }
        if not changed:
            tenants[name] = TenantState(name, objects, kept.tenant, "", kept.parts, kept.cache)
            continue
        docs = {k: o.data for k, o in objects.items()}
        try:
            tenant = await _off_loop(validate_change, name, kept, docs, changed)
        except InvalidObject as exc:
            tenants[name] = TenantState(name, objects, None, str(exc))
            continue
        tenants[name] = kept.moved(objects, changed, tenant)
    return ModelState(delta.revision, tenants)


def _by_tenant(
    objects: Sequence[ProvisionedObject],
) -> dict[str, dict[ObjectKey, ProvisionedObject]]:
    out: dict[str, dict[ObjectKey, ProvisionedObject]] = {}
    for obj in objects:
        out.setdefault(obj.tenant, {})[(obj.kind, obj.key)] = obj
    return out


def _validate_object(kind: str, tenant: str, key: str, data: Mapping[str, Any]) -> BaseModel:
    """One object by its own model (fields only; the tenant's rules come after)."""
    _kind(kind)
    if not isinstance(data, Mapping):
        raise InvalidObject([FieldError(tenant, kind, key, "", "must be a table of fields")])
    model = KINDS[kind].model
    if kind == "tenant":
        nested = sorted(k for k in TENANT_PARTS if k in data)
        if nested:
            raise InvalidObject(
                [
                    FieldError(tenant, kind, key, n, "provision these as objects of their own")
                    for n in nested
                ]
            )
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidObject(
            FieldError(tenant, kind, key, _field(loc), msg) for loc, msg in located_errors(exc)
        ) from None


def _stored(kind: str, model: BaseModel) -> dict[str, Any]:
    """The document stored for a validated object: the form `split_tenant` gives."""
    doc = plain(model)
    assert isinstance(doc, dict)
    if kind == "user" and doc.get("username") == doc.get("extension"):
        doc.pop("username", None)
    if kind == "disaster_plan":
        doc.pop("history", None)
    return doc


def _field(loc: Sequence[str | int]) -> str:
    return field_path(loc)
