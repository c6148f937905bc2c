"""SQLite backend (aiosqlite): the embedded default, one file under ./data.

One connection in WAL mode with synchronous=NORMAL: a commit is durable against a
process crash and costs no fsync; a power cut may lose the last transactions, which
the registrations' write-behind tolerates (phones re-register).

Over 600 lines because it implements the whole Store contract for one backend, area by
area in marked blocks; the SQL of each area is kept beside its method.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiosqlite
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
from storage.cdr_search import (
    FEED_ROWS,
    SEARCH_TABLE,
    feed_search,
    pending_rows,
    prepare_sqlite_search,
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
from storage.migrations import load_migrations, split_sqlite_script
from storage.object_pages import ObjectQuery, object_page_sql, objects_from_rows
from storage.provisioning import (
    AuditQuery,
    AuditRecord,
    ObjectWrite,
    PlannedChange,
    ProvisionedObject,
    ProvisioningDelta,
    RevisionMoved,
    check_actor,
    decode_document,
    delta_from_rows,
    plan_writes,
)
from storage.queue_events import QUEUE_EVENT_COLUMNS, QueueEvent, queue_event_from_row

__all__ = ["MEMORY", "SqliteStore"]

log = structlog.get_logger(__name__)

# A key of digits only (an extension), as `key_order` reads it.
_DIGITS = "(key <> '' AND key NOT GLOB '*[^0-9]*' AND length(key) < 19)"

# The objects the audit log says changed after a revision, with the store's revision, in
# one statement (one snapshot of both tables).
_CHANGES_SQL = (
    "SELECT a.revision, a.tenant, a.kind, a.key, o.version, o.data, o.updated_at,"
    " (SELECT revision FROM provisioning_revision WHERE id = 1)"
    " FROM audit_log AS a LEFT JOIN provisioning_objects AS o"
    " ON o.tenant = a.tenant AND o.kind = a.kind AND o.key = a.key"
    " WHERE a.revision > ? ORDER BY a.id"
)

#: The `path` to pass for a private in-memory database.
MEMORY = ":memory:"

_COLUMNS = ", ".join(BINDING_COLUMNS)
_UPSERT = (
    f"INSERT INTO registrations ({_COLUMNS}) VALUES ({', '.join('?' * len(BINDING_COLUMNS))}) "
    "ON CONFLICT (aor, contact) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in BINDING_COLUMNS[2:])
)
_SELECT = f"SELECT {_COLUMNS} FROM registrations"
# How long a writer waits for another process holding the write lock (ms).
_BUSY_TIMEOUT_MS = 5000
# CDRs added to the dashboards' rollup per transaction, and how far it is / could be.
_ROLLUP_CHUNK = 100_000
_ROLLUP_STATE = (
    "SELECT (SELECT rolled_up FROM cdr_rollup_mark WHERE id = 1),"
    " (SELECT coalesce(max(rowid), 0) FROM cdrs)"
)


class SqliteStore(Store):
    """Store on one SQLite file (or `:memory:`)."""

    backend = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: aiosqlite.Connection | None = None
        # One connection serves every coroutine: transactions must not interleave.
        self._lock = asyncio.Lock()
        # The trigram index of caller/dialled numbers, when this SQLite has one (cdr_search).
        self._search_table: str | None = None
        # Rows written since the index was last fed, as far as this process knows (the
        # pending table is the truth; this only says when to look).
        self._unindexed = 0
        self._rollup_checked = False  # deleted CDRs looked for (storage.cdr_rollup)

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def open(self) -> None:
        if self._db is not None:
            return
        try:
            if self.path != MEMORY:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one per batch.
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except (OSError, sqlite3.Error, ValueError) as exc:
            raise StorageError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        try:
            await db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if self.path != MEMORY:
                await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            self._db = db
            await self._migrate()
            async with self._transaction("cdr search index") as conn:
                if await prepare_sqlite_search(conn, self.path):
                    self._search_table = SEARCH_TABLE
                    self._unindexed = await pending_rows(conn)
        except BaseException as exc:
            self._db = None
            await db.close()
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"cannot open SQLite database {self.path!r}: {exc}") from exc
            raise

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            async with self._lock:
                await db.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError(f"SQLite store {self.path!r} is not open")
        return self._db

    @asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the connection lock; errors become StorageError.

        IMMEDIATE takes the write lock up front, so a second process on the same file
        waits on busy_timeout instead of failing half-way through.
        """
        db = self._conn()
        async with self._lock:
            try:
                await self._begin(db, what)
                try:
                    yield db
                    await db.execute("COMMIT")
                except BaseException:
                    # The original error is the one to raise: SQLite may already have
                    # rolled back (disk full), or a statement still queued on the
                    # connection's thread when the task was cancelled (a COMMIT) may end
                    # the transaction first. A failed ROLLBACK must not turn a
                    # cancellation into a StorageError, which a background loop would
                    # catch and then never stop.
                    if db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            await db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite {what} failed on {self.path!r}: {exc}") from exc

    @staticmethod
    async def _begin(db: aiosqlite.Connection, what: str) -> None:
        """BEGIN IMMEDIATE, after ending a transaction nobody owns: a caller cancelled while
        its BEGIN waited in aiosqlite's queue leaves that BEGIN to run after the lock is
        released, and every later transaction on the connection would then fail. Under the
        lock no transaction of ours is open, so one found open is that empty leftover."""
        try:
            await db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            if not db.in_transaction:
                raise
            log.warning("storage.sqlite_orphan_transaction_rolled_back", what=what)
            await db.execute("ROLLBACK")
            await db.execute("BEGIN IMMEDIATE")

    async def _read(self, what: str, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        db = self._conn()
        async with self._lock:
            try:
                async with db.execute(sql, params) as cursor:
                    return list(await cursor.fetchall())
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite {what} failed on {self.path!r}: {exc}") from exc

    async def _migrate(self) -> None:
        async with self._transaction("migration"):
            await self._conn().execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY NOT NULL,"
                " name TEXT NOT NULL,"
                " applied_at REAL NOT NULL)"
            )
        for migration in load_migrations(self.backend):
            async with self._transaction(f"migration {migration.version}") as db:
                # Checked inside the write transaction: another process may have
                # applied it while we waited for the lock.
                async with db.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
                ) as cursor:
                    if await cursor.fetchone() is not None:
                        continue
                for statement in split_sqlite_script(migration.sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                log.info(
                    "storage.migrated",
                    backend=self.backend,
                    version=migration.version,
                    name=migration.name,
                )

    async def save_bindings(self, bindings: Sequence[Binding]) -> None:
        rows = unique_bindings(bindings)
        if not rows:
            return
        async with self._transaction("save_bindings") as db:
            await db.executemany(_UPSERT, rows)

    async def delete_bindings(self, keys: Sequence[tuple[str, str]]) -> int:
        checked = check_keys(keys)
        if not checked:
            return 0
        async with self._transaction("delete_bindings") as db:
            cursor = await db.executemany(
                "DELETE FROM registrations WHERE aor = ? AND contact = ?", checked
            )
            return max(cursor.rowcount, 0)

    async def delete_aor(self, aor: str) -> int:
        check_text("aor", aor)
        async with self._transaction("delete_aor") as db:
            cursor = await db.execute("DELETE FROM registrations WHERE aor = ?", (aor,))
            return max(cursor.rowcount, 0)

    async def load_bindings(self, now: float | None = None) -> list[Binding]:
        if now is None:
            rows = await self._read("load_bindings", f"{_SELECT} ORDER BY aor, contact")
        else:
            rows = await self._read(
                "load_bindings",
                f"{_SELECT} WHERE expires_at > ? ORDER BY aor, contact",
                (check_time("now", now),),
            )
        return [binding_from_row(row) for row in rows]

    async def purge_expired(self, now: float) -> int:
        limit = check_time("now", now)
        async with self._transaction("purge_expired") as db:
            cursor = await db.execute("DELETE FROM registrations WHERE expires_at <= ?", (limit,))
            return max(cursor.rowcount, 0)

    async def get_setting(self, key: str) -> str | None:
        rows = await self._read(
            "get_setting", "SELECT value FROM settings WHERE key = ?", (check_text("key", key),)
        )
        return str(rows[0][0]) if rows else None

    async def set_setting(self, key: str, value: str) -> None:
        params = (check_text("key", key), check_text("value", value))
        async with self._transaction("set_setting") as db:
            await db.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params,
            )

    async def schema_version(self) -> int:
        rows = await self._read("schema_version", "SELECT max(version) FROM schema_migrations")
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
        # BEGIN IMMEDIATE holds the write lock from the read to the insert: another process
        # flipping the same plan waits and then sees this change.
        async with self._transaction("change_disaster_plan") as db:
            async with db.execute(
                "SELECT enabled FROM disaster_plans WHERE tenant = ? AND plan = ?", (tenant, plan)
            ) as cursor:
                row = await cursor.fetchone()
            current = bool(row[0]) if row is not None else default_enabled
            if current == enabled:
                return None
            await db.execute(
                "INSERT INTO disaster_plans (tenant, plan, enabled, changed_by, changed_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, plan) DO UPDATE SET "
                "enabled = excluded.enabled, changed_by = excluded.changed_by, "
                "changed_at = excluded.changed_at",
                (tenant, plan, int(enabled), changed_by, changed_at),
            )
            action = "execute" if enabled else "revert"
            cursor = await db.execute(
                "INSERT INTO disaster_plan_events (tenant, plan, action, changed_by, changed_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (tenant, plan, action, changed_by, changed_at),
            )
            event_id = cursor.lastrowid
        assert event_id is not None
        return DisasterPlanEvent(event_id, tenant, plan, action, changed_by, changed_at)

    async def load_disaster_plans(self, tenant: str | None = None) -> list[DisasterPlanState]:
        sql = "SELECT tenant, plan, enabled, changed_by, changed_at FROM disaster_plans"
        params: tuple[object, ...] = ()
        if tenant is not None:
            sql += " WHERE tenant = ?"
            params = (check_text("tenant", tenant),)
        rows = await self._read("load_disaster_plans", sql + " ORDER BY tenant, plan", params)
        return [DisasterPlanState(r[0], r[1], bool(r[2]), r[3], float(r[4])) for r in rows]

    async def load_disaster_events(
        self, tenant: str | None = None, plan: str | None = None, limit: int = 100
    ) -> list[DisasterPlanEvent]:
        where: list[str] = []
        params: list[object] = []
        for column, value in (("tenant", tenant), ("plan", plan)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(check_text(column, value))
        params.append(check_limit(limit))
        rows = await self._read(
            "load_disaster_events",
            "SELECT id, tenant, plan, action, changed_by, changed_at FROM disaster_plan_events"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC LIMIT ?",
            params,
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
        feed = self._search_table is not None and self._unindexed + len(rows) >= FEED_ROWS
        async with self._transaction("save_cdrs") as db:
            await db.executemany(_CDR_UPSERT, rows)
            if feed:  # the search index takes the rows in batches (storage/cdr_search.py)
                await feed_search(db)
        self._unindexed = 0 if feed else self._unindexed + len(rows)

    async def load_cdrs(self, start: float, end: float, tenant: str | None = None) -> list[Cdr]:
        sql = f"SELECT {_CDR_COLUMNS} FROM cdrs WHERE start_time >= ? AND start_time < ?"
        params: list[object] = [check_time("start", start), check_time("end", end)]
        if tenant is not None:
            sql += " AND tenant = ?"
            params.append(check_text("tenant", tenant))
        rows = await self._read("load_cdrs", sql + " ORDER BY start_time, call_id", params)
        return [cdr_from_row(row) for row in rows]

    # -- admin API: logins, tokens, failed logins, call-history queries (branch adminapi) ----

    async def create_api_login(self, login: ApiLogin) -> None:
        row = _checked(login_to_row, login)
        async with self._transaction("create_api_login") as db:
            async with db.execute("SELECT 1 FROM api_logins WHERE name = ?", (row[0],)) as cur:
                if await cur.fetchone() is not None:
                    raise StorageError(f"login {login.name!r} exists already")
            await db.execute(
                f"INSERT INTO api_logins ({_LOGIN_COLUMNS}) VALUES "
                f"({', '.join('?' * len(LOGIN_COLUMNS))})",
                row,
            )

    async def update_api_login(self, login: ApiLogin, expected_version: int) -> ApiLogin | None:
        updated = replace(login, version=expected_version + 1)
        row = _checked(login_to_row, updated)
        async with self._transaction("update_api_login") as db:
            cursor = await db.execute(
                "UPDATE api_logins SET "
                + ", ".join(f"{c} = ?" for c in LOGIN_COLUMNS[1:])
                + " WHERE name = ? AND version = ?",
                (*row[1:], row[0], expected_version),
            )
            if cursor.rowcount != 1:
                return None
        return updated

    async def load_api_login(self, name: str) -> ApiLogin | None:
        rows = await self._read(
            "load_api_login",
            f"SELECT {_LOGIN_COLUMNS} FROM api_logins WHERE name = ?",
            (check_text("name", name),),
        )
        return login_from_row(rows[0]) if rows else None

    async def load_api_logins(self) -> list[ApiLogin]:
        rows = await self._read(
            "load_api_logins", f"SELECT {_LOGIN_COLUMNS} FROM api_logins ORDER BY name"
        )
        return [login_from_row(row) for row in rows]

    async def delete_api_login(self, name: str) -> bool:
        name = check_text("name", name)
        async with self._transaction("delete_api_login") as db:
            await db.execute("DELETE FROM api_tokens WHERE login = ?", (name,))
            cursor = await db.execute("DELETE FROM api_logins WHERE name = ?", (name,))
            return cursor.rowcount > 0

    async def create_api_token(self, token: ApiToken) -> None:
        row = _checked(token_to_row, token)
        async with self._transaction("create_api_token") as db:
            async with db.execute("SELECT 1 FROM api_logins WHERE name = ?", (row[1],)) as cur:
                if await cur.fetchone() is None:
                    raise StorageError(f"token {token.id!r}: no login {token.login!r}")
            await db.execute(
                f"INSERT INTO api_tokens ({_TOKEN_COLUMNS}) VALUES "
                f"({', '.join('?' * len(TOKEN_COLUMNS))})",
                row,
            )

    async def load_api_token(self, token_id: str) -> ApiToken | None:
        rows = await self._read(
            "load_api_token",
            f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE id = ?",
            (check_text("token_id", token_id),),
        )
        return token_from_row(rows[0]) if rows else None

    async def load_api_tokens(self, login: str | None = None) -> list[ApiToken]:
        sql = f"SELECT {_TOKEN_COLUMNS} FROM api_tokens"
        params: tuple[object, ...] = ()
        if login is not None:
            sql += " WHERE login = ?"
            params = (check_text("login", login),)
        rows = await self._read("load_api_tokens", sql + " ORDER BY created_at, id", params)
        return [token_from_row(row) for row in rows]

    async def revoke_api_token(self, token_id: str, at: float) -> bool:
        params = (check_time("at", at), check_text("token_id", token_id))
        async with self._transaction("revoke_api_token") as db:
            cursor = await db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", params
            )
            return cursor.rowcount > 0

    async def purge_api_tokens(self, before: float) -> int:
        limit = check_time("before", before)
        async with self._transaction("purge_api_tokens") as db:
            cursor = await db.execute(
                "DELETE FROM api_tokens WHERE kind = 'session' AND "
                "(expires_at < ? OR revoked_at < ?)",
                (limit, limit),
            )
            return max(cursor.rowcount, 0)

    async def record_login_failure(self, login: str, source: str, at: float) -> None:
        when = check_time("at", at)
        async with self._transaction("record_login_failure") as db:
            await db.execute("DELETE FROM api_login_failures WHERE failed_at < ?", (when - 86400,))
            await db.execute(
                "INSERT INTO api_login_failures (login, source, failed_at) VALUES (?, ?, ?)",
                (check_text("login", login), check_text("source", source), when),
            )

    async def count_login_failures(
        self, since: float, login: str | None = None, source: str | None = None
    ) -> int:
        where = ["failed_at >= ?"]
        params: list[object] = [check_time("since", since)]
        for column, value in (("login", login), ("source", source)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(check_text(column, value))
        rows = await self._read(
            "count_login_failures",
            "SELECT count(*) FROM api_login_failures WHERE " + " AND ".join(where),
            params,
        )
        return int(rows[0][0])

    async def clear_login_failures(self, login: str) -> None:
        async with self._transaction("clear_login_failures") as db:
            await db.execute(
                "DELETE FROM api_login_failures WHERE login = ?", (check_text("login", login),)
            )

    async def count_cdrs(self, query: CdrQuery) -> int:
        where, params = _checked(self._cdr_where, replace(query, after=None))
        rows = await self._read("count_cdrs", "SELECT count(*) FROM cdrs" + where, params)
        return int(rows[0][0])

    def _cdr_where(self, query: CdrQuery) -> tuple[str, list[object]]:
        return cdr_query_sql(query, "?", search_table=self._search_table)

    async def find_cdrs(self, query: CdrQuery, limit: int) -> list[Cdr]:
        where, params = _checked(self._cdr_where, query)
        params.append(check_limit(limit))
        rows = await self._read(
            "find_cdrs",
            f"SELECT {_CDR_COLUMNS} FROM cdrs{where} "
            "ORDER BY start_time DESC, call_id DESC LIMIT ?",
            params,
        )
        return [cdr_from_row(row) for row in rows]

    async def _rows(self, what: str, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self._read(what, sql, params)]

    async def _analytics(self, query: CdrQuery) -> CdrQuery:
        """The query without paging; the rollup brought up to date when it will be read."""
        query = _checked(analytics_query, query)
        if split_period(query) is not None:
            await self.refresh_cdr_rollup()
        return query

    async def cdr_volume(self, query: CdrQuery, base: int, width: int) -> list[VolumeSlot]:
        query = await self._analytics(query)
        return await rolled_volume(self._rows, "sqlite", query, base, width)

    async def cdr_trunk_totals(self, query: CdrQuery) -> list[TrunkTotals]:
        return await rolled_trunks(self._rows, "sqlite", await self._analytics(query))

    async def cdr_quality_totals(self, query: CdrQuery) -> list[QualityTotals]:
        return await rolled_quality(self._rows, "sqlite", await self._analytics(query))

    async def refresh_cdr_rollup(self) -> None:
        # Up to _ROLLUP_CHUNK rows per transaction: a first rollup over a big history
        # (an upgrade) lets the CDR writer in between chunks.
        if not self._rollup_checked:
            await self._check_rollup()
        mark, top = (await self._read("cdr rollup", _ROLLUP_STATE))[0]
        if mark == top:  # most reads: nothing new, no write lock
            return
        while True:
            async with self._transaction("cdr rollup") as db:
                async with db.execute(_ROLLUP_STATE) as cursor:
                    row = await cursor.fetchone()
                assert row is not None
                mark, top = int(row[0]), int(row[1])
                if top < mark:
                    # The newest rows were deleted: their rowids will be given again.
                    await self._clear_rollup(db)
                    mark = 0
                if top == mark:
                    return
                upto = min(top, mark + _ROLLUP_CHUNK)
                await db.execute(
                    rollup_insert_sql("sqlite", "rowid > ? AND rowid <= ?"), (mark, upto)
                )
                await db.execute("UPDATE cdr_rollup_mark SET rolled_up = ? WHERE id = 1", (upto,))

    async def _check_rollup(self) -> None:
        """Once per Store: rebuild the rollup if CDRs it counted were deleted (an operator's
        SQL; nothing in the switch deletes CDRs)."""
        async with self._transaction("cdr rollup check") as db:
            async with db.execute("SELECT rolled_up FROM cdr_rollup_mark WHERE id = 1") as cur:
                mark = await cur.fetchone()
            # Nothing added up yet (a new or just upgraded database): nothing to check.
            row: Sequence[int] = (0, 0)
            if mark is not None and mark[0]:
                async with db.execute(count_check_sql("rowid > ?"), (mark[0],)) as cursor:
                    row = await cursor.fetchone() or row
            if int(row[0]) != int(row[1]):
                log.warning("storage.cdr_rollup_rebuilt", counted=int(row[0]), cdrs=int(row[1]))
                await self._clear_rollup(db)
        self._rollup_checked = True

    @staticmethod
    async def _clear_rollup(db: aiosqlite.Connection) -> None:
        await db.execute("DELETE FROM cdr_rollup")
        await db.execute("UPDATE cdr_rollup_mark SET rolled_up = 0 WHERE id = 1")

    async def page_provisioning(
        self, query: ObjectQuery, limit: int
    ) -> tuple[int, list[ProvisionedObject]]:
        count_sql, page_sql, count_params, page_params = _checked(
            object_page_sql, query, "sqlite", check_limit(limit)
        )
        total = await self._read("page_provisioning", count_sql, count_params)
        rows = await self._read("page_provisioning", page_sql, page_params)
        return int(total[0][0]), objects_from_rows([tuple(row) for row in rows])

    async def load_cdr(self, call_id: str) -> Cdr | None:
        rows = await self._read(
            "load_cdr",
            f"SELECT {_CDR_COLUMNS} FROM cdrs WHERE call_id = ?",
            (check_text("call_id", call_id),),
        )
        return cdr_from_row(rows[0]) if rows else None

    # -- end of the admin API block ----------------------------------------------------------

    # -- voicemail (storage.voicemail writes the statements) --------------------------------

    async def _vm_fetch(self, what: str, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._read(what, sql, args)]

    async def _vm_execute(self, what: str, sql: str, args: Sequence[Any]) -> int:
        async with self._transaction(what) as db:
            cursor = await db.execute(sql, args)
            return max(cursor.rowcount, 0)

    # -- security: banned source addresses --------------------------------------------------

    async def save_bans(self, bans: Sequence[Ban]) -> None:
        rows = storable_bans(bans)
        if not rows:
            return
        async with self._transaction("save_bans") as db:
            await db.executemany(_BAN_UPSERT, rows)

    async def load_bans(self, since: float) -> list[Ban]:
        rows = await self._read(
            "load_bans",
            f"SELECT {_BAN_COLUMNS} FROM security_bans WHERE expires_at > ? ORDER BY address",
            (check_time("since", since),),
        )
        return [ban_from_row(tuple(row)) for row in rows]

    async def delete_ban(self, address: str) -> bool:
        check_text("address", address)
        async with self._transaction("delete_ban") as db:
            cursor = await db.execute("DELETE FROM security_bans WHERE address = ?", (address,))
            return cursor.rowcount > 0

    async def purge_bans(self, before: float) -> int:
        limit = check_time("before", before)
        async with self._transaction("purge_bans") as db:
            cursor = await db.execute("DELETE FROM security_bans WHERE expires_at <= ?", (limit,))
            return max(cursor.rowcount, 0)

    # -- call-queue event log (migration 0009) ---------------------------------------------

    async def append_queue_events(self, events: Sequence[QueueEvent]) -> None:
        rows = storable_queue_events(events)
        if not rows:
            return
        async with self._transaction("append_queue_events") as db:
            await db.executemany(_QUEUE_EVENT_INSERT, rows)

    async def load_queue_events(self, tenant: str, since: float, until: float) -> list[QueueEvent]:
        rows = await self._read(
            "load_queue_events",
            f"SELECT {_QUEUE_EVENT_COLUMNS} FROM queue_events "
            "WHERE tenant = ? AND at >= ? AND at < ? ORDER BY at, id",
            (check_text("tenant", tenant), check_time("since", since), check_time("until", until)),
        )
        return [queue_event_from_row(tuple(row)) for row in rows]

    async def last_agent_statuses(self, tenant: str, before: float) -> list[QueueEvent]:
        rows = await self._read(
            "last_agent_statuses",
            f"SELECT {_QUEUE_EVENT_COLUMNS} FROM queue_events AS e "
            "WHERE tenant = ? AND event = 'agent_status' AND at < ? AND id = ("
            " SELECT id FROM queue_events AS l WHERE l.tenant = e.tenant AND l.agent = e.agent"
            " AND l.event = 'agent_status' AND l.at < ? ORDER BY l.at DESC, l.id DESC LIMIT 1"
            ") ORDER BY agent",
            (check_text("tenant", tenant), check_time("before", before), before),
        )
        return [queue_event_from_row(tuple(row)) for row in rows]

    # -- provisioning model and audit log (migration 0005) ----------------------------------

    async def provisioning_revision(self) -> int:
        rows = await self._read(
            "provisioning_revision", "SELECT revision FROM provisioning_revision WHERE id = 1"
        )
        return int(rows[0][0]) if rows else 0

    async def load_provisioning(
        self, tenant: str | None = None, kind: str | None = None
    ) -> list[ProvisionedObject]:
        where, params = _filters((("tenant", tenant), ("kind", kind)))
        rows = await self._read(
            "load_provisioning",
            "SELECT tenant, kind, key, version, data, updated_at FROM provisioning_objects"
            + where
            + " ORDER BY tenant, kind, key",
            params,
        )
        return [
            ProvisionedObject(r[0], r[1], r[2], int(r[3]), decode_document(r[4]) or {}, r[5])
            for r in rows
        ]

    async def load_provisioning_changes(self, since: int) -> ProvisioningDelta | None:
        rows = await self._read("load_provisioning_changes", _CHANGES_SQL, (since,))
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
        records: list[AuditRecord] = []
        async with self._transaction("write_provisioning") as db:
            async with db.execute(
                "SELECT revision FROM provisioning_revision WHERE id = 1"
            ) as cursor:
                row = await cursor.fetchone()
            revision = int(row[0]) if row is not None else 0
            if base_revision is not None and base_revision != revision:
                raise RevisionMoved(f"provisioning changed meanwhile (revision {revision})")
            current: dict[tuple[str, str, str], tuple[int, str]] = {}
            for write in writes:
                async with db.execute(
                    "SELECT version, data FROM provisioning_objects "
                    "WHERE tenant = ? AND kind = ? AND key = ?",
                    (write.tenant, write.kind, write.key),
                ) as cursor:
                    found = await cursor.fetchone()
                if found is not None:
                    current[(write.tenant, write.kind, write.key)] = (int(found[0]), found[1])
            planned = plan_writes(writes, current)
            if not planned:
                return revision, []
            revision += 1
            await db.execute(
                "UPDATE provisioning_revision SET revision = ? WHERE id = 1", (revision,)
            )
            for change in planned:
                w = change.write
                if change.after is None:
                    await db.execute(
                        "DELETE FROM provisioning_objects"
                        " WHERE tenant = ? AND kind = ? AND key = ?",
                        (w.tenant, w.kind, w.key),
                    )
                else:
                    await db.execute(
                        "INSERT INTO provisioning_objects "
                        "(tenant, kind, key, version, data, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (tenant, kind, key) DO UPDATE SET version = excluded.version,"
                        " data = excluded.data, updated_at = excluded.updated_at",
                        (w.tenant, w.kind, w.key, change.version, change.after, at),
                    )
                cursor = await db.execute(
                    "INSERT INTO audit_log (at, actor, source, action, tenant, kind, key, before,"
                    " after, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        *(at, actor, source, change.action, w.tenant, w.kind, w.key),
                        *(change.audit_before, change.audit_after, revision),
                    ),
                )
                assert cursor.lastrowid is not None
                records.append(_audit_record(cursor.lastrowid, at, actor, source, change, revision))
        return revision, records

    async def load_audit(self, query: AuditQuery) -> list[AuditRecord]:
        where, params = _filters(
            (
                ("tenant", query.tenant),
                ("kind", query.kind),
                ("key", query.key),
                ("actor", query.actor),
            )
        )
        clauses = [where[len(" WHERE ") :]] if where else []
        for clause, value in (
            ("at >= ?", query.since),
            ("at < ?", query.until),
            ("id < ?", query.before_id),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(check_time(clause.split()[0], value))
        params.append(check_limit(query.limit))
        rows = await self._read(
            "load_audit",
            "SELECT id, at, actor, source, action, tenant, kind, key, before, after, revision "
            "FROM audit_log"
            + (" WHERE " + " AND ".join(clauses) if clauses else "")
            + " ORDER BY id DESC LIMIT ?",
            params,
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


def _filters(pairs: Sequence[tuple[str, str | None]]) -> tuple[str, list[object]]:
    where: list[str] = []
    params: list[object] = []
    for column, value in pairs:
        if value is not None:
            where.append(f"{column} = ?")
            params.append(check_text(column, value))
    return (" WHERE " + " AND ".join(where) if where else ""), params


def _audit_record(
    record_id: int, at: float, actor: str, source: str, change: PlannedChange, revision: int
) -> AuditRecord:
    w = change.write
    return AuditRecord(
        record_id,
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


_CDR_COLUMNS = ", ".join(CDR_SQL_COLUMNS)
# An upsert, not INSERT OR REPLACE: the row keeps its rowid and the update trigger of the
# search index fires (REPLACE's implicit delete fires no trigger).
_CDR_UPSERT = (
    f"INSERT INTO cdrs ({_CDR_COLUMNS}) VALUES ({', '.join('?' * len(CDR_SQL_COLUMNS))}) "
    "ON CONFLICT (call_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in CDR_SQL_COLUMNS[1:])
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
    f"INSERT OR REPLACE INTO security_bans ({_BAN_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(BAN_COLUMNS))})"
)


_QUEUE_EVENT_COLUMNS = ", ".join(QUEUE_EVENT_COLUMNS)
_QUEUE_EVENT_INSERT = (
    f"INSERT INTO queue_events ({_QUEUE_EVENT_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(QUEUE_EVENT_COLUMNS))})"
)
