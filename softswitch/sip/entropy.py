"""Random bytes for identifiers and nonces, fetched from the kernel in blocks."""

from __future__ import annotations

import os
import threading

__all__ = ["random_bytes"]


class _RandomPool:
    """Bytes from os.urandom fetched 4 KiB at a time: one getrandom() system call per few
    hundred identifiers instead of one each (measurable at line rate)."""

    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0

    def take(self, count: int) -> bytes:
        data = self.data
        pos = self.pos
        end = pos + count
        if end > len(data):
            data = self.data = os.urandom(max(4096, count))
            pos, end = 0, count
        self.pos = end
        return data[pos:end]


# One pool per thread (by thread id: a live thread's id is unique), emptied in a forked
# child, so no two callers ever get the same bytes. Not a threading.local subclass: that
# does not compile with mypyc.
_POOLS: dict[int, _RandomPool] = {}
os.register_at_fork(after_in_child=_POOLS.clear)


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the kernel's CSPRNG, as os.urandom gives."""
    thread = threading.get_ident()
    pool = _POOLS.get(thread)
    if pool is None:
        pool = _POOLS[thread] = _RandomPool()
    return pool.take(count)
