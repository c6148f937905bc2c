"""Indexed call history search (migration 0012, storage.cdr_search) on both backends: the
answers are the scan's (LIKE's own case rules per backend), a database with rows migrates
and its rows are found, the index follows inserts, upserts and deletes, and the plans use
the indexes."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import storage.sqlite
from storage import open_store, sqlite_path
from storage.cdr import Cdr
from storage.logins import CdrQuery, cdr_query_sql
from tests.unit.storekit import raw_execute, raw_fetch

NOW = 1_800_000_000.0
NUMBERS = (
    "+12125550123",
    "+14155550120",
    "100",
    "101",
    "12",
    "",
    "abcdef",
    "ABCDEF",
    "x%y_z",
    'say "hi"',
    "ÄÖÜ straße",
    "äöü STRASSE",
    "anonymous",
)
SEARCHES = (
    "2125",
    "55501",
    "0",
    "12",
    "1",
    "abc",
    "ABC",
    "cDe",
    "%",
    "_",
    "x%y",
    '"hi"',
    'y "',
    "ÄÖ",
    "äö",
    "straße",
    "STRASSE",
    "nobody here",
)


def cdr(n: int, caller: str, dialled: str) -> Cdr:
    return Cdr(
        call_id=f"c{n:04d}",
        sip_call_id=f"s{n}",
        tenant="acme" if n % 7 else "other",
        direction=("inbound", "outbound", "internal")[n % 3],
        caller_number=caller,
        caller_name="",
        dialled=dialled,
        destination="101" if n % 4 else "",
        trunk="",
        start=NOW + (n // 2) * 10,  # pairs share a start: the order needs the call id
        answer=NOW + n if n % 4 else None,
        end=NOW + 100 + n,
        disposition="ANSWERED" if n % 4 else "NO ANSWER",
        sip_code=200,
        q850_cause=16,
        q850_name="NORMAL_CLEARING",
    )


CDRS = [
    cdr(n, caller, dialled)
    for n, (caller, dialled) in enumerate(itertools.product(NUMBERS, repeat=2))
]


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def contains(url: str) -> Callable[[str, str], bool]:
    """What LIKE '%text%' means on this backend: SQLite folds ASCII case only,
    PostgreSQL compares exactly."""
    if url.startswith("sqlite"):
        return lambda value, text: _ascii_lower(text) in _ascii_lower(value)
    return lambda value, text: text in value


def queries() -> list[tuple[CdrQuery, Callable[[Cdr, Callable[[str, str], bool]], bool]]]:
    found: list[tuple[CdrQuery, Callable[[Cdr, Callable[[str, str], bool]], bool]]] = []
    for text in SEARCHES:
        found.append(
            (
                CdrQuery(tenant="acme", dialled=text),
                lambda c, has, t=text: c.tenant == "acme" and has(c.dialled, t),
            )
        )
        found.append(
            (
                CdrQuery(tenant="acme", caller=text, direction="inbound"),
                lambda c, has, t=text: (
                    c.tenant == "acme" and c.direction == "inbound" and has(c.caller_number, t)
                ),
            )
        )
    found += [
        (
            CdrQuery(tenant="acme", caller="2125", dialled="abc"),
            lambda c, has: (
                c.tenant == "acme" and has(c.caller_number, "2125") and has(c.dialled, "abc")
            ),
        ),
        (
            CdrQuery(tenant="acme", party="101", start=NOW + 100, disposition="ANSWERED"),
            lambda c, has: (
                c.tenant == "acme"
                and "101" in (c.caller_number, c.dialled, c.destination)
                and c.start >= NOW + 100
                and c.disposition == "ANSWERED"
            ),
        ),
        (
            CdrQuery(tenant="acme", parties=("100", "12"), end=NOW + 500, dialled="555"),
            lambda c, has: (
                c.tenant == "acme"
                and bool({"100", "12"} & {c.caller_number, c.dialled, c.destination})
                and c.start < NOW + 500
                and has(c.dialled, "555")
            ),
        ),
        (CdrQuery(tenant="acme", parties=(), caller="abc"), lambda c, has: False),
        (
            CdrQuery(party="100", caller="+1"),
            lambda c, has: (
                "100" in (c.caller_number, c.dialled, c.destination) and has(c.caller_number, "+1")
            ),
        ),
    ]
    return found


def newest_first(cdrs: list[Cdr]) -> list[str]:
    return [c.call_id for c in sorted(cdrs, key=lambda c: (c.start, c.call_id), reverse=True)]


async def check_answers(url: str) -> None:
    has = contains(url)
    async with open_store(url) as store:
        for query, wanted in queries():
            expect = newest_first([c for c in CDRS if wanted(c, has)])
            got = [c.call_id for c in await store.find_cdrs(query, 10_000)]
            assert got == expect, query
            assert await store.count_cdrs(query) == len(expect), query
            # keyset paging through the indexed search gives the same rows in order
            paged: list[str] = []
            page_query = query
            while True:
                page = await store.find_cdrs(page_query, 5)
                paged += [c.call_id for c in page]
                if len(page) < 5:
                    break
                page_query = CdrQuery(
                    **{
                        **{k: getattr(query, k) for k in CdrQuery.__dataclass_fields__},
                        "after": (page[-1].start, page[-1].call_id),
                    }
                )
            assert paged == expect, query


async def test_search_answers_are_the_scans(database_url: str) -> None:
    async with open_store(database_url) as store:
        await store.save_cdrs(CDRS)
    await check_answers(database_url)


async def test_sqlite_indexes_in_batches_and_finds_rows_not_indexed_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The index takes rows in batches (storage.cdr_search.FEED_ROWS, 100 here): the first
    # save is indexed, the second waits; the answers are the scan's either way.
    monkeypatch.setattr(storage.sqlite, "FEED_ROWS", 100)
    url = f"sqlite:///{tmp_path}/batches.db"
    pending = "SELECT count(*) FROM cdrs_search_pending"
    async with open_store(url) as store:
        await store.save_cdrs(CDRS[:120])
        assert await raw_fetch(url, pending) == [(0,)]
        await store.save_cdrs(CDRS[120:])
        assert await raw_fetch(url, pending) == [(len(CDRS) - 120,)]
    await check_answers(url)

    async with open_store(url) as store:
        waiting, indexed = CDRS[150], CDRS[10]  # changed, then deleted
        await store.save_cdrs([cdr(150, "+33140000001", waiting.dialled)])
        await store.save_cdrs([cdr(10, "+33140000002", indexed.dialled)])
        found = await store.find_cdrs(CdrQuery(caller="+3314000000"), 10)
        assert [c.call_id for c in found] == ["c0150", "c0010"]
        await raw_execute(url, "DELETE FROM cdrs WHERE call_id IN ('c0150', 'c0010')")
        assert await store.find_cdrs(CdrQuery(caller="+3314000000"), 10) == []
        assert await raw_fetch(url, pending) == [(len(CDRS) - 121,)]
        # New rows after the deletes: noted, found, then indexed by the next batch.
        await store.save_cdrs([cdr(9000, "+33140000003", "+441632960000")])
        assert [c.call_id for c in await store.find_cdrs(CdrQuery(dialled="1632960"), 10)] == [
            "c9000"
        ]
        monkeypatch.setattr(storage.sqlite, "FEED_ROWS", 1)
        await store.save_cdrs([cdr(9001, "+33140000004", "+441632960001")])
        assert await raw_fetch(url, pending) == [(0,)]
        found = await store.find_cdrs(CdrQuery(dialled="1632960"), 10)
        assert [c.call_id for c in found] == ["c9001", "c9000"]
    # FTS5's own check of its index (a "delete" of a row it never held would fail it).
    await raw_execute(url, "INSERT INTO cdrs_search (cdrs_search) VALUES ('integrity-check')")


def _unmigrate(url: str) -> list[str]:
    """The statements that take a database back to before migration 0012 (rows kept)."""
    statements = [
        "DROP INDEX cdrs_tenant_caller",
        "DROP INDEX cdrs_tenant_dialled",
        "DROP INDEX cdrs_tenant_destination",
        "DELETE FROM schema_migrations WHERE version = 12",
    ]
    if url.startswith("sqlite"):
        statements += [
            "DROP TRIGGER cdrs_search_insert",
            "DROP TRIGGER cdrs_search_delete",
            "DROP TRIGGER cdrs_search_update",
            "DROP TABLE cdrs_search",
        ]
    else:
        statements += ["DROP INDEX cdrs_caller_trgm", "DROP INDEX cdrs_dialled_trgm"]
    return statements


async def test_a_database_with_rows_migrates_and_the_index_follows_writes(
    database_url: str,
) -> None:
    async with open_store(database_url) as store:
        await store.save_cdrs(CDRS)
    await raw_execute(database_url, *_unmigrate(database_url))
    assert await raw_fetch(
        database_url, "SELECT count(*) FROM schema_migrations WHERE version = 12"
    ) == [(0,)]
    await check_answers(database_url)  # reopened: 0012 applied, the old rows indexed
    assert await raw_fetch(
        database_url, "SELECT count(*) FROM schema_migrations WHERE version = 12"
    ) == [(1,)]

    async with open_store(database_url) as store:
        await store.save_cdrs([cdr(9000, "+33140000000", "+441632960000")])
        renumbered = CDRS[1]
        await store.save_cdrs([cdr(1, renumbered.caller_number, "+4916090000")])  # upsert
        await raw_execute(database_url, "DELETE FROM cdrs WHERE call_id = 'c0002'")
        dialled = CdrQuery(tenant="acme", dialled="1609")
        assert [c.call_id for c in await store.find_cdrs(dialled, 10)] == ["c0001"]
        caller = CdrQuery(tenant="acme", caller="3314")
        assert [c.call_id for c in await store.find_cdrs(caller, 10)] == ["c9000"]
        old = CdrQuery(tenant="acme", dialled=CDRS[1].dialled)
        assert "c0001" not in [c.call_id for c in await store.find_cdrs(old, 10_000)]
        gone = CdrQuery(tenant="acme", dialled=CDRS[2].dialled, caller=CDRS[2].caller_number)
        assert "c0002" not in [c.call_id for c in await store.find_cdrs(gone, 10_000)]


async def test_sqlite_plans_use_the_indexes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/plans.db"
    async with open_store(url) as store:
        await store.save_cdrs(CDRS)

    def plan(query: CdrQuery) -> str:
        where, params = cdr_query_sql(query, "?", search_table="cdrs_search")
        sql = (
            "EXPLAIN QUERY PLAN SELECT call_id FROM cdrs"
            + where
            + " ORDER BY start_time DESC, call_id DESC LIMIT 51"
        )
        with sqlite3.connect(sqlite_path(url)) as conn:
            return " | ".join(str(row[3]) for row in conn.execute(sql, params))

    by_user = plan(
        CdrQuery(tenant="acme", start=NOW, party="101", disposition="ANSWERED", direction="inbound")
    )
    for index in ("cdrs_tenant_caller", "cdrs_tenant_dialled", "cdrs_tenant_destination"):
        assert index in by_user
    assert "cdrs_tenant_start_time" not in by_user
    searched = plan(CdrQuery(tenant="acme", dialled="555012", direction="inbound"))
    assert "cdrs_search VIRTUAL TABLE" in searched
    assert "rowid=?" in searched
    short = plan(CdrQuery(tenant="acme", dialled="55"))  # no trigram: a scan, same answers
    assert "cdrs_search" not in short


async def test_postgresql_has_the_trigram_indexes(pg_schema_dsn: str) -> None:
    async with open_store(pg_schema_dsn):
        pass
    names = {
        row[0]
        for row in await raw_fetch(
            pg_schema_dsn,
            "SELECT indexname FROM pg_indexes WHERE tablename = 'cdrs'"
            " AND schemaname = current_schema()",
        )
    }
    assert {"cdrs_caller_trgm", "cdrs_dialled_trgm", "cdrs_tenant_caller"} <= names
