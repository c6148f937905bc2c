"""Stored bans (migration 0007) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from storage import StorageError, Store
from storage.bans import Ban

NOW = 1_800_000_000.0


async def test_bans_are_saved_loaded_lifted_and_purged(store: Store) -> None:
    bans = [
        Ban("203.0.113.7", "failed authentications", 1, NOW, NOW + 600),
        Ban("2001:db8::7", "scanner", 2, NOW, NOW + 2400),
        Ban("198.51.100.1", "flood", 3, NOW - 900, NOW - 300),  # ended, still an offence
    ]
    await store.save_bans(bans)
    assert [b.address for b in await store.load_bans(NOW)] == ["2001:db8::7", "203.0.113.7"]
    assert len(await store.load_bans(NOW - 3600)) == 3
    # A repeat offence replaces the row (one per address).
    await store.save_bans([Ban("203.0.113.7", "again", 2, NOW + 700, NOW + 3100)])
    again = [b for b in await store.load_bans(NOW) if b.address == "203.0.113.7"]
    assert again == [Ban("203.0.113.7", "again", 2, NOW + 700, NOW + 3100)]
    assert await store.delete_ban("203.0.113.7") is True
    assert await store.delete_ban("203.0.113.7") is False
    assert await store.purge_bans(NOW) == 1
    assert [b.address for b in await store.load_bans(0)] == ["2001:db8::7"]


@pytest.mark.parametrize(
    ("ban", "field"),
    [
        (Ban("not-an-ip", "x", 1, NOW, NOW + 1), "address"),
        (Ban("192.0.2.1", "", 1, NOW, NOW + 1), "reason"),
        (Ban("192.0.2.1", "x", 0, NOW, NOW + 1), "offences"),
        (Ban("192.0.2.1", "x", 1, NOW, float("inf")), "expires_at"),
    ],
)
async def test_a_bad_ban_is_refused_naming_the_row_and_field(
    store: Store, ban: Ban, field: str
) -> None:
    good = Ban("192.0.2.9", "x", 1, NOW, NOW + 60)
    with pytest.raises(StorageError, match=rf"bans\[1\]\.{field}"):
        await store.save_bans([good, ban])
    assert await store.load_bans(0) == []  # nothing half-applied
