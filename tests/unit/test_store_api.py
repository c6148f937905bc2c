"""The admin API's tables on both backends: logins (versioned), tokens, failed logins, and
the call-history query (filters, keyset paging)."""

from __future__ import annotations

import pytest

from storage import StorageError, Store
from storage.cdr import Cdr
from storage.logins import ApiLogin, ApiToken, CdrQuery

NOW = 1_800_000_000.0


def login(name: str = "alice", **fields: object) -> ApiLogin:
    values: dict[str, object] = {
        "name": name,
        "role": "office_manager",
        "tenants": ["acme"],
        "permissions": {"calls": "r"},
        "password_hash": "$argon2id$...",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return ApiLogin(**values)  # type: ignore[arg-type]


def token(token_id: str, owner: str = "alice", **fields: object) -> ApiToken:
    values: dict[str, object] = {
        "id": token_id,
        "login": owner,
        "secret_hash": "ab" * 32,
        "kind": "api",
        "created_at": NOW,
    }
    values.update(fields)
    return ApiToken(**values)  # type: ignore[arg-type]


async def test_logins_round_trip_and_update_by_version(store: Store) -> None:
    await store.create_api_login(login(totp_secret="JBSWY3DPEHPK3PXP", site=None))
    with pytest.raises(StorageError, match="exists"):
        await store.create_api_login(login())
    found = await store.load_api_login("alice")
    assert found == login(totp_secret="JBSWY3DPEHPK3PXP")
    found.enabled = False
    updated = await store.update_api_login(found, expected_version=1)
    assert updated is not None and updated.version == 2
    assert await store.update_api_login(found, expected_version=1) is None  # stale
    assert (await store.load_api_login("alice")).enabled is False  # type: ignore[union-attr]
    await store.create_api_login(login("bob", role="user", extension="101"))
    assert [x.name for x in await store.load_api_logins()] == ["alice", "bob"]


async def test_bad_login_fields_are_named(store: Store) -> None:
    with pytest.raises(StorageError, match="name must not be empty"):
        await store.create_api_login(login(""))
    with pytest.raises(StorageError, match="tenants"):
        await store.create_api_login(login(tenants="acme"))
    with pytest.raises(StorageError, match="site"):
        await store.create_api_login(login(site="a\x00b"))
    assert await store.load_api_logins() == []


async def test_tokens_revoke_and_go_with_their_login(store: Store) -> None:
    await store.create_api_login(login())
    await store.create_api_token(token("t1", expires_at=NOW + 60))
    await store.create_api_token(token("t2", kind="session"))
    with pytest.raises(StorageError, match="no login"):
        await store.create_api_token(token("t3", owner="nobody"))
    with pytest.raises(StorageError, match="kind"):
        await store.create_api_token(token("t4", kind="magic"))
    assert (await store.load_api_token("t1")) == token("t1", expires_at=NOW + 60)
    assert [t.id for t in await store.load_api_tokens("alice")] == ["t1", "t2"]
    assert await store.revoke_api_token("t1", NOW + 1)
    assert not await store.revoke_api_token("t1", NOW + 2)  # already revoked
    assert (await store.load_api_token("t1")).revoked_at == NOW + 1  # type: ignore[union-attr]
    await store.create_api_token(token("s1", kind="session", expires_at=NOW - 10))
    await store.create_api_token(token("s2", kind="session", expires_at=NOW + 10))
    await store.create_api_token(token("s3", kind="session", revoked_at=NOW - 5))
    await store.create_api_token(token("a1", kind="api", expires_at=NOW - 10))
    assert await store.purge_api_tokens(NOW) == 2  # s1, s3: sessions over
    assert {t.id for t in await store.load_api_tokens()} == {"t1", "t2", "s2", "a1"}
    assert await store.delete_api_login("alice")
    assert await store.load_api_tokens() == []
    assert not await store.delete_api_login("alice")


async def test_login_failures_count_by_name_and_source(store: Store) -> None:
    for i in range(3):
        await store.record_login_failure("alice", "10.0.0.1", NOW + i)
    await store.record_login_failure("bob", "10.0.0.1", NOW + 3)
    assert await store.count_login_failures(NOW, login="alice") == 3
    assert await store.count_login_failures(NOW + 2, login="alice") == 1
    assert await store.count_login_failures(NOW, source="10.0.0.1") == 4
    await store.clear_login_failures("alice")
    assert await store.count_login_failures(NOW, login="alice") == 0
    await store.record_login_failure("carol", "10.0.0.2", NOW + 2 * 86400)  # forgets old ones
    assert await store.count_login_failures(0, source="10.0.0.1") == 0


def make_cdr(n: int, **fields: object) -> Cdr:
    values: dict[str, object] = {
        "call_id": f"c{n:03d}",
        "sip_call_id": f"s{n}",
        "tenant": "acme" if n % 5 else "other",
        "direction": "inbound" if n % 2 else "internal",
        "caller_number": "+12125550123" if n % 2 else "100",
        "caller_name": "",
        "dialled": "101" if n % 3 else "+14155550100",
        "destination": "101",
        "trunk": "carrier" if n % 2 else "",
        "start": NOW + (n // 2) * 10,  # pairs share a start time: the key needs the id
        "answer": None,
        "end": NOW + 100 + n,
        "disposition": "BUSY" if n % 4 == 0 else "ANSWERED",
        "sip_code": 200,
        "q850_cause": 16,
        "q850_name": "NORMAL_CLEARING",
    }
    values.update(fields)
    return Cdr(**values)  # type: ignore[arg-type]


async def test_cdr_query_filters_and_keyset_paging(store: Store) -> None:
    cdrs = [make_cdr(n) for n in range(50)]
    await store.save_cdrs(cdrs)
    acme = [c for c in cdrs if c.tenant == "acme"]

    async def ids(query: CdrQuery) -> list[str]:
        return [c.call_id for c in await store.find_cdrs(query, 1000)]

    newest_first = sorted(acme, key=lambda c: (c.start, c.call_id), reverse=True)
    assert await ids(CdrQuery(tenant="acme")) == [c.call_id for c in newest_first]
    assert await store.count_cdrs(CdrQuery(tenant="acme")) == len(acme)
    paged: list[str] = []
    query = CdrQuery(tenant="acme")
    while True:
        page = await store.find_cdrs(query, 7)
        paged += [c.call_id for c in page]
        if len(page) < 7:
            break
        query = CdrQuery(tenant="acme", after=(page[-1].start, page[-1].call_id))
    assert paged == [c.call_id for c in newest_first]

    def expect(pred) -> list[str]:  # type: ignore[no-untyped-def]
        return [c.call_id for c in newest_first if pred(c)]

    assert await ids(CdrQuery(tenant="acme", disposition="BUSY")) == expect(
        lambda c: c.disposition == "BUSY"
    )
    assert await ids(CdrQuery(tenant="acme", caller="2125")) == expect(
        lambda c: "2125" in c.caller_number
    )
    assert await ids(CdrQuery(tenant="acme", dialled="%")) == []  # LIKE wildcards are literal
    assert await ids(CdrQuery(tenant="acme", party="100", direction="internal")) == expect(
        lambda c: c.caller_number == "100" and c.direction == "internal"
    )
    assert await ids(CdrQuery(tenants=(), party=None)) == []
    assert await ids(CdrQuery(parties=("999",))) == []
    window = CdrQuery(tenant="acme", start=NOW + 50, end=NOW + 100)
    assert await ids(window) == expect(lambda c: NOW + 50 <= c.start < NOW + 100)
    assert (await store.load_cdr("c007")) == cdrs[7]
    assert await store.load_cdr("nope") is None
