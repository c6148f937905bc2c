"""PostgreSQL backend (asyncpg pool), for several switch nodes sharing one database.

Batches go to the server as one statement over column arrays (INSERT ... SELECT FROM
unnest(...)), so a write-behind batch of hundreds of bindings is one round trip and one
transaction.

Over 600 lines because it implements the whole Store contract for one backend, area by
area in marked blocks; the SQL of each area is kept beside its method.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import structlog

from storage.bans import BAN_COLUMNS, Ban, ban_from_row
from storage.base import (
    BINDING_COLUMNS,
    Binding,
    DisasterPlanEvent,
    DisasterPlanState,
    StorageError,
    Store,
    binding_from_row,
    check_disaster_change,
    check_keys,
    check_limit,
    check_text,
    check_time,
    redact_url,
    storable_bans,
    storable_cdrs,
    storable_queue_events,
    unique_bindings,
)
from storage.cdr import CDR_SQL_COLUMNS, Cdr, cdr_from_row
from storage.cdr_analytics import QualityTotals, TrunkTotals, VolumeSlot
from storage.cdr_rollup import (
    analytics_query,
    count_check_sql,
    rolled_quality,
    rolled_trunks,
    rolled_volume,
    rollup_insert_sql,
    split_period,
)
from storage.logins import (
    LOGIN_COLUMNS,
    TOKEN_COLUMNS,
    ApiLogin,
    ApiToken,
    CdrQuery,
    cdr_query_sql,
    login_from_row,
    login_to_row,
    token_from_row,
    token_to_row,
)
from storage.migrations import load_migrations
from storage.object_pages import ObjectQuery, object_page_sql, objects_from_rows
from storage.provisioning import (
    NOTIFY_CHANNEL,
    AuditQuery,
    AuditRecord,
    ObjectWrite,
    ProvisionedObject,
    ProvisioningDelta,
    RevisionMoved,
    check_actor,
    decode_document,
    delta_from_rows,
    plan_writes,
)
from storage.queue_events import QUEUE_EVENT_COLUMNS, QueueEvent, queue_event_from_row
from storage.voicemail import numbered

__all__ = ["PostgresStore"]

log = structlog.get_logger(__name__)

# The objects the audit log says changed after a revision, with the store's revision, in
# one statement (one snapshot of both tables).
_CHANGES_SQL = (
    "SELECT a.revision, a.tenant, a.kind, a.key, o.version, o.data, o.updated_at,"
    " (SELECT revision FROM provisioning_revision WHERE id = 1)"
    " FROM audit_log AS a LEFT JOIN provisioning_objects AS o"
    " ON o.tenant = a.tenant AND o.kind = a.kind AND o.key = a.key"
    " WHERE a.revision > $1 ORDER BY a.id"
)

# pg_advisory_lock key serialising migrations across switch nodes ("softswit").
_MIGRATION_LOCK = 0x736F667473776974
# First key of the two-key advisory locks serialising disaster plan changes ("disa").
_DISASTER_LOCK = 0x64697361

_COLUMN_TYPES: dict[str, str] = {
    "aor": "text",
    "contact": "text",
    "expires_at": "float8",
    "q": "float8",
    "call_id": "text",
    "cseq": "int8",
    "instance_id": "text",
    "reg_id": "int8",
    "path": "text",  # JSON text, cast to jsonb in the SELECT below
    "received": "text",
    "transport": "text",
    "user_agent": "text",
    "registered_at": "float8",
    "reachable": "bool",
}
_COLUMNS = ", ".join(BINDING_COLUMNS)
_UPSERT = (
    f"INSERT INTO registrations ({_COLUMNS}) "
    f"SELECT {', '.join(f'{c}::jsonb' if c == 'path' else c for c in BINDING_COLUMNS)} "
    "FROM unnest("
    + ", ".join(f"${i}::{_COLUMN_TYPES[c]}[]" for i, c in enumerate(BINDING_COLUMNS, 1))
    + f") AS b({_COLUMNS}) "
    "ON CONFLICT (aor, contact) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in BINDING_COLUMNS[2:])
)
_DELETE_KEYS = (
    "DELETE FROM registrations r USING unnest($1::text[], $2::text[]) AS k(aor, contact) "
    "WHERE r.aor = k.aor AND r.contact = k.contact"
)
_SELECT = f"SELECT {', '.join(f'{c}::text' if c == 'path' else c for c in BINDING_COLUMNS)} "
_SELECT += "FROM registrations"

# Driver failures that become StorageError (connection loss, server errors, timeouts).
_DB_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


def _row_count(status: str) -> int:
    """The row count of a command status such as 'DELETE 3'."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if (tail.isascii() and tail.isdigit()) else 0


