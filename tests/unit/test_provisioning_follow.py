"""A running switch following another process's provisioning writes (the admin API's) reads
only the objects a change touched (`Store.load_provisioning_changes`) and rebuilds only what
they touch: its model, directory and routing are what a full load and a fresh build give."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from config import load_config
from config.models import SwitchConfig, Tenant
from routing.engine import CompiledRouting, compile_routing, plan_call
from routing.facts import CallFacts
from softswitch.directory import Directory
from softswitch.provisioning import Actor, ProvisioningService
from softswitch.provisioning.runtime import ProvisioningRuntime, with_tenants
from softswitch.routing_state import DisasterState
from storage import Store, open_store
from storage.provisioning import delta_from_rows
from tests.unit.provkit import FakeSwitch, rich_tenant, site, until

WHO = Actor("api", "unit")
AT = dt.datetime(2026, 7, 6, 10, tzinfo=dt.UTC)


async def test_the_store_names_the_objects_changed_after_a_revision(store: Store) -> None:
    service = ProvisioningService(store)
    assert await service.seed(WHO, [rich_tenant()])
    since = await store.provisioning_revision()
    assert await store.load_provisioning_changes(since) is None  # nothing after it
    await service.update(WHO, "user", "acme", "105", {"extension": "105", "password": "x"})
    await service.create(WHO, "user", "acme", {"extension": "150", "password": "pw-150"})
    await service.delete(WHO, "user", "acme", "111")
    await service.update(WHO, "user", "acme", "105", {"extension": "105", "password": "y"})
    delta = await store.load_provisioning_changes(since)
    assert delta is not None and delta.revision == since + 4
    assert sorted(delta.objects) == [("acme", "user", k) for k in ("105", "111", "150")]
    assert delta.objects[("acme", "user", "111")] is None  # deleted
    changed = delta.objects[("acme", "user", "105")]
    assert changed is not None and changed.data["password"] == "y" and changed.version == 3
    # An audit log that does not account for every revision proves nothing.
    rows: list[Any] = [(since + 2, "acme", "user", "150", 1, "{}", 0.0, since + 2)]
    assert delta_from_rows(since, rows) is None


async def _counting(store: Store) -> list[int]:
    """Count the store's whole-model loads (the path a one-object change must not take)."""
    loads: list[int] = []
    load = store.load_provisioning

    async def counted(tenant: str | None = None, kind: str | None = None) -> Any:
        if tenant is None and kind is None:
            loads.append(1)
        return await load(tenant, kind)

    store.load_provisioning = counted  # type: ignore[method-assign]
    return loads


async def test_a_followed_change_gives_the_model_a_full_load_gives(store_url: str) -> None:
    async with open_store(store_url) as ours, open_store(store_url) as theirs:
        api, switch = ProvisioningService(theirs), ProvisioningService(ours)
        other = Tenant.model_validate({"name": "beta", "domain": "beta.test"})
        assert await api.seed(WHO, [rich_tenant(40), other])
        snapshot = await switch.snapshot()
        loads = await _counting(ours)
        changes = [
            api.update(WHO, "user", "acme", "105", {"extension": "105", "password": "new"}),
            api.create(WHO, "user", "acme", {"extension": "150", "password": "pw-150"}),
            api.delete(WHO, "user", "acme", "2039"),
            api.update(
                WHO,
                "number",
                "acme",
                "+14155550100",
                {"number": "+14155550100", "destination": "150"},
            ),
            api.create(WHO, "answering", "acme", {"ring_time": 40}, key="150"),
            api.update(WHO, "user", "acme", "105", {"extension": "105", "password": "new"}),
            api.create(WHO, "user", "beta", {"extension": "100", "password": "pw"}),
        ]
        for change in changes:
            await change
            before = {t.name: t for t in snapshot.tenants}
            snapshot = await switch.snapshot(snapshot)
            fresh = await ProvisioningService(theirs).snapshot()
            assert snapshot.revision == fresh.revision
            assert snapshot.tenants == fresh.tenants
            assert snapshot.documents == fresh.documents
            after = {t.name: t for t in snapshot.tenants}
            touched = {n for n in after if after[n] != before.get(n)}
            assert all(after[n] is before[n] for n in after.keys() - touched)
        assert loads == []  # every change read from the audit log, none by a full load


