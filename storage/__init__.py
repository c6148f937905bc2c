"""Durable state of the switch behind one `Store` interface.

    store = open_store("sqlite:///data/softswitch.db")   # or "postgresql://user@host/db"
    await store.open()            # connects and runs pending migrations
    ...
    await store.close()

`open_store` only parses the URL and builds the backend; `open()` (or `async with
store:`) connects. SQLite is the embedded default; PostgreSQL serves several nodes.
"""

from __future__ import annotations

from storage.base import Binding, StorageError, Store, redact_url

__all__ = ["Binding", "StorageError", "Store", "open_store", "sqlite_path"]

_SQLITE_FORMS = "sqlite:///relative/path.db, sqlite:////absolute/path.db or sqlite://:memory:"


def sqlite_path(url: str) -> str:
    """The file path named by a sqlite:// URL (":memory:" for an in-memory database).

    Raises ValueError saying what is wrong with the URL.
    """
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        raise ValueError(f"not a sqlite URL: {url!r} (expected {_SQLITE_FORMS})")
    if rest in (":memory:", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise ValueError(f"sqlite URL {url!r} has a host part; expected {_SQLITE_FORMS}")
    path = rest[1:]  # "sqlite:///a.db" -> "a.db", "sqlite:////abs/a.db" -> "/abs/a.db"
    if not path or path.endswith("/"):
        raise ValueError(f"sqlite URL {url!r} names no database file; expected {_SQLITE_FORMS}")
    if "\x00" in path:
        raise ValueError(f"sqlite URL {url!r} contains a NUL byte")
    return path


def open_store(url: str) -> Store:
    """Build the Store named by a database URL (not yet connected: await `open()`).

    sqlite:///relative/path.db, sqlite:////abs/path.db, sqlite://:memory: -> SqliteStore;
    postgresql://... or postgres://... -> PostgresStore (asyncpg pool).
    Raises ValueError for an unsupported scheme or a malformed sqlite URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("database URL is empty; expected sqlite:///path.db or postgresql://...")
    url = url.strip()
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(
            f"database URL {redact_url(url)!r} has no scheme; "
            "expected sqlite:///path.db or postgresql://..."
        )
    if scheme == "sqlite":
        from storage.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        from storage.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"database URL {redact_url(url)!r} has unsupported scheme {scheme!r}; "
        "expected sqlite or postgresql"
    )
