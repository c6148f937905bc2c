"""The storage contract: the `Binding` record and the abstract `Store`.

Backends (SQLite, PostgreSQL) implement `Store`; callers never see driver types or
driver exceptions, only `Binding`, plain values and `StorageError`.

Over 600 lines because the Store is one contract every backend implements whole
(registrations, settings, disaster plans, CDRs, API logins and tokens, bans); the record
types and checks of each area already live in modules of their own.
"""

from __future__ import annotations

import asyncio
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

from storage.bans import Ban, ban_to_row
from storage.cdr import Cdr, cdr_rows
from storage.cdr_analytics import QualityTotals, TrunkTotals, VolumeSlot
from storage.errors import StorageError
from storage.logins import ApiLogin, ApiToken, CdrQuery
from storage.object_pages import ObjectQuery
from storage.provisioning import (
    AuditQuery,
    AuditRecord,
    ObjectWrite,
    ProvisionedObject,
    ProvisioningDelta,
)
from storage.queue_events import QueueEvent, queue_event_to_row
from storage.voicemail import VoicemailRows

__all__ = [
    "BINDING_COLUMNS",
    "Binding",
    "BindingRow",
    "DisasterPlanEvent",
    "DisasterPlanState",
    "StorageError",
    "Store",
    "binding_from_row",
    "binding_to_row",
    "check_disaster_change",
    "check_keys",
    "check_limit",
    "check_text",
    "check_time",
    "redact_url",
    "storable_bans",
    "storable_cdrs",
    "storable_text",
    "unique_bindings",
]


@dataclass(slots=True)
class Binding:
    """One registered contact of an address-of-record (RFC 3261 10.3, RFC 5626 for
    `instance_id`/`reg_id`, RFC 3327 for `path`).

    The store keys bindings by `(aor, contact)`; the connection a binding arrived on
    (conn_id) is process-local and deliberately not part of the record.
    """

    aor: str
    contact: str
    expires_at: float
    q: float | None
    call_id: str
    cseq: int
    instance_id: str | None
    reg_id: int | None
    path: list[str]
    received: str | None
    transport: str
    user_agent: str | None
    registered_at: float
    reachable: bool | None = field(default=None)

    @property
    def key(self) -> tuple[str, str]:
        """The storage key `(aor, contact)`."""
        return (self.aor, self.contact)


# Column order shared by both backends' registrations table and by binding_to_row().
BINDING_COLUMNS: tuple[str, ...] = (
    "aor",
    "contact",
    "expires_at",
    "q",
    "call_id",
    "cseq",
    "instance_id",
    "reg_id",
    "path",
    "received",
    "transport",
    "user_agent",
    "registered_at",
    "reachable",
)

BindingRow = tuple[
    str,
    str,
    float,
    float | None,
    str,
    int,
    str | None,
    int | None,
    str,
    str | None,
    str,
    str | None,
    float,
    bool | None,
]


def _fail(b: Binding, problem: str) -> StorageError:
    return StorageError(f"binding {b.aor!r} {b.contact!r}: {problem}")


