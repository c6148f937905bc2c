"""The provisioning model in the Store and the service on it, against SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import load_config
from softswitch.directory import Directory
from softswitch.provisioning import (
    Actor,
    InvalidObject,
    NotFound,
    ProvisioningService,
    ReadOnly,
    VersionMismatch,
)
from softswitch.provisioning.fileio import export_toml, import_file, reload_file
from softswitch.provisioning.runtime import ProvisioningRuntime
from softswitch.routing_state import DisasterState
from storage import StorageError, Store, open_store
from storage.provisioning import AuditQuery, ObjectWrite, RevisionMoved, VersionConflict
from tests.unit.provkit import FakeSwitch, site, until

ALICE = Actor("alice", "192.0.2.7")
T0 = 1_760_000_000.0


@pytest.fixture
async def seeded(store: Store, tmp_path: Path, store_url: str) -> ProvisioningService:
    config = load_config(site(tmp_path, store_url))
    service = ProvisioningService(store, clock=lambda: T0)
    assert await service.seed(Actor("seed", "site.toml"), config.tenants)
    return service


# -- the store ----------------------------------------------------------------------------


async def test_store_versions_revision_and_audit(store: Store) -> None:
    assert await store.provisioning_revision() == 0
    write = ObjectWrite("acme", "user", "100", {"extension": "100", "password": "pw-1"}, 0)
    revision, records = await store.write_provisioning([write], actor="a", source="s", at=T0)
    assert revision == 1 and [r.action for r in records] == ["create"]
    (obj,) = await store.load_provisioning("acme", "user")
    assert (obj.key, obj.version, obj.data) == ("100", 1, write.data)
    # The same fields again change nothing and record nothing.
    same = ObjectWrite("acme", "user", "100", dict(write.data or {}))
    assert await store.write_provisioning([same], actor="a", source="s", at=T0) == (1, [])
    changed = ObjectWrite("acme", "user", "100", {"extension": "100", "password": "pw-2"}, 1)
    revision, (record,) = await store.write_provisioning([changed], actor="b", source="t", at=T0)
    assert revision == 2 and record.action == "update"
    # Secrets never reach the audit log; that they changed does.
    assert record.before == {"extension": "100", "password": "***"}
    assert record.after == {"extension": "100", "password": "*** (changed)"}
    with pytest.raises(VersionConflict):
        await store.write_provisioning([changed], actor="b", source="t", at=T0)
    with pytest.raises(RevisionMoved):
        await store.write_provisioning(
            [ObjectWrite("acme", "user", "100", None)], actor="c", source="", at=T0, base_revision=1
        )
    revision, (gone,) = await store.write_provisioning(
        [ObjectWrite("acme", "user", "100", None, 2)], actor="c", source="", at=T0 + 1
    )
    assert revision == 3 and gone.action == "delete" and gone.after is None
    assert await store.load_provisioning() == []
    audit = await store.load_audit(AuditQuery(tenant="acme"))
    assert [(r.action, r.actor) for r in audit] == [
        ("delete", "c"),
        ("update", "b"),
        ("create", "a"),
    ]
    older = await store.load_audit(AuditQuery(before_id=audit[0].id, limit=1))
    assert [r.action for r in older] == ["update"]
    assert await store.load_audit(AuditQuery(since=T0 + 1)) == audit[:1]


async def test_store_refuses_bad_writes_whole(store: Store) -> None:
    good = ObjectWrite("acme", "user", "100", {"extension": "100"})
    for bad in (
        ObjectWrite("", "user", "1", {}),
        ObjectWrite("acme", "user", "1", {"x": float("nan")}),
        ObjectWrite("acme", "user", "1\x00", {}),
    ):
        with pytest.raises(StorageError):
            await store.write_provisioning([good, bad], actor="a", source="", at=T0)
    with pytest.raises(StorageError):
        await store.write_provisioning([good], actor=" ", source="", at=T0)
    assert await store.load_provisioning() == [] and await store.provisioning_revision() == 0


async def test_audit_log_is_append_only(store: Store, store_url: str) -> None:
    write = ObjectWrite("acme", "user", "100", {"extension": "100"})
    await store.write_provisioning([write], actor="a", source="", at=T0)
    from tests.unit.storekit import raw_fetch

    with pytest.raises(Exception, match="append-only"):
        await raw_fetch(store_url, "DELETE FROM audit_log")


# -- the service --------------------------------------------------------------------------


async def test_seed_snapshot_and_round_trip(seeded: ProvisioningService, tmp_path: Path) -> None:
    snapshot = await seeded.snapshot()
    (tenant,) = snapshot.tenants
    assert [u.extension for u in tenant.users] == ["100", "101"]
    assert snapshot.revision == 1 and not snapshot.problems
    # Seeding happens once: the database is the truth afterwards.
    assert not await seeded.seed(ALICE, [])
    exported = tmp_path / "export.toml"
    exported.write_text(await export_toml(seeded))
    assert await import_file(seeded, str(exported), ALICE, dry_run=True) == []
    assert load_config(exported).tenants == list(snapshot.tenants)


async def test_create_user_validated_and_audited(seeded: ProvisioningService) -> None:
    item = await seeded.create(ALICE, "user", "acme", {"extension": 102, "password": "pw-102"})
    assert (item.key, item.version, item.data["extension"]) == ("102", 1, "102")
    assert (await seeded.get("user", "acme", "102")).version == 1
    (record,) = await seeded.audit(AuditQuery(kind="user", key="102"))
    assert (record.actor, record.source, record.action, record.at) == (
        "alice",
        "192.0.2.7",
        "create",
        T0,
    )
    with pytest.raises(VersionMismatch):
        await seeded.create(ALICE, "user", "acme", {"extension": "102", "password": "x"})


async def test_errors_name_object_and_field(seeded: ProvisioningService) -> None:
    with pytest.raises(InvalidObject) as bad_field:
        await seeded.create(ALICE, "user", "acme", {"extension": "10x", "password": "pw"})
    assert [(e.kind, e.field) for e in bad_field.value.errors] == [("user", "extension")]
    # A rule across objects: a DID to an extension nobody has.
    with pytest.raises(InvalidObject) as dangling:
        await seeded.create(
            ALICE, "number", "acme", {"number": "+14155550111", "destination": "555"}
        )
    (error,) = dangling.value.errors
    assert (error.kind, error.key, error.field) == ("number", "+14155550111", "destination")
    assert "555" in error.message
    # Deleting a user a DID still points at is refused, naming the DID.
    with pytest.raises(InvalidObject) as referenced:
        await seeded.delete(ALICE, "user", "acme", "100")
    assert {(e.kind, e.key) for e in referenced.value.errors} == {("number", "+14155550100")}
    # A duplicate username across two users names the second user.
    with pytest.raises(InvalidObject) as duplicate:
        await seeded.create(
            ALICE, "user", "acme", {"extension": "103", "username": "101", "password": "pw"}
        )
    assert [(e.kind, e.key, e.field) for e in duplicate.value.errors] == [
        ("user", "103", "username")
    ]
    assert (await seeded.snapshot()).revision == 1  # nothing was written


async def test_update_with_expected_version(seeded: ProvisioningService) -> None:
    current = await seeded.get("number", "acme", "+14155550100")
    updated = await seeded.update(
        ALICE,
        "number",
        "acme",
        "+14155550100",
        {**current.data, "destination": "101"},
        expected_version=current.version,
    )
    assert updated.version == current.version + 1
    with pytest.raises(VersionMismatch) as stale:
        await seeded.update(
            ALICE, "number", "acme", "+14155550100", current.data, expected_version=current.version
        )
    assert stale.value.current == updated.version
    with pytest.raises(InvalidObject):  # the key is not changed by an update
        await seeded.update(
            ALICE,
            "number",
            "acme",
            "+14155550100",
            {"number": "+14155550199", "destination": "100"},
        )
    with pytest.raises(NotFound):
        await seeded.update(ALICE, "user", "acme", "999", {"extension": "999", "password": "p"})


async def test_list_pages_and_filters(seeded: ProvisioningService) -> None:
    for ext in range(102, 110):
        await seeded.create(ALICE, "user", "acme", {"extension": str(ext), "password": "pw"})
    seen: list[str] = []
    cursor = None
    while True:
        page = await seeded.list_objects("user", "acme", cursor=cursor, limit=3)
        seen += [item.key for item in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [str(e) for e in range(100, 110)]
    page = await seeded.list_objects("user", where={"display_name": "Bob"})
    assert [i.key for i in page.items] == ["101"]


async def test_tenants_create_delete_and_unique_domain(seeded: ProvisioningService) -> None:
    await seeded.create(ALICE, "tenant", "", {"name": "beta", "domain": "beta.test"})
    await seeded.create(ALICE, "user", "beta", {"extension": "100", "password": "pw"})
    with pytest.raises(InvalidObject) as clash:
        await seeded.create(ALICE, "tenant", "", {"name": "gamma", "domain": "ACME.test"})
    assert [(e.kind, e.field) for e in clash.value.errors] == [("tenant", "domain")]
    with pytest.raises(NotFound):
        await seeded.create(ALICE, "user", "nope", {"extension": "100", "password": "pw"})
    await seeded.delete(ALICE, "tenant", "beta", "beta")
    assert [t.name for t in (await seeded.snapshot()).tenants] == ["acme"]


async def test_file_mode_is_read_only_but_reloads(
    store: Store, tmp_path: Path, store_url: str
) -> None:
    path = site(tmp_path, store_url, "file")
    service = ProvisioningService(store, mode="file")
    assert len(await reload_file(service, str(path), Actor("reload"))) > 0
    with pytest.raises(ReadOnly):
        await service.create(ALICE, "user", "acme", {"extension": "102", "password": "pw"})
    # A bad file is refused whole: nothing of it is applied.
    text = path.read_text().replace('display_name = "Bob"', 'display_name = "Robert"')
    path.write_text(text + '\n[[tenants.users]]\nextension = "1x"\npassword = "p"\n')
    from config import ConfigError

    with pytest.raises(ConfigError):
        await reload_file(service, str(path), Actor("reload"))
    assert (await service.get("user", "acme", "101")).data["display_name"] == "Bob"
    path.write_text(text)
    changes = await reload_file(service, str(path), Actor("reload"))
    assert [(c.action, c.kind, c.key) for c in changes] == [("update", "user", "101")]


def test_relative_database_path_is_the_files_neighbour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = site(tmp_path, "sqlite:///db/switch.db")
    monkeypatch.chdir("/")
    config = load_config(path)
    assert config.database.sqlite_path == tmp_path / "db" / "switch.db"


# -- live apply ---------------------------------------------------------------------------


async def test_runtime_applies_changes_from_another_process(store_url: str, tmp_path: Path) -> None:
    path = site(tmp_path, store_url)
    config = load_config(path)
    async with open_store(store_url) as own, open_store(store_url) as other:
        runtime = ProvisioningRuntime(own, config, str(path))
        booted = await runtime.boot()
        switch = FakeSwitch(booted, DisasterState(own), Directory(booted))
        await runtime.start(switch)
        try:
            directory = switch.directory
            assert directory is not None
            assert directory.subscriber("acme.test", "102") is None
            # Another process (the CLI, another node) creates a user.
            cli = ProvisioningService(other)
            await cli.create(ALICE, "user", "acme", {"extension": "102", "password": "pw"})
            await until(lambda: directory.subscriber("acme.test", "102") is not None, "user 102")
            assert switch.config.tenants[0].user_by_extension("102") is not None
            # A change through the runtime's own service applies as well.
            await runtime.service.delete(ALICE, "user", "acme", "102")
            await until(lambda: directory.subscriber("acme.test", "102") is None, "102 gone")
            # A disaster plan's state follows the same loop.
            await other.change_disaster_plan("acme", "Outage", True, "ops", T0)
            await until(lambda: bool(switch.disaster_state.states("acme")), "plan state")
        finally:
            await runtime.stop()


async def test_snapshot_rebuilds_only_the_tenants_a_change_touched(
    seeded: ProvisioningService,
) -> None:
    await seeded.create(ALICE, "tenant", "", {"name": "beta", "domain": "beta.test"})
    before = await seeded.snapshot()
    await seeded.create(ALICE, "user", "beta", {"extension": "100", "password": "pw"})
    after = await seeded.snapshot(before)
    old, new = ({t.name: t for t in s.tenants} for s in (before, after))
    assert new["acme"] is old["acme"]  # untouched: the very same object
    assert new["beta"] is not old["beta"] and new["beta"].user_by_extension("100") is not None
    with pytest.raises(InvalidObject):  # answering rules need the extension they belong to
        await seeded.create(ALICE, "answering", "acme", {"ring_time": 30})
    rules = await seeded.create(ALICE, "answering", "acme", {"ring_time": 30}, key="101")
    assert rules.key == "101"


# -- sites, batches, customers ------------------------------------------------------------


async def test_sites_are_objects_users_name_theirs_and_round_trip(
    seeded: ProvisioningService, tmp_path: Path
) -> None:
    site_doc = {"name": "north", "timezone": "Europe/Berlin", "emergency_caller_id": "+14155550123"}
    await seeded.create(ALICE, "site", "acme", site_doc)
    user = await seeded.get("user", "acme", "101")
    await seeded.update(ALICE, "user", "acme", "101", {**user.data, "site": "north"}, user.version)
    with pytest.raises(InvalidObject) as unknown:
        await seeded.create(
            ALICE, "user", "acme", {"extension": "102", "password": "p", "site": "x"}
        )
    assert [(e.kind, e.key, e.field) for e in unknown.value.errors] == [("user", "102", "site")]
    with pytest.raises(InvalidObject) as in_use:
        await seeded.delete(ALICE, "site", "acme", "north")
    assert in_use.value.errors[0].field == "site"
    (tenant,) = (await seeded.snapshot()).tenants
    assert tenant.sites[0].timezone == "Europe/Berlin"
    assert tenant.user_by_extension("101").site == "north"  # type: ignore[union-attr]
    exported = tmp_path / "export.toml"
    exported.write_text(await export_toml(seeded))
    assert "Europe/Berlin" in exported.read_text()
    assert await import_file(seeded, str(exported), ALICE, dry_run=True) == []
    assert load_config(exported).tenants == [tenant]


async def test_a_batch_is_applied_whole_or_not_at_all(seeded: ProvisioningService) -> None:
    from softswitch.provisioning import ObjectChange

    good = ObjectChange("acme", "user", {"extension": "102", "password": "pw-102"})
    number = ObjectChange(
        "acme", "number", {"number": "+14155550101", "destination": "102"}, expected_version=0
    )
    bad = ObjectChange("acme", "number", {"number": "+14155550102", "destination": "999"})
    revision = await seeded.store.provisioning_revision()
    with pytest.raises(InvalidObject) as refused:
        await seeded.change_many(ALICE, [good, number, bad])
    assert [(e.kind, e.key, e.field) for e in refused.value.errors] == [
        ("number", "+14155550102", "destination")
    ]
    assert await seeded.store.provisioning_revision() == revision
    # a dry run and a what-if see the batch, store nothing
    assert len(await seeded.change_many(ALICE, [good, number], dry_run=True)) == 2
    proposed = await seeded.proposed([good, number])
    assert proposed["acme"].user_by_extension("102") is not None
    assert await seeded.store.provisioning_revision() == revision
    items = await seeded.change_many(ALICE, [good, number])
    assert [(i.kind, i.key, i.version) for i in items] == [
        ("user", "102", 1),
        ("number", "+14155550101", 1),
    ]
    assert len(await seeded.audit(AuditQuery(actor="alice"))) == 2
    with pytest.raises(VersionMismatch):
        await seeded.change_many(ALICE, [number])
    with pytest.raises(NotFound):
        await seeded.change_many(ALICE, [ObjectChange("nobody", "user", good.data)])


async def test_customer_import_reports_rows_and_applies_whole(
    seeded: ProvisioningService,
) -> None:
    from softswitch.provisioning.customers import import_customers

    text = (
        "Account Number,Domain,Concurrent Calls,CPS,SIP Username,SIP Password\n"
        "hooli,hooli.test,10,2.5,main,pw-main\n"
        "pied,acme.test,1,1,,\n"
    )
    report = await import_customers(seeded, ALICE, "c.csv", text.encode())
    assert not report.applied and [r.status for r in report.rows] == ["ok", "error"]
    assert "duplicate domain" in report.rows[1].reason
    assert [t.name for t in (await seeded.snapshot()).tenants] == ["acme"]
    fixed = text.replace("acme.test", "pied.test").encode()
    report = await import_customers(seeded, ALICE, "c.csv", fixed)
    assert report.applied and report.tenants == ("hooli", "pied")
    tenants = {t.name: t for t in (await seeded.snapshot()).tenants}
    assert tenants["hooli"].max_calls_per_second == 2.5
    assert tenants["hooli"].user_by_username("main") is not None
    broken = await import_customers(seeded, ALICE, "c.txt", b"x")
    assert broken.file_error and not broken.applied
