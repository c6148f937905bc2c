"""The tests' PostgreSQL: the throw-away server of peers/postgres.py (shared with the bench)."""

from __future__ import annotations

from peers.postgres import (
    PG_BIN_DIR,
    PG_DSN_ENV,
    PostgresServer,
    PostgresUnavailable,
    create_database,
    dsn_with_search_path,
    external_dsn,
    postgres_dsn,
    random_schema_name,
)

__all__ = [
    "PG_BIN_DIR",
    "PG_DSN_ENV",
    "PostgresServer",
    "PostgresUnavailable",
    "create_database",
    "dsn_with_search_path",
    "external_dsn",
    "postgres_dsn",
    "random_schema_name",
]
