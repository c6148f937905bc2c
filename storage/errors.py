"""The one exception callers of the store see."""

from __future__ import annotations

__all__ = ["StorageError"]


class StorageError(Exception):
    """A store operation failed (bad input, unreachable database, broken schema).

    The message is safe to log: URLs in it have their password removed.
    """
