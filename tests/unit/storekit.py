"""Reading a database behind the Store's back, for the storage tests."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg

from storage import sqlite_path


async def raw_fetch(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Query the database behind `url` without the Store (to check what it wrote)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as conn:
            return [tuple(row) for row in conn.execute(sql).fetchall()]
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def raw_execute(url: str, *statements: str) -> None:
    """Run statements on the database behind `url` without the Store (to set a scene)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(sqlite_path(url)) as conn:
            for sql in statements:
                conn.execute(sql)
        return
    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


# Time zones the CDR analytics are checked in: whole-hour offsets with summer time (the US
# changes on 2026-03-08 and 2026-11-01, Europe on 03-29 and 10-25), half and quarter hours
# (Kolkata, Kathmandu), and a half-hour summer shift (Lord Howe).
ZONES = (
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
)
