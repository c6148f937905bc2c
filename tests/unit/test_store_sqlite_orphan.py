"""A BEGIN that ran after its caller was cancelled leaves the SQLite connection in a
transaction nobody owns; the next write rolls it back instead of failing for ever."""

from __future__ import annotations

from pathlib import Path

from storage.bans import Ban
from storage.sqlite import SqliteStore


async def test_a_write_after_an_orphaned_begin_succeeds(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "switch.db"))
    await store.open()
    try:
        db = store._conn()
        await db.execute("BEGIN IMMEDIATE")  # what a cancelled caller's queued BEGIN leaves
        assert db.in_transaction
        await store.save_bans([Ban("192.0.2.7", "auth", 1, 100.0, 4e9)])
        assert [b.address for b in await store.load_bans(0.0)] == ["192.0.2.7"]
        assert not db.in_transaction
    finally:
        await store.close()
