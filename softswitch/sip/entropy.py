"""Random bytes for identifiers and nonces, fetched from the kernel in blocks."""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes"]


class _RandomPool(threading.local):
    """Bytes from os.urandom fetched 4 KiB at a time: one getrandom() system call per few
    hundred identifiers instead of one each (measurable at line rate). Per thread, and
    emptied in a forked child, so no two callers ever get the same bytes."""

    _SIZE = 4096

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0

    def take(self, count: int) -> bytes:
        # Each attribute of a thread-local is a per-thread dictionary look-up: read once.
        data = self.data
        pos = self.pos
        end = pos + count
        if end > len(data):
            data = self.data = os.urandom(max(self._SIZE, count))
            pos, end = 0, count
        self.pos = end
        return data[pos:end]

    def clear(self) -> None:
        self.data = b""
        self.pos = 0


_POOL = _RandomPool()
os.register_at_fork(after_in_child=_POOL.clear)

random_bytes = _POOL.take
"""random_bytes(count): ``count`` bytes from the kernel's CSPRNG, as os.urandom gives."""
