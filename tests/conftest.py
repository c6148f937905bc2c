"""Shared fixtures. PostgreSQL: `pg_dsn` (one server per session) and `pg_schema_dsn`
(a fresh, empty schema per test on that server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from softswitch.compiled import stale_extensions
from storage import Store, open_store
from tests.pg import PostgresUnavailable, dsn_with_search_path, postgres_dsn, random_schema_name


def pytest_configure(config: pytest.Config) -> None:
    stale = stale_extensions()
    if stale:  # the tests would run the old compiled code, not the edited source
        pytest.exit(
            f"compiled modules older than their source: {', '.join(stale)}; "
            "run `make venv` to rebuild them",
            returncode=4,
        )


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """DSN of a PostgreSQL test database (private server, or SOFTSWITCH_TEST_PG_DSN)."""
    problem = ""
    try:
        with postgres_dsn() as dsn:
            yield dsn
    except PostgresUnavailable as exc:
        problem = str(exc)
    if problem:  # failed outside the except block so the report shows only the message
        pytest.fail(problem, pytrace=False)


@pytest.fixture
async def pg_schema_dsn(pg_dsn: str) -> AsyncIterator[str]:
    """A DSN whose search_path is a new empty schema, dropped after the test."""
    schema = random_schema_name()
    conn = await asyncpg.connect(pg_dsn, timeout=10.0)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
    finally:
        await conn.close()
    yield dsn_with_search_path(pg_dsn, schema)
    conn = await asyncpg.connect(pg_dsn, timeout=10.0)
    try:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for each Store backend: a new SQLite file, a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        # Absolute path (sqlite:////tmp/...) in a directory the store must create.
        return f"sqlite:///{tmp_path}/nested/dir/softswitch.db"
    dsn: str = request.getfixturevalue("pg_schema_dsn")
    return dsn


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An opened (migrated) Store on each backend."""
    async with open_store(store_url) as opened:
        yield opened