def storable_text(value: str) -> str:
    """`value` as both databases can store it: NUL characters and unencodable
    surrogates (SIP text is decoded with surrogateescape) become U+FFFD.

    SIP input is untrusted: one phone's odd User-Agent must not fail a whole batch.
    The mapping is deterministic, so keys normalised here still match on delete.
    """
    if "\x00" not in value and (value.isascii() or _encodable(value)):
        return value
    value = value.replace("\x00", "\ufffd")
    if _encodable(value):
        return value
    try:  # raw bytes smuggled in by surrogateescape -> one U+FFFD per bad sequence
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # other lone surrogates
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(b: Binding, name: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(b, f"{name} must be a string")
    return storable_text(value)


def _opt_text(b: Binding, name: str, value: object) -> str | None:
    return None if value is None else _text(b, name, value)


def _number(b: Binding, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(b, f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(b, f"{name} must be finite")
    return number


def _opt_number(b: Binding, name: str, value: object) -> float | None:
    return None if value is None else _number(b, name, value)


def _integer(b: Binding, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(b, f"{name} must be an integer")
    if not -(2**63) <= value < 2**63:
        raise _fail(b, f"{name} is out of range")
    return value


def _opt_integer(b: Binding, name: str, value: object) -> int | None:
    return None if value is None else _integer(b, name, value)


_REAL = frozenset((float, int))
_PATH_JSON = json.JSONEncoder(separators=(",", ":"))  # ASCII output: safe in any column


def _plain(text: str) -> bool:
    """True when storable_text() would return `text` unchanged."""
    return "\x00" not in text and (text.isascii() or _encodable(text))


_INT64 = 2**63


def binding_to_row(b: Binding) -> BindingRow:
    """Validate a binding and flatten it in `BINDING_COLUMNS` order (path as JSON text).

    Raises StorageError naming the binding and the field, so one bad binding from the
    registrar gives a clear error rather than a driver traceback.
    """
    # Fast path for well-typed bindings (write-behind sends hundreds per batch);
    # anything unusual goes through _checked_row, which also words the error.
    if type(b) is Binding:
        aor, contact, call_id, transport = b.aor, b.contact, b.call_id, b.transport
        instance_id, received, user_agent = b.instance_id, b.received, b.user_agent
        expires_at, registered_at, q = b.expires_at, b.registered_at, b.q
        cseq, reg_id, path, reachable = b.cseq, b.reg_id, b.path, b.reachable
        if (
            type(aor) is str
            and type(contact) is str
            and type(call_id) is str
            and type(transport) is str
            and (instance_id is None or type(instance_id) is str)
            and (received is None or type(received) is str)
            and (user_agent is None or type(user_agent) is str)
            and type(expires_at) in _REAL
            and type(registered_at) in _REAL
            and (q is None or type(q) in _REAL)
            and type(cseq) is int
            and -_INT64 <= cseq < _INT64
            and (reg_id is None or (type(reg_id) is int and -_INT64 <= reg_id < _INT64))
            and (reachable is None or type(reachable) is bool)
            and type(path) is list
            and all(type(hop) is str for hop in path)
            and math.isfinite(expires_at)
            and math.isfinite(registered_at)
            and (q is None or math.isfinite(q))
            and _plain(
                "".join(
                    [
                        aor,
                        contact,
                        call_id,
                        transport,
                        instance_id or "",
                        received or "",
                        user_agent or "",
                        *path,
                    ]
                )
            )
        ):
            return (
                aor,
                contact,
                float(expires_at),
                None if q is None else float(q),
                call_id,
                cseq,
                instance_id,
                reg_id,
                _PATH_JSON.encode(path) if path else "[]",
                received,
                transport,
                user_agent,
                float(registered_at),
                reachable,
            )
    return _checked_row(b)


def _checked_row(b: Binding) -> BindingRow:
    if not isinstance(b, Binding):
        raise StorageError(f"expected a Binding, got {type(b).__name__}")
    if not isinstance(b.path, list | tuple):
        raise _fail(b, "path must be a list of strings")
    hops = [_text(b, "path", hop) for hop in b.path]
    if b.reachable is not None and not isinstance(b.reachable, bool):
        raise _fail(b, "reachable must be a bool or None")
    return (
        _text(b, "aor", b.aor),
        _text(b, "contact", b.contact),
        _number(b, "expires_at", b.expires_at),
        _opt_number(b, "q", b.q),
        _text(b, "call_id", b.call_id),
        _integer(b, "cseq", b.cseq),
        _opt_text(b, "instance_id", b.instance_id),
        _opt_integer(b, "reg_id", b.reg_id),
        _PATH_JSON.encode(hops),
        _opt_text(b, "received", b.received),
        _text(b, "transport", b.transport),
        _opt_text(b, "user_agent", b.user_agent),
        _number(b, "registered_at", b.registered_at),
        b.reachable,
    )


def binding_from_row(row: Sequence[Any]) -> Binding:
    """Rebuild a Binding from a row in `BINDING_COLUMNS` order."""
    path = row[8]
    hops = json.loads(path) if isinstance(path, str | bytes) else path
    reachable = row[13]
    return Binding(
        aor=row[0],
        contact=row[1],
        expires_at=float(row[2]),
        q=None if row[3] is None else float(row[3]),
        call_id=row[4],
        cseq=int(row[5]),
        instance_id=row[6],
        reg_id=None if row[7] is None else int(row[7]),
        path=[str(hop) for hop in hops or ()],
        received=row[9],
        transport=row[10],
        user_agent=row[11],
        registered_at=float(row[12]),
        reachable=None if reachable is None else bool(reachable),
    )


def unique_bindings(bindings: Iterable[Binding]) -> list[BindingRow]:
    """Validated rows with one row per (aor, contact), the last one winning.

    A batch from write-behind can hold several updates of one contact; a single
    PostgreSQL INSERT ... ON CONFLICT may not touch a row twice, and the last
    update is the one that counts anyway.
    """
    rows: dict[tuple[str, str], BindingRow] = {}
    for b in bindings:
        row = binding_to_row(b)
        rows.pop((row[0], row[1]), None)  # keep the order of the latest update
        rows[(row[0], row[1])] = row
    return list(rows.values())


def storable_bans(bans: Sequence[Ban]) -> list[tuple[str, str, int, float, float]]:
    """Rows of bans to store, one per address (the last wins); StorageError naming the
    row and field of the first that is not storable."""
    rows: dict[str, tuple[str, str, int, float, float]] = {}
    for index, ban in enumerate(bans):
        try:
            row = ban_to_row(ban)
        except ValueError as error:
            raise StorageError(f"bans[{index}].{error}") from None
        rows[row[0]] = row
    return list(rows.values())


def storable_queue_events(
    events: Sequence[QueueEvent],
) -> list[tuple[str, str, str, str, str, str, float]]:
    """Rows of queue events to append; StorageError naming the row and field of the first
    that is not storable."""
    rows = []
    for index, event in enumerate(events):
        try:
            rows.append(queue_event_to_row(event))
        except ValueError as error:
            raise StorageError(f"queue_events[{index}].{error}") from None
    return rows


async def storable_cdrs(cdrs: Sequence[Cdr]) -> list[tuple[Any, ...]]:
    """The rows of a batch of CDRs, built in a thread (a batch's JSON encoding would
    otherwise hold the event loop for tens of milliseconds; another thread yields the
    GIL every 5 ms). Raises StorageError naming the CDR and field that cannot be stored."""
    try:
        return await asyncio.to_thread(cdr_rows, cdrs)
    except ValueError as exc:
        raise StorageError(str(exc)) from None


def check_keys(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Validate (aor, contact) keys for deletion."""
    out: list[tuple[str, str]] = []
    for key in keys:
        if (
            not isinstance(key, tuple | list)
            or len(key) != 2
            or not all(isinstance(part, str) for part in key)
        ):
            raise StorageError(f"binding key must be a pair of strings (aor, contact): {key!r}")
        out.append((storable_text(key[0]), storable_text(key[1])))
    return out


def check_text(name: str, value: object) -> str:
    """Validate a text argument (setting key/value, AOR); see storable_text()."""
    if not isinstance(value, str):
        raise StorageError(f"{name} must be a string, got {type(value).__name__}")
    return storable_text(value)


def check_time(name: str, value: object) -> float:
    """Validate an epoch-seconds argument such as `now`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise StorageError(f"{name} must be a number of epoch seconds, got {value!r}")
    return float(value)


def redact_url(url: str) -> str:
    """The URL with any password replaced by '***', for logs and error messages."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        userinfo = netloc[0].split(":", 1)[0] + ":***"
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{netloc[1]}"))
    except ValueError:
        return "<unparsable URL>"


@dataclass(frozen=True, slots=True)
class DisasterPlanState:
    """The stored status of one disaster plan of a tenant (plans are keyed by name)."""

    tenant: str
    plan: str
    enabled: bool
    changed_by: str
    changed_at: float


@dataclass(frozen=True, slots=True)
class DisasterPlanEvent:
    """One execute (enable) or revert (disable) of a disaster plan: the audit trail."""

    id: int
    tenant: str
    plan: str
    action: str  # "execute" or "revert"
    changed_by: str
    changed_at: float


def check_disaster_change(
    tenant: object, plan: object, enabled: object, changed_by: object, changed_at: object
) -> tuple[str, str, bool, str, float]:
    """Validate the arguments of `Store.change_disaster_plan`."""
    texts = []
    for name, value in (("tenant", tenant), ("plan", plan), ("changed_by", changed_by)):
        text = check_text(name, value)
        if not text.strip():
            raise StorageError(f"{name} must not be empty")
        texts.append(text)
    if not isinstance(enabled, bool):
        raise StorageError(f"enabled must be a bool, got {enabled!r}")
    when = check_time("changed_at", changed_at)
    if not math.isfinite(when):
        raise StorageError(f"changed_at must be finite, got {changed_at!r}")
    return texts[0], texts[1], enabled, texts[2], when


def check_limit(limit: object) -> int:
    """Validate a row limit (1 .. 100000)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise StorageError(f"limit must be an integer from 1 to 100000, got {limit!r}")
    return limit


class Store(VoicemailRows, ABC):
    """Durable state of the switch: registrations, settings, and (later) CDRs,
    voicemail and configuration.

    Use `await store.open()` / `await store.close()` or `async with store:`.
    Every method raises StorageError on failure; none lets a driver error escape.
    """

    #: Backend name, also the suffix of its migration files ("sqlite", "postgresql").
    backend: str = ""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (migrations run once each)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; safe to call twice or on a store never opened."""

    @abstractmethod
    async def save_bindings(self, bindings: Sequence[Binding]) -> None:
        """Insert or replace bindings keyed by (aor, contact), all in one transaction."""

    @abstractmethod
    async def delete_bindings(self, keys: Sequence[tuple[str, str]]) -> int:
        """Remove bindings by (aor, contact) in one transaction; returns how many existed."""

    @abstractmethod
    async def delete_aor(self, aor: str) -> int:
        """Remove every binding of an address-of-record; returns how many existed."""

    @abstractmethod
    async def load_bindings(self, now: float | None = None) -> list[Binding]:
        """All bindings, or only those with expires_at > now when `now` is given."""

    @abstractmethod
    async def purge_expired(self, now: float) -> int:
        """Delete bindings with expires_at <= now; returns how many were deleted."""

    @abstractmethod
    async def get_setting(self, key: str) -> str | None:
        """The value stored under `key`, or None."""

    @abstractmethod
    async def set_setting(self, key: str, value: str) -> None:
        """Store `value` under `key`, replacing any previous value."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The highest migration version applied (0 for an empty database)."""

    @abstractmethod
    async def change_disaster_plan(
        self,
        tenant: str,
        plan: str,
        enabled: bool,
        changed_by: str,
        changed_at: float,
        *,
        default_enabled: bool = False,
    ) -> DisasterPlanEvent | None:
        """Enable or disable a disaster plan and append the execute/revert event, atomically.

        `default_enabled` is the plan's status while the store has no row for it (the
        configuration's). Returns the event recorded, or None when the plan already had
        that status (nothing is written, so two operators racing record one change).
        """

    @abstractmethod
    async def load_disaster_plans(self, tenant: str | None = None) -> list[DisasterPlanState]:
        """Stored plan states (of one tenant, or all), ordered by tenant and plan."""

    @abstractmethod
    async def load_disaster_events(
        self, tenant: str | None = None, plan: str | None = None, limit: int = 100
    ) -> list[DisasterPlanEvent]:
        """The latest `limit` execute/revert events (optionally of one tenant / plan),
        oldest first."""

    @abstractmethod
    async def save_cdrs(self, cdrs: Sequence[Cdr]) -> None:
        """Insert call detail records (keyed by call_id; a repeat replaces) in one
        transaction."""

    @abstractmethod
    async def load_cdrs(self, start: float, end: float, tenant: str | None = None) -> list[Cdr]:
        """CDRs of calls that started in [start, end), optionally of one tenant, oldest
        first."""

    # -- admin API: logins, tokens, failed logins, call-history queries (branch adminapi) ----

    @abstractmethod
    async def create_api_login(self, login: ApiLogin) -> None:
        """Add a login; StorageError when the name is taken or a field is invalid."""

    @abstractmethod
    async def update_api_login(self, login: ApiLogin, expected_version: int) -> ApiLogin | None:
        """Replace a login if its stored version is ``expected_version``; returns it with
        the next version, or None when it is gone or was changed meanwhile."""

    @abstractmethod
    async def load_api_login(self, name: str) -> ApiLogin | None:
        """One login by name."""

    @abstractmethod
    async def load_api_logins(self) -> list[ApiLogin]:
        """Every login, by name."""

    @abstractmethod
    async def delete_api_login(self, name: str) -> bool:
        """Remove a login and its tokens; False when there was none."""

    @abstractmethod
    async def create_api_token(self, token: ApiToken) -> None:
        """Add a token (its id must be new)."""

    @abstractmethod
    async def load_api_token(self, token_id: str) -> ApiToken | None:
        """One token by id (revoked and expired ones too)."""

    @abstractmethod
    async def load_api_tokens(self, login: str | None = None) -> list[ApiToken]:
        """Tokens (of one login), oldest first."""

    @abstractmethod
    async def revoke_api_token(self, token_id: str, at: float) -> bool:
        """Mark a token revoked; False when there is no such unrevoked token."""

    @abstractmethod
    async def purge_api_tokens(self, before: float) -> int:
        """Forget session tokens that expired or were revoked before ``before``; returns
        how many (API tokens stay listed until their login goes)."""

    @abstractmethod
    async def record_login_failure(self, login: str, source: str, at: float) -> None:
        """Note a failed login (and forget failures older than a day)."""

    @abstractmethod
    async def count_login_failures(
        self, since: float, login: str | None = None, source: str | None = None
    ) -> int:
        """Failed logins at or after ``since`` for a login name and/or a source address."""

    @abstractmethod
    async def clear_login_failures(self, login: str) -> None:
        """Forget a login's failures (after a successful login)."""

    @abstractmethod
    async def count_cdrs(self, query: CdrQuery) -> int:
        """How many CDRs match ``query`` (its ``after`` is ignored)."""

    @abstractmethod
    async def find_cdrs(self, query: CdrQuery, limit: int) -> list[Cdr]:
        """Up to ``limit`` CDRs matching ``query``, newest first, after ``query.after``."""

    @abstractmethod
    async def load_cdr(self, call_id: str) -> Cdr | None:
        """One CDR by the switch's call id."""

    # -- call history aggregates for dashboards (storage.cdr_analytics, storage.cdr_rollup) --
    # A tenant's whole slots come from the rollup (brought up to date first), the rest of a
    # period and any other filter from the CDRs: the same figures either way.

    @abstractmethod
    async def cdr_volume(self, query: CdrQuery, base: int, width: int) -> list[VolumeSlot]:
        """Calls matching ``query`` per slot of ``width`` seconds counted from ``base``
        (``query.start`` must be >= ``base``); slots without calls are left out."""

    @abstractmethod
    async def cdr_trunk_totals(self, query: CdrQuery) -> list[TrunkTotals]:
        """Attempts, answered calls and billed seconds per trunk, by trunk name."""

    @abstractmethod
    async def cdr_quality_totals(self, query: CdrQuery) -> list[QualityTotals]:
        """The anchored calls' MOS, jitter and loss figures per trunk ('' for none)."""

    @abstractmethod
    async def refresh_cdr_rollup(self) -> None:
        """Add the CDRs written since the last refresh to the dashboards' rollup (the
        aggregates above do it before they read it)."""

    @abstractmethod
    async def page_provisioning(
        self, query: ObjectQuery, limit: int
    ) -> tuple[int, list[ProvisionedObject]]:
        """How many objects match ``query`` (its ``after`` ignored) and up to ``limit`` of
        them after ``query.after``, in storage.provisioning.key_order order."""

    # -- end of the admin API block ----------------------------------------------------------

    # -- security: banned source addresses (branch security) --------------------------------

    @abstractmethod
    async def save_bans(self, bans: Sequence[Ban]) -> None:
        """Insert or replace bans keyed by address, in one transaction."""

    @abstractmethod
    async def load_bans(self, since: float) -> list[Ban]:
        """Bans that end after `since` (active ones: since = now), by address."""

    @abstractmethod
    async def delete_ban(self, address: str) -> bool:
        """Lift a ban and forget its offences; False when the address had none."""

    @abstractmethod
    async def purge_bans(self, before: float) -> int:
        """Forget bans that ended at or before `before`; returns how many."""

    # -- call-queue event log (migration 0009) ---------------------------------------------

    @abstractmethod
    async def append_queue_events(self, events: Sequence[QueueEvent]) -> None:
        """Append events to the queue log, all in one transaction (StorageError naming the
        row and field of a bad one, nothing written)."""

    @abstractmethod
    async def load_queue_events(self, tenant: str, since: float, until: float) -> list[QueueEvent]:
        """A tenant's queue events with since <= at < until, in the order they happened."""

    @abstractmethod
    async def last_agent_statuses(self, tenant: str, before: float) -> list[QueueEvent]:
        """Each agent's latest ``agent_status`` event before `before` (by agent)."""

    # -- provisioning model and audit log (migration 0005) ------------------------------
    # Objects are JSON documents keyed by (tenant, kind, key); softswitch.provisioning
    # validates them and knows what the kinds mean.

    @abstractmethod
    async def provisioning_revision(self) -> int:
        """How many provisioning changes the store has seen: a cheap "did anything change"."""

    @abstractmethod
    async def load_provisioning(
        self, tenant: str | None = None, kind: str | None = None
    ) -> list[ProvisionedObject]:
        """Stored objects (of one tenant and/or kind), ordered by tenant, kind and key."""

    @abstractmethod
    async def load_provisioning_changes(self, since: int) -> ProvisioningDelta | None:
        """The objects changed after revision `since`, as stored now (read from the audit
        log, in one statement); None when nothing changed or the audit log cannot say
        (the caller loads the whole model)."""

    @abstractmethod
    async def write_provisioning(
        self,
        writes: Sequence[ObjectWrite],
        *,
        actor: str,
        source: str,
        at: float,
        base_revision: int | None = None,
    ) -> tuple[int, list[AuditRecord]]:
        """Apply object writes and their audit records in one transaction.

        Raises `VersionConflict` when an object's version is not the expected one and
        `RevisionMoved` when `base_revision` is given and the model changed since: nothing
        is written then. Writes that change nothing are skipped. Returns the revision after
        the change and the audit records written (none: the revision is unchanged).
        """

    @abstractmethod
    async def load_audit(self, query: AuditQuery) -> list[AuditRecord]:
        """Audit records matching `query`, newest first."""

    async def watch_provisioning(self, on_change: Callable[[int], None]) -> bool:
        """Ask to be told of provisioning changes made anywhere (`on_change(revision)`;
        -1 for a disaster plan's state).

        Returns False when the backend cannot push (callers poll `provisioning_revision`).
        """
        return False

    async def unwatch_provisioning(self) -> None:
        """Stop `watch_provisioning`'s notifications; safe when not watching."""
        return None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
