"""Call history substring search (caller contains, dialled contains) served by an index.

PostgreSQL: migration 0012 adds pg_trgm GIN indexes, which serve the history's
``LIKE '%...%'`` as it is written (when the server lacks pg_trgm the migration says so and
the search stays a scan: same answers, slower).

SQLite: an FTS5 table with the trigram tokenizer over ``cdrs`` (external content keyed by
the rowid). It is made here at open, not in a migration, because the tokenizer depends on
the SQLite library Python was built with (3.34 or later): without it the Store logs
``storage.cdr_search_unavailable`` once and searches by scanning.

Rows are indexed in batches, not one by one as they are written: a statement that writes an
FTS5 table makes it write its pending terms as a new segment of the index (and merge
segments as they pile up), which cost several times the row's own insert when every CDR
was indexed by a trigger. Now the triggers only note new rows in ``cdrs_search_pending``
(and the indexed values of changed or deleted rows in ``cdrs_search_stale``);
:func:`feed_search` brings the index up to date once :data:`FEED_ROWS` rows have gathered
(the Store calls it after a write), and a search looks at the noted rows beside the
index's answer (:func:`search_clause`), so a CDR is found from the moment it is written.

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
    "FEED_ROWS",
    "MIN_TRIGRAM_TEXT",
    "PENDING_TABLE",
    "SEARCH_TABLE",
    "STALE_TABLE",
    "feed_search",
    "fts_match",
    "pending_rows",
    "prepare_sqlite_search",
    "search_clause",
]

log = structlog.get_logger(__name__)

SEARCH_TABLE = "cdrs_search"
PENDING_TABLE = "cdrs_search_pending"  # rowids of the rows not in the index yet
STALE_TABLE = "cdrs_search_stale"  # what the index holds of rows changed or deleted since
MIN_TRIGRAM_TEXT = 3  # characters: a shorter text has no trigram to look up
# Rows indexed together: past a few hundred, a batch's share of FTS5's per-commit work is
# small beside the rows' own; a search reads at most this many noted rows by rowid.
FEED_ROWS = 256

_TABLE = (
    f"CREATE VIRTUAL TABLE {SEARCH_TABLE} USING fts5("
    " caller_number, dialled, content='cdrs', content_rowid='rowid',"
    " tokenize='trigram', detail='full')"
)
_NOT_PENDING = f"NOT EXISTS (SELECT 1 FROM {PENDING_TABLE} WHERE rowid = old.rowid)"
_NOTE_NEW = (
    f"INSERT INTO {PENDING_TABLE} (rowid) SELECT new.rowid"
    f" WHERE NOT EXISTS (SELECT 1 FROM {PENDING_TABLE} WHERE rowid = new.rowid);"
)
# The values the index holds (the first ones kept: later changes were never indexed).
_NOTE_STALE = (
    f"INSERT INTO {STALE_TABLE} (rowid, caller_number, dialled)"
    f" SELECT old.rowid, old.caller_number, old.dialled WHERE {_NOT_PENDING}"
    f" AND NOT EXISTS (SELECT 1 FROM {STALE_TABLE} WHERE rowid = old.rowid);"
)
# No trigger touches the index itself: a statement that may write an FTS5 table makes it
# flush its pending terms to a new segment, which is the cost batching saves. A new row is
# noted; a changed or deleted row that the index holds leaves its indexed values in
# ``cdrs_search_stale`` (taken out at the next feed) and a changed one is noted to go back
# in. Meanwhile the index may answer a row's old numbers: the search's LIKE on the row
# itself drops it, as it drops every other false candidate. (No INSERT OR IGNORE here: the
# Store's upsert would override a trigger's conflict clause.)
_TRIGGERS = (
    f"CREATE TRIGGER {SEARCH_TABLE}_insert AFTER INSERT ON cdrs BEGIN {_NOTE_NEW} END",
    # The Store writes CDRs with an upsert (rowid kept); the delete trigger is for a
    # retention purge made with SQL by an operator.
    f"CREATE TRIGGER {SEARCH_TABLE}_delete AFTER DELETE ON cdrs BEGIN {_NOTE_STALE}"
    f" DELETE FROM {PENDING_TABLE} WHERE rowid = old.rowid; END",
    f"CREATE TRIGGER {SEARCH_TABLE}_update AFTER UPDATE OF caller_number, dialled ON cdrs"
    f" BEGIN {_NOTE_STALE} {_NOTE_NEW} END",
)
_OLD_TRIGGERS = tuple(
    f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_{event}" for event in ("insert", "delete", "update")
)
_PENDING = (
    f"CREATE TABLE IF NOT EXISTS {PENDING_TABLE} (rowid INTEGER PRIMARY KEY)",
    f"CREATE TABLE IF NOT EXISTS {STALE_TABLE}"
    " (rowid INTEGER PRIMARY KEY, caller_number TEXT, dialled TEXT)",
    f"DELETE FROM {PENDING_TABLE}",
    f"DELETE FROM {STALE_TABLE}",
)
_FEED = (
    f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}, rowid, caller_number, dialled)"
    f" SELECT 'delete', rowid, caller_number, dialled FROM {STALE_TABLE}",
    f"DELETE FROM {STALE_TABLE}",
    f"INSERT INTO {SEARCH_TABLE} (rowid, caller_number, dialled)"
    f" SELECT c.rowid, c.caller_number, c.dialled FROM {PENDING_TABLE} p"
    " JOIN cdrs c ON c.rowid = p.rowid",
    f"DELETE FROM {PENDING_TABLE}",
)


def search_clause(match_param: str) -> str:
    """The WHERE term of a search: the rows the index matches (``match_param``: the
    placeholder of :func:`fts_match`'s query) and the rows not indexed yet, which the
    query's LIKE then filters like every candidate."""
    return (
        f"(rowid IN (SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH {match_param})"
        f" OR rowid IN (SELECT rowid FROM {PENDING_TABLE}))"
    )


async def pending_rows(db: aiosqlite.Connection) -> int:
    """How many rows wait to be indexed."""
    async with db.execute(f"SELECT count(*) FROM {PENDING_TABLE}") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def feed_search(db: aiosqlite.Connection) -> None:
    """Inside the caller's write transaction: bring the index up to date, in one statement
    for the rows changed or deleted and one for the rows to add."""
    for statement in _FEED:
        await db.execute(statement)


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


async def _exists(db: aiosqlite.Connection, name: str) -> bool:
    async with db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ) as cursor:
        return await cursor.fetchone() is not None


async def prepare_sqlite_search(db: aiosqlite.Connection, path: str) -> bool:
    """Inside the caller's write transaction: make the search index if it is missing and
    this SQLite can (or move one that indexed every row as it was written to batches);
    True when searches may use it."""
    if await _exists(db, SEARCH_TABLE):
        if not await _exists(db, STALE_TABLE):  # made before indexing was batched
            for statement in (*_OLD_TRIGGERS, *_PENDING, *_TRIGGERS):
                await db.execute(statement)
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
    # Index the rows already there (an existing database migrated), then note new ones.
    statements = (
        _TABLE,
        f"INSERT INTO {SEARCH_TABLE} ({SEARCH_TABLE}) VALUES ('rebuild')",
        *_OLD_TRIGGERS,
        *_PENDING,
        *_TRIGGERS,
    )
    for statement in statements:
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
