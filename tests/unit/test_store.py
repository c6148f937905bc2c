"""Store contract tests, run against SQLite (temp file) and PostgreSQL (fresh schema)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import socket
from pathlib import Path
from typing import Any

import pytest

from storage import Binding, StorageError, Store, open_store
from storage.base import BINDING_COLUMNS
from storage.cdr_search import SEARCH_TABLE
from storage.migrations import BACKENDS, Migration, load_migrations, split_sqlite_script
from storage.sqlite import SqliteStore
from tests.unit.storekit import raw_fetch

AOR = "sip:100@pbx.example.test"
NOW = 1_700_000_000.0


def make_binding(n: int = 0, aor: str = AOR, **changes: Any) -> Binding:
    binding = Binding(
        aor=aor,
        contact=f"sip:100@198.51.100.{n % 250}:{10000 + n};transport=tcp",
        expires_at=NOW + 3600,
        q=0.7,
        call_id=f"call-{n}@phone.example.test",
        cseq=n + 1,
        instance_id=f'"<urn:uuid:00000000-0000-0000-0000-{n:012d}>"',
        reg_id=1,
        path=["<sip:edge1.example.test;lr>", "<sip:edge2.example.test;lr>"],
        received=f"tcp:203.0.113.5:{20000 + n}",
        transport="tcp",
        user_agent="Phone/1.0 ünïcode",
        registered_at=NOW,
        reachable=True,
    )
    return dataclasses.replace(binding, **changes)


# --- migrations -------------------------------------------------------------------


async def test_open_applies_every_migration_once(store_url: str) -> None:
    latest = max(m.version for m in load_migrations("sqlite"))
    for _ in range(3):  # the second and third opens find nothing to do
        async with open_store(store_url) as store:
            assert await store.schema_version() == latest
    rows = await raw_fetch(store_url, "SELECT version, name FROM schema_migrations ORDER BY 1")
    assert rows == [(m.version, m.name) for m in load_migrations("sqlite")]


async def test_a_lower_version_arriving_after_a_higher_one_is_still_applied(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Branches take migration numbers in parallel: one merged later may bring a version
    # lower than one a database already has. It is applied all the same.
    async with open_store(store_url) as store:
        latest = await store.schema_version()
    applied = load_migrations("sqlite")
    high = Migration(latest + 2, "high", "CREATE TABLE high_arrival (x INTEGER);")
    late = Migration(latest + 1, "late_arrival", "CREATE TABLE late_arrival (x INTEGER);")

    def patch(*extra: Migration) -> None:
        found = tuple(sorted((*applied, *extra), key=lambda m: m.version))
        for backend in ("storage.sqlite", "storage.postgres"):
            monkeypatch.setattr(f"{backend}.load_migrations", lambda _backend: found)

    patch(high)
    async with open_store(store_url) as store:
        assert await store.schema_version() == latest + 2
    patch(high, late)
    async with open_store(store_url) as store:
        assert await store.schema_version() == latest + 2
    rows = await raw_fetch(store_url, "SELECT version FROM schema_migrations ORDER BY 1")
    assert (latest + 1,) in rows
    assert await raw_fetch(store_url, "SELECT count(*) FROM late_arrival") == [(0,)]


async def test_open_twice_and_close_twice_are_harmless(store_url: str) -> None:
    store = open_store(store_url)
    await store.open()
    await store.open()
    await store.save_bindings([make_binding()])
    await store.close()
    await store.close()


async def test_unopened_store_raises(store_url: str) -> None:
    store = open_store(store_url)
    with pytest.raises(StorageError, match="not open"):
        await store.load_bindings()


def test_migrations_match_across_backends() -> None:
    per_backend = {b: [(m.version, m.name) for m in load_migrations(b)] for b in BACKENDS}
    assert per_backend["sqlite"] == per_backend["postgresql"]
    versions = [v for v, _ in per_backend["sqlite"]]
    # ascending from 1; gaps allowed (branches reserve their numbers)
    assert versions == sorted(set(versions)) and versions[0] == 1
    with pytest.raises(StorageError):
        load_migrations("oracle")


async def test_both_backends_have_the_same_tables_and_columns(
    tmp_path: Path, pg_schema_dsn: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path}/schema.db"
    for url in (sqlite_url, pg_schema_dsn):
        async with open_store(url):
            pass
    # SQLite's trigram search index is FTS5 tables (PostgreSQL's is a GIN index): no table
    # of the shared schema.
    sqlite_tables = {
        name: [row[1] for row in await raw_fetch(sqlite_url, f"PRAGMA table_info({name})")]
        for (name,) in await raw_fetch(
            sqlite_url, "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
        if not name.startswith(SEARCH_TABLE)
    }
    pg_rows = await raw_fetch(
        pg_schema_dsn,
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
    )
    pg_tables: dict[str, list[str]] = {}
    for table, column in pg_rows:
        # The CDRs' write order for the dashboards' rollup (storage.cdr_rollup): SQLite's
        # is the table's own rowid, PostgreSQL's the writing transaction's id.
        if (table, column) != ("cdrs", "written"):
            pg_tables.setdefault(table, []).append(column)
    assert sqlite_tables == pg_tables
    assert tuple(sqlite_tables["registrations"]) == BINDING_COLUMNS


@pytest.mark.parametrize(
    ("script", "statements"),
    [
        ("", []),
        ("-- only a comment\n", []),
        ("CREATE TABLE a (x);", ["CREATE TABLE a (x);"]),
        (
            "CREATE TABLE a (x);\nCREATE TABLE b (y);",
            ["CREATE TABLE a (x);", "CREATE TABLE b (y);"],
        ),
        ("INSERT INTO a VALUES ('x;y'); -- c;\n", ["INSERT INTO a VALUES ('x;y');"]),
        (
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END;",
            ["CREATE TRIGGER t AFTER INSERT ON a BEGIN DELETE FROM b; DELETE FROM c; END;"],
        ),
    ],
)
def test_split_sqlite_script(script: str, statements: list[str]) -> None:
    assert split_sqlite_script(script) == statements


def test_split_sqlite_script_rejects_unterminated_statement() -> None:
    with pytest.raises(StorageError, match="unterminated"):
        split_sqlite_script("CREATE TABLE a (x);\nCREATE TABLE b (y)")


# --- bindings ---------------------------------------------------------------------


async def test_save_and_load_round_trip(store: Store) -> None:
    full = make_binding(1)
    sparse = make_binding(
        2,
        q=None,
        instance_id=None,
        reg_id=None,
        path=[],
        received=None,
        user_agent=None,
        reachable=None,
    )
    unreachable = make_binding(3, reachable=False, q=1.0, cseq=2**31 - 1)
    await store.save_bindings([full, sparse, unreachable])
    loaded = await store.load_bindings()
    assert sorted(loaded, key=lambda b: b.contact) == sorted(
        [full, sparse, unreachable], key=lambda b: b.contact
    )


async def test_save_replaces_binding_with_same_aor_and_contact(store: Store) -> None:
    await store.save_bindings([make_binding(1), make_binding(2)])
    refreshed = make_binding(1, cseq=99, expires_at=NOW + 7200, path=[], reachable=None)
    await store.save_bindings([refreshed])
    loaded = {b.key: b for b in await store.load_bindings()}
    assert len(loaded) == 2
    assert loaded[refreshed.key] == refreshed
    assert loaded[make_binding(2).key] == make_binding(2)


async def test_last_update_of_a_contact_in_one_batch_wins(store: Store) -> None:
    batch = [make_binding(1, cseq=c) for c in (5, 6, 7)]
    await store.save_bindings(batch)
    assert await store.load_bindings() == [batch[-1]]


async def test_same_contact_under_two_aors_is_two_bindings(store: Store) -> None:
    one = make_binding(1)
    other = make_binding(1, aor="sip:200@pbx.example.test")
    await store.save_bindings([one, other])
    assert len(await store.load_bindings()) == 2


async def test_empty_batches_are_no_ops(store: Store) -> None:
    await store.save_bindings([])
    assert await store.delete_bindings([]) == 0
    assert await store.load_bindings() == []


async def test_delete_bindings(store: Store) -> None:
    await store.save_bindings([make_binding(n) for n in range(4)])
    removed = await store.delete_bindings(
        [make_binding(0).key, make_binding(2).key, (AOR, "sip:nobody@192.0.2.1")]
    )
    assert removed == 2
    assert [b.cseq for b in await store.load_bindings()] == [2, 4]


async def test_delete_aor(store: Store) -> None:
    other = make_binding(9, aor="sip:200@pbx.example.test")
    await store.save_bindings([make_binding(1), make_binding(2), other])
    assert await store.delete_aor(AOR) == 2
    assert await store.delete_aor(AOR) == 0
    assert await store.load_bindings() == [other]


async def test_load_with_now_returns_only_unexpired(store: Store) -> None:
    expired = make_binding(1, expires_at=NOW - 1)
    expiring_now = make_binding(2, expires_at=NOW)
    live = make_binding(3, expires_at=NOW + 1)
    await store.save_bindings([expired, expiring_now, live])
    assert await store.load_bindings(now=NOW) == [live]
    assert len(await store.load_bindings()) == 3


async def test_purge_expired(store: Store) -> None:
    bindings = [make_binding(n, expires_at=NOW + n - 5) for n in range(10)]
    await store.save_bindings(bindings)
    assert await store.purge_expired(NOW) == 6  # expires_at <= NOW: n = 0..5
    assert await store.purge_expired(NOW) == 0
    assert [b.cseq - 1 for b in await store.load_bindings()] == [6, 7, 8, 9]


async def test_batch_of_1000_bindings(store: Store) -> None:
    batch = [make_binding(n, aor=f"sip:{n % 100}@pbx.example.test") for n in range(1000)]
    await store.save_bindings(batch)
    loaded = await store.load_bindings()
    assert len(loaded) == 1000
    assert {b.key: b for b in loaded} == {b.key: b for b in batch}
    # Refresh all of them in one batch, as write-behind does after a re-REGISTER storm.
    refreshed = [dataclasses.replace(b, cseq=b.cseq + 1, expires_at=NOW + 60) for b in batch]
    await store.save_bindings(refreshed)
    assert {b.key: b for b in await store.load_bindings()} == {b.key: b for b in refreshed}
    assert await store.delete_bindings([b.key for b in batch[:500]]) == 500
    assert await store.purge_expired(NOW + 60) == 500


async def test_concurrent_batches_all_land(store: Store) -> None:
    batches = [
        [make_binding(n, aor=f"sip:{k}@pbx.example.test") for n in range(50)] for k in range(8)
    ]
    await asyncio.gather(*(store.save_bindings(batch) for batch in batches))
    assert len(await store.load_bindings()) == 400


async def test_durable_across_close_and_reopen(store_url: str) -> None:
    bindings = [make_binding(n) for n in range(5)]
    async with open_store(store_url) as store:
        await store.save_bindings(bindings)
        await store.set_setting("auth_secret", "s3cret")
    async with open_store(store_url) as store:
        assert await store.load_bindings() == bindings
        assert await store.get_setting("auth_secret") == "s3cret"


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"aor": 100}, "aor"),
        ({"contact": None}, "contact"),
        ({"expires_at": math.nan}, "expires_at"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"q": math.inf}, "q"),
        ({"cseq": "1"}, "cseq"),
        ({"cseq": 2**70}, "cseq"),
        ({"reg_id": 1.5}, "reg_id"),
        ({"path": "sip:edge"}, "path"),
        ({"path": [1]}, "path"),
        ({"call_id": 7}, "call_id"),
        ({"reachable": "yes"}, "reachable"),
        ({"registered_at": True}, "registered_at"),
    ],
)
async def test_bad_binding_is_rejected_and_nothing_of_the_batch_is_saved(
    store: Store, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(StorageError, match=field):
        await store.save_bindings([make_binding(1), make_binding(2, **changes)])
    assert await store.load_bindings() == []


async def test_untrusted_text_is_stored_with_replacement_characters(store: Store) -> None:
    # SIP text is decoded with surrogateescape; NUL and stray bytes must not fail a batch.
    odd = b"sip:100@198.51.100.1;x=\xff".decode("utf-8", "surrogateescape")
    binding = make_binding(
        1,
        contact=odd,
        user_agent="Phone\x00/1 \ud800",
        path=[b"<sip:\xfe;lr>".decode("utf-8", "surrogateescape")],
    )
    await store.save_bindings([binding])
    (loaded,) = await store.load_bindings()
    assert loaded.contact == "sip:100@198.51.100.1;x=\ufffd"
    assert loaded.user_agent == "Phone\ufffd/1 \ufffd"
    assert loaded.path == ["<sip:\ufffd;lr>"]
    # The original key still finds it: keys are normalised the same way.
    assert await store.delete_bindings([binding.key]) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.delete_bindings([("only-aor",)]),
        lambda s: s.delete_bindings([(AOR, 5)]),
        lambda s: s.delete_aor(None),
        lambda s: s.load_bindings(now="now"),
        lambda s: s.purge_expired(math.nan),
        lambda s: s.get_setting(1),
        lambda s: s.set_setting("k", None),
        lambda s: s.save_bindings(["not a binding"]),
    ],
)
async def test_bad_arguments_raise_storage_error(store: Store, call: Any) -> None:
    with pytest.raises(StorageError):
        await call(store)


# --- settings ------------------------------------------------------------------------


async def test_settings(store: Store) -> None:
    assert await store.get_setting("auth_secret") is None
    await store.set_setting("auth_secret", "first")
    await store.set_setting("realm", "pbx.example.test")
    await store.set_setting("auth_secret", "second ✓")
    assert await store.get_setting("auth_secret") == "second ✓"
    assert await store.get_setting("realm") == "pbx.example.test"
    await store.set_setting("empty", "")
    assert await store.get_setting("empty") == ""


# --- backend specifics ----------------------------------------------------------------


async def test_sqlite_uses_wal_and_synchronous_normal(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/a/b/c.db")
    assert isinstance(store, SqliteStore)
    async with store:
        assert (tmp_path / "a" / "b" / "c.db").is_file()
        db = store._conn()
        async with db.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone()) == ("wal",)
        async with db.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone()) == (1,)  # NORMAL


async def test_sqlite_in_memory() -> None:
    async with open_store("sqlite://:memory:") as store:
        await store.save_bindings([make_binding()])
        assert await store.load_bindings() == [make_binding()]


async def test_sqlite_unwritable_location_raises_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open"):
        await open_store(f"sqlite:///{blocker}/sub/x.db").open()


async def test_sqlite_corrupt_file_raises_storage_error(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        await open_store(f"sqlite:///{tmp_path}/bad.db").open()


async def test_postgres_unreachable_raises_storage_error_without_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = open_store(f"postgresql://alice:hunter2@127.0.0.1:{port}/db")
    with pytest.raises(StorageError) as caught:
        await store.open()
    assert "hunter2" not in str(caught.value)
    assert "alice:***@" in str(caught.value)


# --- URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///data/softswitch.db", "data/softswitch.db"),
        ("sqlite:////var/lib/softswitch/db.sqlite", "/var/lib/softswitch/db.sqlite"),
        ("sqlite://:memory:", ":memory:"),
        ("SQLite:///x.db", "x.db"),
    ],
)
def test_sqlite_urls(url: str, path: str) -> None:
    store = open_store(url)
    assert isinstance(store, SqliteStore)
    assert store.path == path


@pytest.mark.parametrize(
    "url", ["postgresql://u@db.example.test/softswitch", "postgres://u:p@127.0.0.1:5432/s"]
)
def test_postgres_urls(url: str) -> None:
    assert open_store(url).backend == "postgresql"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "empty"),
        ("data/softswitch.db", "no scheme"),
        ("mysql://u:topsecret@h/db", "unsupported scheme 'mysql'"),
        ("sqlite://host/x.db", "host part"),
        ("sqlite:///", "no database file"),
        ("sqlite:////", "no database file"),
        ("sqlite:///dir/", "no database file"),
    ],
)
def test_bad_urls_raise_value_error(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        open_store(url)
    assert "topsecret" not in str(caught.value)
