"""A page of provisioned objects found and paged by the database (storage.object_pages)
is the page the whole list filtered and sorted in Python gives, on SQLite and PostgreSQL:
numeric keys by value, other keys after them, a search over key or name, a scope of keys,
keyset paging to the end without a row lost or repeated."""

from __future__ import annotations

import random
from typing import Any

import pytest

from storage import open_store
from storage.errors import StorageError
from storage.object_pages import ObjectQuery
from storage.provisioning import ObjectWrite, key_order

TENANT = "acme"


def _users() -> dict[str, dict[str, Any]]:
    rng = random.Random(3)
    names = ["Ann Smith", "Bob Jones", "Zoë Müller", "Ann-Marie 50%", "li_wei", "O'Brien"]
    users: dict[str, dict[str, Any]] = {}
    for n in range(300):
        key = str(rng.choice((100, 1000, 20000)) + n)
        users[key] = {"display_name": f"{rng.choice(names)} {n}", "caller_id": ""}
    users["0100"] = {"display_name": "leading zero"}
    users["9" * 20] = {"display_name": "longer than a number"}
    users["sales"] = {"display_name": "Sales line"}
    users["Sales2"] = {}
    return users


def _expected(
    users: dict[str, dict[str, Any]], text: str | None, by_name: bool, keys: set[str] | None
) -> list[str]:
    def matches(key: str, data: dict[str, Any]) -> bool:
        if keys is not None and key not in keys:
            return False
        if not text:
            return True
        wanted = text.lower()
        name = str(data.get("display_name", "")).lower()
        return wanted in key.lower() or (by_name and wanted in name)

    return sorted((k for k, d in users.items() if matches(k, d)), key=key_order)


async def _all_pages(store: Any, query: ObjectQuery, size: int) -> tuple[int, list[str]]:
    seen: list[str] = []
    total = -1
    while True:
        total, page = await store.page_provisioning(query, size + 1)
        seen.extend(o.key for o in page[:size])
        if len(page) <= size:
            return total, seen
        query = ObjectQuery(
            query.tenant, query.kind, query.text, query.field, query.keys, page[size - 1].key
        )


async def test_pages_are_the_sorted_filtered_list(database_url: str) -> None:
    users = _users()
    async with open_store(database_url) as store:
        writes = [ObjectWrite(TENANT, "user", k, d) for k, d in users.items()]
        writes.append(ObjectWrite("other", "user", "101", {"display_name": "Ann elsewhere"}))
        writes.append(ObjectWrite(TENANT, "device", "101", {"display_name": "Ann device"}))
        await store.write_provisioning(writes, actor="test", source="test", at=1.0)
        scope = {k for k in users if k.startswith("10")}
        cases: list[tuple[str | None, bool, set[str] | None]] = [
            (None, False, None),
            ("10", False, None),
            ("ann", True, None),
            ("50%", True, None),  # LIKE's wildcards are text here
            ("_", True, None),
            ("SALES", True, None),
            ("ann", True, scope),
            (None, False, set()),
        ]
        for text, by_name, keys in cases:
            query = ObjectQuery(
                TENANT,
                "user",
                text=text,
                field="display_name" if by_name else None,
                keys=None if keys is None else tuple(sorted(keys)),
            )
            expected = _expected(users, text, by_name, keys)
            total, seen = await _all_pages(store, query, 7)
            assert (total, seen) == (len(expected), expected), (text, by_name)


async def test_bad_search_input_is_refused(database_url: str) -> None:
    async with open_store(database_url) as store:
        with pytest.raises(StorageError):
            await store.page_provisioning(ObjectQuery(TENANT, "user", text="a\x00b"), 5)
        with pytest.raises(StorageError):
            await store.page_provisioning(
                ObjectQuery(TENANT, "user", text="x", field="name'); --"), 5
            )
