"""Records and rules of the provisioning tables (migration 0005), shared by both backends.

The store keeps provisioning objects as JSON documents keyed by (tenant, kind, key); what a
kind means and how objects are validated is the provisioning service's business
(`softswitch.provisioning`), the store only checks versions and keeps the audit trail.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from storage.errors import StorageError

__all__ = [
    "NOTIFY_CHANNEL",
    "SECRET_FIELDS",
    "AuditQuery",
    "AuditRecord",
    "ObjectWrite",
    "PlannedChange",
    "ProvisionedObject",
    "ProvisioningDelta",
    "RevisionMoved",
    "VersionConflict",
    "check_actor",
    "check_text",
    "decode_document",
    "delta_from_rows",
    "encode_document",
    "key_order",
    "plan_writes",
]

#: PostgreSQL channel NOTIFYed with the new revision after every provisioning change.
NOTIFY_CHANNEL = "softswitch_provisioning"

# Fields whose values the audit log never holds (it shows "***" and whether they changed).
SECRET_FIELDS = frozenset({"password", "ha1_md5", "ha1_sha256", "leader_pin", "participant_pin"})


def key_order(key: str) -> tuple[int, int, str]:
    """How lists order keys: extensions (digits, up to 18) as numbers, then the rest as text
    (code points). Both backends' `page_provisioning` order by the same triple in SQL."""
    return (0, int(key), key) if key.isascii() and key.isdigit() and len(key) < 19 else (1, 0, key)


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True, slots=True)
class ProvisionedObject:
    """One stored provisioning object: its fields (`data`) and its change count."""

    tenant: str
    kind: str
    key: str
    version: int
    data: dict[str, Any]
    updated_at: float


@dataclass(frozen=True, slots=True)
class ProvisioningDelta:
    """What the changes after one revision left (`Store.load_provisioning_changes`): each
    object they touched, as stored at `revision` (None: deleted)."""

    revision: int
    objects: Mapping[tuple[str, str, str], ProvisionedObject | None]


def delta_from_rows(since: int, rows: Sequence[Sequence[Any]]) -> ProvisioningDelta | None:
    """The delta the changes query's rows make (an audit record's revision and object, the
    object as stored, NULLs when deleted, and the store's revision), or None when there are
    none or they do not account for every revision after `since` (a log edited by hand):
    then only a full load is right."""
    if not rows:
        return None
    revision = int(rows[0][7])
    seen = {int(r[0]) for r in rows}
    if seen != set(range(since + 1, revision + 1)):
        return None
    objects: dict[tuple[str, str, str], ProvisionedObject | None] = {}
    for _, tenant, kind, key, version, data, updated_at, _ in rows:
        objects[(tenant, kind, key)] = (
            None
            if version is None
            else ProvisionedObject(
                tenant, kind, key, int(version), decode_document(data) or {}, updated_at or 0.0
            )
        )
    return ProvisioningDelta(revision, objects)


@dataclass(frozen=True, slots=True)
class ObjectWrite:
    """One object to create, replace or (with `data` None) delete.

    `expected_version`: None writes whatever is stored; 0 requires that the object does not
    exist; N requires that its stored version is N (else `VersionConflict`).
    """

    tenant: str
    kind: str
    key: str
    data: Mapping[str, Any] | None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited change: who, from where, when, which object, before and after."""

    id: int
    at: float
    actor: str
    source: str
    action: str  # "create", "update" or "delete"
    tenant: str
    kind: str
    key: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    revision: int


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of `Store.load_audit`; `before_id` pages backwards (newest first)."""

    tenant: str | None = None
    kind: str | None = None
    key: str | None = None
    actor: str | None = None
    since: float | None = None
    until: float | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class PlannedChange:
    """A checked write: what the backend stores and audits."""

    write: ObjectWrite
    action: str
    version: int  # the object's version after the change (the deleted one's for a delete)
    before: str | None  # JSON
    after: str | None  # JSON
    audit_before: str | None = None  # JSON with secrets masked
    audit_after: str | None = None


