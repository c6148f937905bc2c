"""Call history substring search (caller contains, dialled contains) served by an index.

PostgreSQL: migration 0012 adds pg_trgm GIN indexes, which serve the history's
``LIKE '%...%'`` as it is written (when the server lacks pg_trgm the migration says so and
the search stays a scan: same answers, slower).

SQLite: an FTS5 table with the trigram tokenizer over ``cdrs`` (external content keyed by
the rowid), kept in step by triggers. It is made here at open, not in a migration, because
the tokenizer depends on the SQLite library Python was built with (3.34 or later): without
it the Store logs ``storage.cdr_search_unavailable`` once and searches by scanning.

The trigram match only narrows the candidate rows; the query's LIKE is still applied to
them, so the answers are exactly the scan's (the tokenizer's case folding matches a
superset of what LIKE's ASCII folding does). A search text under three characters has
no trigram and is scanned.
"""

from __future__ import annotations

import sqlite3
import time

import aiosqlite
import structlog

__all__ = [
    "MIN_TRIGRAM_TEXT",
    "SEARCH_TABLE",
    "fts_match",
    "prepare_sqlite_search",
]

log = structlog.get_logger(__name__)

SEARCH_TABLE = "cdrs_search"
MIN_TRIGRAM_TEXT = 3  # characters: a shorter text has no trigram to look up

_DDL = (
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
    " caller_number, dialled, content='cdrs', content_rowid='rowid',"
    " tokenize='trigram', detail='full')",
    # The Store writes CDRs with an upsert (rowid kept); the delete trigger is for a
    # retention purge made with SQL by an operator.
    f"CREATE TRIGGER {SEARCH_TABLE}_insert AFTER INSERT ON cdrs BEGIN"
    f" INSERT INTO {SEARCH_TABLE} (rowid, caller_number, dialled)"
    " VALUES (new.rowid, new.caller_number, new.dialled); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_delete AFTER DELETE ON cdrs BEGIN"
    f" INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, caller_number, dialled)"
    " VALUES ('delete', old.rowid, old.caller_number, old.dialled); END",
    f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE OF caller_number, dialled ON cdrs BEGIN"
    f" INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, caller_number, dialled)"
    " VALUES ('delete', old.rowid, old.caller_number, old.dialled);"
    f" INSERT INTO {SEARCH_TABLE} (rowid, caller_number, dialled)"
    " VALUES (new.rowid, new.caller_number, new.dialled); END",
    # Index the rows already there (an existing database migrated).
    f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')",
)


def _phrase(column: str, text: str) -> str:
    return f'{column} : "' + text.replace('"', '""') + '"'


def fts_match(caller: str | None, dialled: str | None) -> str | None:
    """The FTS5 query for the substring filters that have trigrams, or None (scan)."""
    terms = [
        _phrase(column, text)
        for column, text in (("caller_number", caller), ("dialled", dialled))
        if text is not None and len(text) >= MIN_TRIGRAM_TEXT
    ]
    return " AND ".join(terms) or None


async def _exists(db: aiosqlite.Connection) -> bool:
    async with db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (SEARCH_TABLE,)
    ) as cursor:
        return await cursor.fetchone() is not None


async def _trigram_missing(db: aiosqlite.Connection) -> str | None:
    """Why this SQLite cannot make the index (no FTS5, no trigram tokenizer), or None."""
    try:
        await db.execute(
            "CREATE VIRTUAL TABLE temp.cdrs_search_probe USING fts5(x, tokenize='trigram')"
        )
        await db.execute("DROP TABLE temp.cdrs_search_probe")
    except sqlite3.OperationalError as exc:
        return str(exc)
    return None


async def prepare_sqlite_search(db: aiosqlite.Connection, path: str) -> bool:
    """Inside the caller's write transaction: make the search index if it is missing and
    this SQLite can; True when searches may use it."""
    if await _exists(db):
        return True
    missing = await _trigram_missing(db)
    if missing is not None:
        log.warning(
            "storage.cdr_search_unavailable",
            path=path,
            sqlite=sqlite3.sqlite_version,
            reason=missing,
            effect="caller/dialled contains searches scan the call history",
        )
        return False
    started = time.perf_counter()
    for statement in _DDL:
        await db.execute(statement)
    async with db.execute("SELECT count(*) FROM cdrs") as cursor:
        row = await cursor.fetchone()
    log.info(
        "storage.cdr_search_built",
        path=path,
        cdrs=int(row[0]) if row else 0,
        seconds=round(time.perf_counter() - started, 2),
    )
    return True
