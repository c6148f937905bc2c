"""The location service: write-behind to the store, expiry purge, restore on start."""

from __future__ import annotations

import time
from pathlib import Path

from softswitch.location import LocationService, parse_received
from softswitch.sip.address import Address
from storage import open_store
from storage.base import Binding

SOURCE = Address("TCP", "127.0.0.1", 40001, conn_id=7)


def _binding(contact: str, expires_in: float, aor: str = "sip:100@pbx.test") -> Binding:
    now = time.time()
    return Binding(
        aor=aor,
        contact=contact,
        expires_at=now + expires_in,
        q=None,
        call_id="c1",
        cseq=1,
        instance_id=None,
        reg_id=None,
        path=[],
        received=str(SOURCE),
        transport="TCP",
        user_agent="test",
        registered_at=now,
    )


async def test_changes_reach_the_store_and_expired_bindings_are_purged(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'loc.db'}")
    await store.open()
    location = LocationService(store, flush_interval=0.01)
    await location.start()
    location.update(
        "sip:100@pbx.test",
        [
            (_binding("sip:100@10.0.0.1", 3600), SOURCE),
            (_binding("sip:100@10.0.0.2", 0.05), SOURCE),
        ],
    )
    assert len(location.bindings("sip:100@pbx.test")) == 2
    assert location.source(_binding("sip:100@10.0.0.1", 1)) == SOURCE
    await location.flush()
    assert len(await store.load_bindings()) == 2

    time.sleep(0.06)
    assert location.purge_expired() == 1
    await location.stop()
    rows = await store.load_bindings()
    assert [b.contact for b in rows] == ["sip:100@10.0.0.1"]
    await store.close()

    # A new service restores what was stored, with the address it came from.
    store = open_store(f"sqlite:///{tmp_path / 'loc.db'}")
    await store.open()
    restored = LocationService(store)
    assert await restored.start() == 1
    binding = restored.bindings("sip:100@pbx.test")[0]
    assert restored.source(binding) == Address("TCP", "127.0.0.1", 40001)
    await restored.stop()
    await store.close()


def test_parse_received() -> None:
    cases = [
        ("udp:127.0.0.1:5062", Address("UDP", "127.0.0.1", 5062)),
        ("tls:[2001:db8::1]:5061", Address("TLS", "2001:db8::1", 5061)),
        ("garbage", None),
        ("", None),
        (None, None),
    ]
    for text, expected in cases:
        assert parse_received(text) == expected, text