class VersionConflict(StorageError):
    """An object's stored version is not the one the change was based on."""

    def __init__(self, write: ObjectWrite, actual: int) -> None:
        self.write = write
        self.actual = actual  # 0: the object does not exist
        expected = write.expected_version
        if expected == 0:
            what = "already exists"
        elif actual == 0:
            what = "does not exist"
        else:
            what = f"is at version {actual}, not {expected}"
        super().__init__(f"{write.kind} {write.key!r} of tenant {write.tenant!r} {what}")


class RevisionMoved(StorageError):
    """The provisioning model changed since the revision a batch was validated against."""


def encode_document(data: Mapping[str, Any]) -> str:
    """An object's fields as JSON text; raises StorageError for what JSON cannot hold."""
    try:
        return _JSON.encode(data)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"provisioning object is not JSON: {exc}") from None


def decode_document(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StorageError("stored provisioning object is not a JSON object")
    return value


def check_text(name: str, value: object) -> str:
    """A text argument as both databases store it (no NUL, no lone surrogates)."""
    if not isinstance(value, str):
        raise StorageError(f"{name} must be a string, got {type(value).__name__}")
    if "\x00" in value:
        raise StorageError(f"{name} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StorageError(f"{name} is not valid Unicode text") from None
    return value


def check_actor(actor: object, source: object, at: object) -> tuple[str, str, float]:
    """Validate who/where/when of a change."""
    who = check_text("actor", actor)
    if not who.strip():
        raise StorageError("actor must not be empty")
    where = check_text("source", source)
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise StorageError(f"at must be finite epoch seconds, got {at!r}")
    return who, where, float(at)


def plan_writes(
    writes: Sequence[ObjectWrite], current: Mapping[tuple[str, str, str], tuple[int, str]]
) -> list[PlannedChange]:
    """Check each write against the stored (version, JSON) of its object and say what to do.

    A write that changes nothing (same fields, or deleting what does not exist without an
    expected version) is dropped, so re-applying a file records nothing. Raises
    `VersionConflict` or StorageError (bad write); a key written twice is refused.
    """
    planned: list[PlannedChange] = []
    seen: set[tuple[str, str, str]] = set()
    for write in writes:
        ident = _check_write(write)
        if ident in seen:
            raise StorageError(
                f"{write.kind} {write.key!r} of tenant {write.tenant!r} written twice"
            )
        seen.add(ident)
        version, before = current.get(ident, (0, None))
        expected = write.expected_version
        if expected is not None and expected != version:
            raise VersionConflict(write, version)
        if write.data is None:
            if before is None:
                continue
            planned.append(
                PlannedChange(write, "delete", version, before, None, _masked(before, None))
            )
            continue
        after = encode_document(write.data)
        if before is not None and json.loads(before) == json.loads(after):
            continue
        action = "create" if before is None else "update"
        planned.append(
            PlannedChange(
                write,
                action,
                version + 1,
                before,
                after,
                None if before is None else _masked(before, None),
                _masked(after, before),
            )
        )
    return planned


def _masked(text: str, other: str | None) -> str:
    """A document for the audit log: secret fields as "***", or "*** (changed)" when they
    differ from the same field of `other` (the document before the change)."""
    reference = json.loads(other) if other is not None else None
    return encode_document(_mask(json.loads(text), reference))


def _mask(value: Any, other: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            o = other.get(k) if isinstance(other, dict) else None
            if k in SECRET_FIELDS and v is not None:
                out[k] = "***" if other is None or o == v else "*** (changed)"
            else:
                out[k] = _mask(v, o)
        return out
    if isinstance(value, list):
        others = other if isinstance(other, list) and len(other) == len(value) else None
        return [_mask(v, others[i] if others else None) for i, v in enumerate(value)]
    return value


def _check_write(write: ObjectWrite) -> tuple[str, str, str]:
    if not isinstance(write, ObjectWrite):
        raise StorageError(f"expected an ObjectWrite, got {type(write).__name__}")
    parts = []
    for name in ("tenant", "kind", "key"):
        text = check_text(name, getattr(write, name))
        if not text:
            raise StorageError(f"{name} must not be empty")
        parts.append(text)
    expected = write.expected_version
    if expected is not None and (
        isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
    ):
        raise StorageError(f"expected_version must be a version number, got {expected!r}")
    if write.data is not None and not isinstance(write.data, Mapping):
        raise StorageError("data must be a mapping of fields or None (delete)")
    return parts[0], parts[1], parts[2]
