"""A page of provisioning objects read in SQL (Store.page_provisioning), on SQLite and
PostgreSQL: the order lists use (extensions as numbers, then names), the count of all, and
the page after a key, the same as sorting everything in Python."""

from __future__ import annotations

from storage import Store
from storage.object_pages import ObjectQuery
from storage.provisioning import ObjectWrite, key_order

T0 = 1_760_000_000.0
KEYS = [
    "9",
    "10",
    "100",
    "0100",
    "1000",
    "99",
    "Sales",
    "alpha",
    "beta",
    "Zulu",
    "12345678901234567890",
]


async def test_pages_follow_the_lists_order(store: Store) -> None:
    writes = [ObjectWrite("acme", "queue", k, {"name": k}) for k in KEYS]
    writes.append(ObjectWrite("globex", "queue", "5", {"name": "5"}))  # another tenant
    writes.append(ObjectWrite("acme", "user", "7", {"extension": "7"}))  # another kind
    await store.write_provisioning(writes, actor="t", source="unit", at=T0)
    expected = sorted(KEYS, key=key_order)
    seen: list[str] = []
    after: str | None = None
    while True:
        total, page = await store.page_provisioning(ObjectQuery("acme", "queue", after=after), 4)
        assert total == len(KEYS)
        if not page:
            break
        seen += [o.key for o in page]
        assert all(o.tenant == "acme" and o.kind == "queue" for o in page)
        assert page[0].data == {"name": page[0].key} and page[0].version == 1
        after = page[-1].key
    assert seen == expected
    assert expected[:5] == ["9", "10", "99", "0100", "100"]  # numbers as numbers
    total, none = await store.page_provisioning(ObjectQuery("acme", "mailbox"), 10)
    assert (total, none) == (0, [])