class PostgresStore(Store):
    """Store on a PostgreSQL database through an asyncpg connection pool."""

    backend = "postgresql"

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 8,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
    ) -> None:
        self.dsn = dsn
        self._rollup_checked = False  # deleted CDRs looked for (storage.cdr_rollup)
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None  # watch_provisioning's

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.dsn)!r})"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except _DB_ERRORS as exc:
            raise StorageError(
                f"PostgreSQL {what} failed on {redact_url(self.dsn)}: {type(exc).__name__}: {exc}"
            ) from exc

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            with self._errors("connect"):
                pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                )
        except ValueError as exc:  # a malformed DSN (asyncpg's ClientConfigurationError)
            raise StorageError(f"bad PostgreSQL URL {redact_url(self.dsn)}: {exc}") from exc
        try:
            self._pool = pool
            await self._migrate()
            await self._check_search_index()
        except BaseException:
            self._pool = None
            pool.terminate()
            raise

    async def close(self) -> None:
        await self.unwatch_provisioning()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=self._command_timeout)
        except _DB_ERRORS:
            pool.terminate()

    def _pool_or_fail(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StorageError(f"PostgreSQL store {redact_url(self.dsn)} is not open")
        return self._pool

    async def _migrate(self) -> None:
        pool = self._pool_or_fail()
        with self._errors("migration"):
            async with pool.acquire() as conn:
                # Nodes starting together take turns; the lock is released with the
                # session should this one die half-way.
                await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
                try:
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY NOT NULL,"
                        " name TEXT NOT NULL,"
                        " applied_at DOUBLE PRECISION NOT NULL)"
                    )
                    applied = {
                        r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")
                    }
                    for migration in load_migrations(self.backend):
                        if migration.version in applied:
                            continue
                        async with conn.transaction():
                            await conn.execute(migration.sql)
                            await conn.execute(
                                "INSERT INTO schema_migrations (version, name, applied_at)"
                                " VALUES ($1, $2, $3)",
                                migration.version,
                                migration.name,
                                time.time(),
                            )
                        log.info(
                            "storage.migrated",
                            backend=self.backend,
                            version=migration.version,
                            name=migration.name,
                        )
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    async def _check_search_index(self) -> None:
        """Say once when migration 0012 could not have pg_trgm: "contains" searches scan."""
        rows = await self._fetch(
            "cdr search index", "SELECT to_regclass('cdrs_dialled_trgm') IS NOT NULL"
        )
        if not rows[0][0]:
            log.warning(
                "storage.cdr_search_unavailable",
                dsn=redact_url(self.dsn),
                reason="the pg_trgm extension is not installed in this database",
                effect="caller/dialled contains searches scan the call history",
            )

    async def _execute(self, what: str, sql: str, *args: Any) -> str:
        pool = self._pool_or_fail()
        with self._errors(what):
            status: str = await pool.execute(sql, *args)
            return status

    async def _fetch(self, what: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        pool = self._pool_or_fail()
        with self._errors(what):
            return list(await pool.fetch(sql, *args))

    async def save_bindings(self, bindings: Sequence[Binding]) -> None:
        rows = unique_bindings(bindings)
        if rows:
            # One statement is one implicit transaction: the batch lands whole or not at all.
            await self._execute("save_bindings", _UPSERT, *zip(*rows, strict=True))

    async def delete_bindings(self, keys: Sequence[tuple[str, str]]) -> int:
        checked = check_keys(keys)
        if not checked:
            return 0
        aors, contacts = zip(*checked, strict=True)
        return _row_count(await self._execute("delete_bindings", _DELETE_KEYS, aors, contacts))

    async def delete_aor(self, aor: str) -> int:
        status = await self._execute(
            "delete_aor", "DELETE FROM registrations WHERE aor = $1", check_text("aor", aor)
        )
        return _row_count(status)

    async def load_bindings(self, now: float | None = None) -> list[Binding]:
        if now is None:
            rows = await self._fetch("load_bindings", f"{_SELECT} ORDER BY aor, contact")
        else:
            rows = await self._fetch(
                "load_bindings",
                f"{_SELECT} WHERE expires_at > $1 ORDER BY aor, contact",
                check_time("now", now),
            )
        return [binding_from_row(row) for row in rows]

    async def purge_expired(self, now: float) -> int:
        status = await self._execute(
            "purge_expired",
            "DELETE FROM registrations WHERE expires_at <= $1",
            check_time("now", now),
        )
        return _row_count(status)

    async def get_setting(self, key: str) -> str | None:
        rows = await self._fetch(
            "get_setting", "SELECT value FROM settings WHERE key = $1", check_text("key", key)
        )
        return str(rows[0][0]) if rows else None

    async def set_setting(self, key: str, value: str) -> None:
        await self._execute(
            "set_setting",
            "INSERT INTO settings (key, value) VALUES ($1, $2) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            check_text("key", key),
            check_text("value", value),
        )

    async def schema_version(self) -> int:
        rows = await self._fetch("schema_version", "SELECT max(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

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
        tenant, plan, enabled, changed_by, changed_at = check_disaster_change(
            tenant, plan, enabled, changed_by, changed_at
        )
        pool = self._pool_or_fail()
        action = "execute" if enabled else "revert"
        with self._errors("change_disaster_plan"):
            async with pool.acquire() as conn, conn.transaction():
                # A row that does not exist yet cannot be locked with FOR UPDATE, so nodes
                # changing the same plan serialise on a transaction-scoped advisory lock
                # (two-key form: a key space apart from the migration lock).
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2::text || '/' || $3::text))",
                    _DISASTER_LOCK,
                    tenant,
                    plan,
                )
                current = await conn.fetchval(
                    "SELECT enabled FROM disaster_plans WHERE tenant = $1 AND plan = $2",
                    tenant,
                    plan,
                )
                if (default_enabled if current is None else bool(current)) == enabled:
                    return None
                await conn.execute(
                    "INSERT INTO disaster_plans (tenant, plan, enabled, changed_by, changed_at) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, plan) DO UPDATE SET "
                    "enabled = EXCLUDED.enabled, changed_by = EXCLUDED.changed_by, "
                    "changed_at = EXCLUDED.changed_at",
                    tenant,
                    plan,
                    enabled,
                    changed_by,
                    changed_at,
                )
                event_id = await conn.fetchval(
                    "INSERT INTO disaster_plan_events (tenant, plan, action, changed_by, "
                    "changed_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    tenant,
                    plan,
                    action,
                    changed_by,
                    changed_at,
                )
                # Nodes following provisioning (watch_provisioning) refresh at once.
                await conn.execute("SELECT pg_notify($1, 'disaster')", NOTIFY_CHANNEL)
        return DisasterPlanEvent(int(event_id), tenant, plan, action, changed_by, changed_at)

    async def load_disaster_plans(self, tenant: str | None = None) -> list[DisasterPlanState]:
        sql = "SELECT tenant, plan, enabled, changed_by, changed_at FROM disaster_plans"
        args: list[object] = []
        if tenant is not None:
            sql += " WHERE tenant = $1"
            args.append(check_text("tenant", tenant))
        rows = await self._fetch("load_disaster_plans", sql + " ORDER BY tenant, plan", *args)
        return [DisasterPlanState(r[0], r[1], bool(r[2]), r[3], float(r[4])) for r in rows]

    async def load_disaster_events(
        self, tenant: str | None = None, plan: str | None = None, limit: int = 100
    ) -> list[DisasterPlanEvent]:
        where: list[str] = []
        args: list[object] = []
        for column, value in (("tenant", tenant), ("plan", plan)):
            if value is not None:
                args.append(check_text(column, value))
                where.append(f"{column} = ${len(args)}")
        args.append(check_limit(limit))
        rows = await self._fetch(
            "load_disaster_events",
            "SELECT id, tenant, plan, action, changed_by, changed_at FROM disaster_plan_events"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY id DESC LIMIT ${len(args)}",
            *args,
        )
        return [
            DisasterPlanEvent(int(r[0]), r[1], r[2], r[3], r[4], float(r[5]))
            for r in reversed(rows)
        ]

    # -- call detail records ----------------------------------------------------------------

    async def save_cdrs(self, cdrs: Sequence[Cdr]) -> None:
        rows = await storable_cdrs(cdrs)
        if not rows:
            return
        unique = list({row[0]: row for row in rows}.values())  # one row per call_id
        await self._execute("save_cdrs", _CDR_UPSERT, *zip(*unique, strict=True))

    async def load_cdrs(self, start: float, end: float, tenant: str | None = None) -> list[Cdr]:
        sql = f"SELECT {_CDR_COLUMNS} FROM cdrs WHERE start_time >= $1 AND start_time < $2"
        args: list[object] = [check_time("start", start), check_time("end", end)]
        if tenant is not None:
            args.append(check_text("tenant", tenant))
            sql += " AND tenant = $3"
        rows = await self._fetch("load_cdrs", sql + " ORDER BY start_time, call_id", *args)
        return [cdr_from_row(tuple(row)) for row in rows]

    # -- admin API: logins, tokens, failed logins, call-history queries (branch adminapi) ----

    async def create_api_login(self, login: ApiLogin) -> None:
        row = _checked(login_to_row, login)
        status = await self._execute(
            "create_api_login",
            f"INSERT INTO api_logins ({_LOGIN_COLUMNS}) VALUES "
            f"({', '.join(f'${i}' for i in range(1, len(LOGIN_COLUMNS) + 1))}) "
            "ON CONFLICT (name) DO NOTHING",
            *row,
        )
        if _row_count(status) != 1:
            raise StorageError(f"login {login.name!r} exists already")

    async def update_api_login(self, login: ApiLogin, expected_version: int) -> ApiLogin | None:
        updated = replace(login, version=expected_version + 1)
        row = _checked(login_to_row, updated)
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(LOGIN_COLUMNS[1:], 2))
        n = len(LOGIN_COLUMNS)
        status = await self._execute(
            "update_api_login",
            f"UPDATE api_logins SET {sets} WHERE name = $1 AND version = ${n + 1}",
            *row,
            expected_version,
        )
        return updated if _row_count(status) == 1 else None

    async def load_api_login(self, name: str) -> ApiLogin | None:
        rows = await self._fetch(
            "load_api_login",
            f"SELECT {_LOGIN_COLUMNS} FROM api_logins WHERE name = $1",
            check_text("name", name),
        )
        return login_from_row(tuple(rows[0])) if rows else None

    async def load_api_logins(self) -> list[ApiLogin]:
        rows = await self._fetch(
            "load_api_logins", f"SELECT {_LOGIN_COLUMNS} FROM api_logins ORDER BY name"
        )
        return [login_from_row(tuple(row)) for row in rows]

    async def delete_api_login(self, name: str) -> bool:
        name = check_text("name", name)
        pool = self._pool_or_fail()
        with self._errors("delete_api_login"):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM api_tokens WHERE login = $1", name)
                status = await conn.execute("DELETE FROM api_logins WHERE name = $1", name)
        return _row_count(status) > 0

    async def create_api_token(self, token: ApiToken) -> None:
        row = _checked(token_to_row, token)
        try:
            await self._execute(
                "create_api_token",
                f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) VALUES "
                f"({', '.join(f'${i}' for i in range(1, len(TOKEN_COLUMNS) + 1))})",
                *row,
            )
        except StorageError as exc:
            if isinstance(exc.__cause__, asyncpg.ForeignKeyViolationError):
                raise StorageError(f"token {token.id!r}: no login {token.login!r}") from None
            raise

    async def load_api_token(self, token_id: str) -> ApiToken | None:
        rows = await self._fetch(
            "load_api_token",
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE id = $1",
            check_text("token_id", token_id),
        )
        return token_from_row(tuple(rows[0])) if rows else None

    async def load_api_tokens(self, login: str | None = None) -> list[ApiToken]:
        sql = f"SELECT {_TOKEN_COLUMNS} FROM api_tokens"
        args: list[object] = []
        if login is not None:
            sql += " WHERE login = $1"
            args.append(check_text("login", login))
        rows = await self._fetch("load_api_tokens", sql + " ORDER BY created_at, id", *args)
        return [token_from_row(tuple(row)) for row in rows]

    async def revoke_api_token(self, token_id: str, at: float) -> bool:
        status = await self._execute(
            "revoke_api_token",
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            check_time("at", at),
            check_text("token_id", token_id),
        )
        return _row_count(status) > 0

    async def purge_api_tokens(self, before: float) -> int:
        status = await self._execute(
            "purge_api_tokens",
            "DELETE FROM api_tokens WHERE kind = 'session' AND "
            "(expires_at < $1 OR revoked_at < $1)",
            check_time("before", before),
        )
        return _row_count(status)

    async def record_login_failure(self, login: str, source: str, at: float) -> None:
        when = check_time("at", at)
        login, source = check_text("login", login), check_text("source", source)
        pool = self._pool_or_fail()
        with self._errors("record_login_failure"):
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "DELETE FROM api_login_failures WHERE failed_at < $1", when - 86400
                )
                await conn.execute(
                    "INSERT INTO api_login_failures (login, source, failed_at) VALUES ($1, $2, $3)",
                    login,
                    source,
                    when,
                )

    async def count_login_failures(
        self, since: float, login: str | None = None, source: str | None = None
    ) -> int:
        where = ["failed_at >= $1"]
        args: list[object] = [check_time("since", since)]
        for column, value in (("login", login), ("source", source)):
            if value is not None:
                args.append(check_text(column, value))
                where.append(f"{column} = ${len(args)}")
        rows = await self._fetch(
            "count_login_failures",
            "SELECT count(*) FROM api_login_failures WHERE " + " AND ".join(where),
            *args,
        )
        return int(rows[0][0])

    async def clear_login_failures(self, login: str) -> None:
        await self._execute(
            "clear_login_failures",
            "DELETE FROM api_login_failures WHERE login = $1",
            check_text("login", login),
        )

    async def count_cdrs(self, query: CdrQuery) -> int:
        where, args = _checked(cdr_query_sql, replace(query, after=None), "$")
        rows = await self._fetch("count_cdrs", "SELECT count(*) FROM cdrs" + where, *args)
        return int(rows[0][0])

    async def find_cdrs(self, query: CdrQuery, limit: int) -> list[Cdr]:
        where, args = _checked(cdr_query_sql, query, "$")
        args.append(check_limit(limit))
        rows = await self._fetch(
            "find_cdrs",
            f"SELECT {_CDR_COLUMNS} FROM cdrs{where} "
            f"ORDER BY start_time DESC, call_id DESC LIMIT ${len(args)}",
            *args,
        )
        return [cdr_from_row(tuple(row)) for row in rows]

    async def _rows(self, what: str, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self._fetch(what, sql, *params)]

    async def _analytics(self, query: CdrQuery) -> CdrQuery:
        """The query without paging; the rollup brought up to date when it will be read."""
        query = _checked(analytics_query, query)
        if split_period(query) is not None:
            await self.refresh_cdr_rollup()
        return query

    async def cdr_volume(self, query: CdrQuery, base: int, width: int) -> list[VolumeSlot]:
        query = await self._analytics(query)
        return await rolled_volume(self._rows, "postgresql", query, base, width)

    async def cdr_trunk_totals(self, query: CdrQuery) -> list[TrunkTotals]:
        return await rolled_trunks(self._rows, "postgresql", await self._analytics(query))

    async def cdr_quality_totals(self, query: CdrQuery) -> list[QualityTotals]:
        return await rolled_quality(self._rows, "postgresql", await self._analytics(query))

    async def refresh_cdr_rollup(self) -> None:
        pool = self._pool_or_fail()
        if not self._rollup_checked:
            await self._check_rollup()
        with self._errors("cdr rollup"):
            newest, mark = await pool.fetchrow(_ROLLUP_STATE)
            if newest is None or int(newest) < int(mark):  # most reads: nothing new
                return
            async with pool.acquire() as conn, conn.transaction():
                # The lock makes a second reader (this node or another) wait, then see
                # the mark this one leaves.
                mark = await conn.fetchval(
                    "SELECT rolled_up::text FROM cdr_rollup_mark WHERE id = 1 FOR UPDATE",
                    timeout=_ROLLUP_TIMEOUT,
                )
                # Every transaction below the oldest one still running is over: the rows
                # it wrote are all visible now, and none will ever join them.
                horizon = await conn.fetchval(
                    "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"
                )
                if int(horizon) <= int(mark):
                    return
                await conn.execute(
                    rollup_insert_sql(
                        "postgresql", "written >= $1::text::xid8 AND written < $2::text::xid8"
                    ),
                    mark,
                    horizon,
                    timeout=_ROLLUP_TIMEOUT,
                )
                await conn.execute(
                    "UPDATE cdr_rollup_mark SET rolled_up = $1::text::xid8 WHERE id = 1", horizon
                )

    async def _check_rollup(self) -> None:
        """Once per Store: rebuild the rollup if CDRs it counted were deleted (an operator's
        SQL; nothing in the switch deletes CDRs)."""
        pool = self._pool_or_fail()
        with self._errors("cdr rollup check"):
            mark = await pool.fetchval("SELECT rolled_up::text FROM cdr_rollup_mark WHERE id = 1")
            # Nothing added up yet (a new or just upgraded database): nothing to check.
            counted = stored = 0
            if mark not in (None, "0"):
                # One statement: the mark, the rollup and the count from one snapshot.
                row = await pool.fetchrow(
                    count_check_sql(
                        "written >= (SELECT rolled_up FROM cdr_rollup_mark WHERE id = 1)"
                    )
                )
                counted, stored = int(row[0]), int(row[1])
            if counted != stored:
                log.warning("storage.cdr_rollup_rebuilt", counted=counted, cdrs=stored)
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute("SELECT 1 FROM cdr_rollup_mark WHERE id = 1 FOR UPDATE")
                    await conn.execute("DELETE FROM cdr_rollup")
                    await conn.execute("UPDATE cdr_rollup_mark SET rolled_up = '0' WHERE id = 1")
        self._rollup_checked = True

    async def page_provisioning(
        self, query: ObjectQuery, limit: int
    ) -> tuple[int, list[ProvisionedObject]]:
        count_sql, page_sql, count_params, page_params = _checked(
            object_page_sql, query, "postgresql", check_limit(limit)
        )
        total = await self._fetch("page_provisioning", count_sql, *count_params)
        rows = await self._fetch("page_provisioning", page_sql, *page_params)
        return int(total[0][0]), objects_from_rows([tuple(row) for row in rows])

    async def load_cdr(self, call_id: str) -> Cdr | None:
        rows = await self._fetch(
            "load_cdr",
            f"SELECT {_CDR_COLUMNS} FROM cdrs WHERE call_id = $1",
            check_text("call_id", call_id),
        )
        return cdr_from_row(tuple(rows[0])) if rows else None

    # -- end of the admin API block ----------------------------------------------------------

    # -- voicemail (storage.voicemail writes the statements) --------------------------------

    async def _vm_fetch(self, what: str, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._fetch(what, numbered(sql), *args)]

    async def _vm_execute(self, what: str, sql: str, args: Sequence[Any]) -> int:
        return _row_count(await self._execute(what, numbered(sql), *args))

    # -- security: banned source addresses --------------------------------------------------

    async def save_bans(self, bans: Sequence[Ban]) -> None:
        rows = storable_bans(bans)
        if not rows:
            return
        await self._execute("save_bans", _BAN_UPSERT, *zip(*rows, strict=True))

    async def load_bans(self, since: float) -> list[Ban]:
        rows = await self._fetch(
            "load_bans",
            f"SELECT {_BAN_COLUMNS} FROM security_bans WHERE expires_at > $1 ORDER BY address",
            check_time("since", since),
        )
        return [ban_from_row(tuple(row)) for row in rows]

    async def delete_ban(self, address: str) -> bool:
        status = await self._execute(
            "delete_ban",
            "DELETE FROM security_bans WHERE address = $1",
            check_text("address", address),
        )
        return _row_count(status) > 0

    async def purge_bans(self, before: float) -> int:
        status = await self._execute(
            "purge_bans",
            "DELETE FROM security_bans WHERE expires_at <= $1",
            check_time("before", before),
        )
        return _row_count(status)

    # -- call-queue event log (migration 0009) ---------------------------------------------

    async def append_queue_events(self, events: Sequence[QueueEvent]) -> None:
        rows = storable_queue_events(events)
        if rows:
            # One statement is one implicit transaction: the batch lands whole or not at all.
            await self._execute(
                "append_queue_events", _QUEUE_EVENT_INSERT, *zip(*rows, strict=True)
            )

    async def load_queue_events(self, tenant: str, since: float, until: float) -> list[QueueEvent]:
        rows = await self._fetch(
            "load_queue_events",
            f"SELECT {_QUEUE_EVENT_COLUMNS} FROM queue_events "
            "WHERE tenant = $1 AND at >= $2 AND at < $3 ORDER BY at, id",
            check_text("tenant", tenant),
            check_time("since", since),
            check_time("until", until),
        )
        return [queue_event_from_row(tuple(row)) for row in rows]

    async def last_agent_statuses(self, tenant: str, before: float) -> list[QueueEvent]:
        rows = await self._fetch(
            "last_agent_statuses",
            f"SELECT DISTINCT ON (agent) {_QUEUE_EVENT_COLUMNS} FROM queue_events "
            "WHERE tenant = $1 AND event = 'agent_status' AND at < $2 "
            "ORDER BY agent, at DESC, id DESC",
            check_text("tenant", tenant),
            check_time("before", before),
        )
        return [queue_event_from_row(tuple(row)) for row in rows]

    # -- provisioning model and audit log (migration 0005) ----------------------------------

    async def provisioning_revision(self) -> int:
        rows = await self._fetch(
            "provisioning_revision", "SELECT revision FROM provisioning_revision WHERE id = 1"
        )
        return int(rows[0][0]) if rows else 0

    async def load_provisioning(
        self, tenant: str | None = None, kind: str | None = None
    ) -> list[ProvisionedObject]:
        where, args = _filters((("tenant", tenant), ("kind", kind)))
        rows = await self._fetch(
            "load_provisioning",
            "SELECT tenant, kind, key, version, data, updated_at FROM provisioning_objects"
            + where
            + " ORDER BY tenant, kind, key",
            *args,
        )
        return [
            ProvisionedObject(r[0], r[1], r[2], int(r[3]), decode_document(r[4]) or {}, r[5])
            for r in rows
        ]

    async def load_provisioning_changes(self, since: int) -> ProvisioningDelta | None:
        rows = await self._fetch("load_provisioning_changes", _CHANGES_SQL, since)
        return delta_from_rows(since, rows)

    async def write_provisioning(
        self,
        writes: Sequence[ObjectWrite],
        *,
        actor: str,
        source: str,
        at: float,
        base_revision: int | None = None,
    ) -> tuple[int, list[AuditRecord]]:
        actor, source, at = check_actor(actor, source, at)
        pool = self._pool_or_fail()
        records: list[AuditRecord] = []
        with self._errors("write_provisioning"):
            async with pool.acquire() as conn, conn.transaction():
                # The revision row's lock serialises every provisioning change of every node.
                revision = int(
                    await conn.fetchval(
                        "SELECT revision FROM provisioning_revision WHERE id = 1 FOR UPDATE"
                    )
                )
                if base_revision is not None and base_revision != revision:
                    raise RevisionMoved(f"provisioning changed meanwhile (revision {revision})")
                current: dict[tuple[str, str, str], tuple[int, str]] = {}
                for write in writes:
                    found = await conn.fetchrow(
                        "SELECT version, data FROM provisioning_objects "
                        "WHERE tenant = $1 AND kind = $2 AND key = $3",
                        write.tenant,
                        write.kind,
                        write.key,
                    )
                    if found is not None:
                        current[(write.tenant, write.kind, write.key)] = (
                            int(found[0]),
                            found[1],
                        )
                planned = plan_writes(writes, current)
                if not planned:
                    return revision, []
                revision += 1
                await conn.execute(
                    "UPDATE provisioning_revision SET revision = $1 WHERE id = 1", revision
                )
                for change in planned:
                    w = change.write
                    if change.after is None:
                        await conn.execute(
                            "DELETE FROM provisioning_objects"
                            " WHERE tenant = $1 AND kind = $2 AND key = $3",
                            w.tenant,
                            w.kind,
                            w.key,
                        )
                    else:
                        await conn.execute(
                            "INSERT INTO provisioning_objects"
                            " (tenant, kind, key, version, data, updated_at)"
                            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, kind, key)"
                            " DO UPDATE SET version = EXCLUDED.version, data = EXCLUDED.data,"
                            " updated_at = EXCLUDED.updated_at",
                            w.tenant,
                            w.kind,
                            w.key,
                            change.version,
                            change.after,
                            at,
                        )
                    record_id = await conn.fetchval(
                        "INSERT INTO audit_log (at, actor, source, action, tenant, kind, key,"
                        " before, after, revision) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                        " $10) RETURNING id",
                        *(at, actor, source, change.action, w.tenant, w.kind, w.key),
                        *(change.audit_before, change.audit_after, revision),
                    )
                    records.append(
                        AuditRecord(
                            int(record_id),
                            at,
                            actor,
                            source,
                            change.action,
                            w.tenant,
                            w.kind,
                            w.key,
                            decode_document(change.audit_before),
                            decode_document(change.audit_after),
                            revision,
                        )
                    )
                # Delivered on commit, to every node LISTENing (watch_provisioning).
                await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(revision))
        return revision, records

    async def load_audit(self, query: AuditQuery) -> list[AuditRecord]:
        where, args = _filters(
            (
                ("tenant", query.tenant),
                ("kind", query.kind),
                ("key", query.key),
                ("actor", query.actor),
            )
        )
        clauses = [where[len(" WHERE ") :]] if where else []
        for column, op, value in (
            ("at", ">=", query.since),
            ("at", "<", query.until),
            ("id", "<", query.before_id),
        ):
            if value is not None:
                args.append(check_time(column, value) if column == "at" else int(value))
                clauses.append(f"{column} {op} ${len(args)}")
        args.append(check_limit(query.limit))
        rows = await self._fetch(
            "load_audit",
            "SELECT id, at, actor, source, action, tenant, kind, key, before, after, revision "
            "FROM audit_log"
            + (" WHERE " + " AND ".join(clauses) if clauses else "")
            + f" ORDER BY id DESC LIMIT ${len(args)}",
            *args,
        )
        return [
            AuditRecord(
                int(r[0]),
                float(r[1]),
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                decode_document(r[8]),
                decode_document(r[9]),
                int(r[10]),
            )
            for r in rows
        ]

    async def watch_provisioning(self, on_change: Callable[[int], None]) -> bool:
        """LISTEN on a connection of its own; NOTIFY payloads are revisions."""
        await self.unwatch_provisioning()

        def deliver(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            on_change(int(payload) if (payload.isascii() and payload.isdigit()) else -1)

        with self._errors("watch_provisioning"):
            conn = await asyncpg.connect(self.dsn, timeout=self._connect_timeout)
            try:
                await conn.add_listener(NOTIFY_CHANNEL, deliver)
            except BaseException:
                await conn.close()
                raise
        self._listener = conn
        return True

    async def unwatch_provisioning(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(*_DB_ERRORS):
                await conn.close(timeout=self._command_timeout)


def _filters(pairs: Sequence[tuple[str, str | None]]) -> tuple[str, list[object]]:
    where: list[str] = []
    args: list[object] = []
    for column, value in pairs:
        if value is not None:
            args.append(check_text(column, value))
            where.append(f"{column} = ${len(args)}")
    return (" WHERE " + " AND ".join(where) if where else ""), args


_CDR_TYPES = {
    "start_time": "float8",
    "answer_time": "float8",
    "end_time": "float8",
    "sip_code": "int4",
    "q850_cause": "int4",
    "mos": "float8",
    "emergency": "bool",
}
_CDR_COLUMNS = ", ".join(CDR_SQL_COLUMNS)
# The newest CDR's writer and how far the dashboards' rollup is (storage.cdr_rollup). A
# max() is one step down the index; "EXISTS (... written >= mark)" was planned as a scan
# of the whole table when nothing was new (the mark is not known when planning).
_ROLLUP_STATE = (
    "SELECT (SELECT max(written) FROM cdrs)::text,"
    " (SELECT rolled_up FROM cdr_rollup_mark WHERE id = 1)::text"
)
# The first rollup after an upgrade adds up the whole history in one statement (about 10 s
# for a million CDRs); a second reader waits for it rather than read half a rollup.
_ROLLUP_TIMEOUT = 600.0
_CDR_UPSERT = (
    f"INSERT INTO cdrs ({_CDR_COLUMNS}) SELECT * FROM unnest("
    + ", ".join(f"${i}::{_CDR_TYPES.get(c, 'text')}[]" for i, c in enumerate(CDR_SQL_COLUMNS, 1))
    + ") ON CONFLICT (call_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in CDR_SQL_COLUMNS[1:])
)
_LOGIN_COLUMNS = ", ".join(LOGIN_COLUMNS)
_TOKEN_COLUMNS = ", ".join(TOKEN_COLUMNS)


def _checked(build: Any, *args: Any) -> Any:
    """``build(*args)`` with its ValueError (a field that cannot be stored) as StorageError."""
    try:
        return build(*args)
    except ValueError as exc:
        raise StorageError(str(exc)) from None


_BAN_COLUMNS = ", ".join(BAN_COLUMNS)
_BAN_UPSERT = (
    f"INSERT INTO security_bans ({_BAN_COLUMNS}) SELECT * FROM unnest("
    "$1::text[], $2::text[], $3::int4[], $4::float8[], $5::float8[]"
    ") ON CONFLICT (address) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in BAN_COLUMNS[1:])
)


_QUEUE_EVENT_COLUMNS = ", ".join(QUEUE_EVENT_COLUMNS)
# unnest keeps the rows' order, and the serial id with it.
_QUEUE_EVENT_INSERT = (
    f"INSERT INTO queue_events ({_QUEUE_EVENT_COLUMNS}) SELECT * FROM unnest("
    "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[])"
)