def _users(directory: Directory, tenant: Tenant) -> dict[str, tuple[str, Any, str]]:
    found: dict[str, tuple[str, Any, str]] = {}
    for user in tenant.users:
        for name in (user.username, user.extension):
            subscriber = directory.subscriber(tenant.domain, name)
            assert subscriber is not None
            found[name] = (subscriber.tenant.name, subscriber.user, subscriber.aor)
            assert subscriber.tenant is tenant  # the tenant in force, not the one before
    return found


def _routes(config: SwitchConfig, dialled: str) -> set[tuple[str, str]]:
    routing = config.tenants[0].routing
    registered = {u.extension: 1 for u in config.tenants[0].users}
    facts = CallFacts("+15550000", dialled, AT, "acme", registered, from_trunk=True)
    return {(t.kind.value, t.ref) for t in plan_call(routing, facts).targets()}


async def test_the_switch_applies_one_change_as_a_full_apply_would(
    store_url: str, tmp_path: Path
) -> None:
    path = site(tmp_path, store_url)
    config = load_config(path)
    async with open_store(store_url) as own, open_store(store_url) as other:
        runtime = ProvisioningRuntime(own, config, str(path))
        booted = await runtime.boot()
        switch = FakeSwitch(booted, DisasterState(own), Directory(booted))
        directory = switch.directory
        assert directory is not None
        await runtime.start(switch)
        api = ProvisioningService(other)

        async def applied() -> SwitchConfig:
            await until(lambda: runtime.revision == api_revision[0], "the change applied")
            full = with_tenants(
                switch.config, (await ProvisioningService(other).snapshot()).tenants
            )
            assert switch.config.tenants == full.tenants
            (tenant,) = switch.config.tenants
            assert _users(directory, tenant) == _users(Directory(full), full.tenants[0])
            return full

        api_revision = [0]
        try:
            _routes(switch.config, "+14155550100")  # compiled before the changes
            await api.create(WHO, "user", "acme", {"extension": "102", "password": "pw"})
            api_revision[0] = await other.provisioning_revision()
            await applied()
            assert directory.subscriber("acme.test", "102") is not None
            # A number moved to another number (renamed): the new one routes, the old not.
            await api.delete(WHO, "number", "acme", "+14155550100")
            await api.create(
                WHO, "number", "acme", {"number": "+14155550111", "destination": "102"}
            )
            api_revision[0] = await other.provisioning_revision()
            full = await applied()
            routes = _routes(switch.config, "+14155550111")
            assert ("user_devices", "102") in routes and {r for _, r in routes} == {"102"}
            assert _routes(switch.config, "+14155550111") == _routes(full, "+14155550111")
            assert ("user_devices", "100") not in _routes(switch.config, "+14155550100")
            # A deleted user stops registering: the directory no longer knows it.
            assert directory.ha1("acme.test", "101", "acme.test", "MD5") is not None
            await api.delete(WHO, "user", "acme", "101")
            api_revision[0] = await other.provisioning_revision()
            await applied()
            assert directory.subscriber("acme.test", "101") is None
            assert directory.ha1("acme.test", "101", "acme.test", "MD5") is None
            assert directory.subscriber("acme.test", "102") is not None
        finally:
            await runtime.stop()


def test_a_recompiled_routing_reuses_only_the_users_whose_rules_are_the_same() -> None:
    routing = rich_tenant(20).routing
    first = compile_routing(routing)
    # A number re-pointed: the users' rules are the same models.
    moved = routing.model_copy(update={"dids": routing.dids[1:]})
    second = compile_routing(moved)
    assert all(second.users[e] is first.users[e] for e in routing.users)
    # One user's rules changed: only that user compiles again.
    users = dict(routing.users)
    users["2005"] = routing.users["102"]  # another user's rules (forwards to 103)
    third = compile_routing(routing.model_copy(update={"users": users}))
    assert third.users["2005"] is not first.users["2005"]
    assert all(third.users[e] is first.users[e] for e in routing.users if e != "2005")
    # Other time frames: nothing is reused.
    frames = compile_routing(routing.model_copy(update={"time_frames": routing.time_frames[:1]}))
    assert frames.users.keys() == first.users.keys()
    assert not {id(u) for u in frames.users.values()} & {id(u) for u in first.users.values()}
    # Whatever was reused, a call is planned as a fresh compilation plans it.
    for config in (moved, third.config):
        for dialled in ("102", "2005", "+14155550101", "600"):
            facts = CallFacts("100", dialled, AT, "acme", {"103": 1, "2005": 1})
            fresh = plan_call(CompiledRouting(config), facts)
            assert plan_call(config, facts).describe() == fresh.describe()
