"""Versioned schema migrations, one SQL file per version and backend.

Files are named `NNNN_name.<backend>.sql` (e.g. `0002_cdrs.sqlite.sql` and
`0002_cdrs.postgresql.sql`). Every version must exist for every backend with the same
name, so both backends always share one logical schema. Versions ascend but may leave
gaps: branches developed side by side reserve their numbers, and a version that arrives
after a higher one was applied is still applied (the runners apply every version not in
`schema_migrations`, lowest first). A new feature (CDRs, voicemail...) adds a new pair of
files; an applied file is never edited.

The `schema_migrations` table itself is created by the backends' runners, not by a
migration, so that the runner can read it before applying version 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from storage.base import StorageError

__all__ = ["BACKENDS", "Migration", "load_migrations", "split_sqlite_script"]

BACKENDS: tuple[str, ...] = ("sqlite", "postgresql")

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.([a-z]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema version for one backend."""

    version: int
    name: str
    sql: str


@cache
def _all_migrations() -> dict[str, tuple[Migration, ...]]:
    found: dict[str, dict[int, Migration]] = {backend: {} for backend in BACKENDS}
    for entry in resources.files(__name__).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE.match(entry.name)
        if match is None or match.group(3) not in found:
            raise StorageError(
                f"migration file {entry.name!r} is not named NNNN_name.<backend>.sql "
                f"with backend one of {', '.join(BACKENDS)}"
            )
        version, name, backend = int(match.group(1)), match.group(2), match.group(3)
        if version in found[backend]:
            raise StorageError(f"two {backend} migrations with version {version}")
        found[backend][version] = Migration(version, name, entry.read_text(encoding="utf-8"))

    reference = {v: m.name for v, m in found[BACKENDS[0]].items()}
    for backend, migrations in found.items():
        names = {v: m.name for v, m in migrations.items()}
        if names != reference:
            raise StorageError(
                f"{backend} migrations {sorted(names.items())} do not match "
                f"{BACKENDS[0]} migrations {sorted(reference.items())}"
            )
    if reference and min(reference) < 1:
        raise StorageError(f"migration versions start at 1, got {sorted(reference)}")
    return {b: tuple(m[v] for v in sorted(m)) for b, m in found.items()}


def load_migrations(backend: str) -> tuple[Migration, ...]:
    """All migrations of a backend in version order (validated, cached)."""
    if backend not in BACKENDS:
        raise StorageError(f"no migrations for backend {backend!r}")
    return _all_migrations()[backend]


def split_sqlite_script(sql: str) -> list[str]:
    """Split a script into single statements, as sqlite3's execute() takes one at a time.

    A ';' ends a statement only where sqlite3.complete_statement() agrees, so
    semicolons inside strings, comments and trigger bodies are kept.
    """
    import sqlite3

    statements: list[str] = []
    start = 0
    for pos, char in enumerate(sql):
        if char == ";" and sqlite3.complete_statement(sql[start : pos + 1]):
            statement = sql[start : pos + 1].strip()
            if _has_code(statement):
                statements.append(statement)
            start = pos + 1
    if _has_code(sql[start:]):
        raise StorageError(f"unterminated SQL statement: {sql[start:].strip()[:80]!r}")
    return statements


def _has_code(text: str) -> bool:
    """True when `text` holds more than whitespace, ';' and -- comments."""
    for line in text.splitlines():
        code = line.split("--", 1)[0].strip().strip(";").strip()
        if code:
            return True
    return False
