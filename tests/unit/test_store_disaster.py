"""Disaster plan state and history in the Store, against SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from storage import StorageError, Store, open_store
from storage.base import DisasterPlanEvent, DisasterPlanState
from tests.unit.storekit import raw_fetch

T0 = 1_760_000_000.0


async def test_enable_disable_records_state_and_history(store: Store) -> None:
    assert await store.load_disaster_plans() == []
    event = await store.change_disaster_plan("acme", "Outage", True, "alice", T0)
    assert event is not None
    assert (event.tenant, event.plan, event.action, event.changed_by, event.changed_at) == (
        "acme",
        "Outage",
        "execute",
        "alice",
        T0,
    )
    assert await store.load_disaster_plans() == [
        DisasterPlanState("acme", "Outage", True, "alice", T0)
    ]
    revert = await store.change_disaster_plan("acme", "Outage", False, "bob", T0 + 60)
    assert revert is not None and revert.action == "revert" and revert.id > event.id
    assert await store.load_disaster_plans("acme") == [
        DisasterPlanState("acme", "Outage", False, "bob", T0 + 60)
    ]
    history = await store.load_disaster_events("acme", "Outage")
    assert [(e.action, e.changed_by, e.changed_at) for e in history] == [
        ("execute", "alice", T0),
        ("revert", "bob", T0 + 60),
    ]


@pytest.mark.parametrize(
    ("default_enabled", "enabled", "changes"),
    [(False, False, False), (False, True, True), (True, True, False), (True, False, True)],
)
async def test_no_op_changes_record_nothing(
    store: Store, default_enabled: bool, enabled: bool, changes: bool
) -> None:
    event = await store.change_disaster_plan(
        "acme", "P", enabled, "ops", T0, default_enabled=default_enabled
    )
    assert (event is not None) == changes
    assert len(await store.load_disaster_events()) == int(changes)
    assert len(await store.load_disaster_plans()) == int(changes)
    # Once a row exists it decides, whatever the configuration's default says.
    again = await store.change_disaster_plan(
        "acme", "P", enabled, "ops", T0 + 1, default_enabled=not enabled
    )
    assert (again is None) == changes


async def test_plans_are_per_tenant_and_filtered(store: Store) -> None:
    for i, (tenant, plan) in enumerate([("b", "X"), ("a", "Y"), ("a", "X"), ("b", "Y")]):
        await store.change_disaster_plan(tenant, plan, True, f"op{i}", T0 + i)
    assert [(s.tenant, s.plan) for s in await store.load_disaster_plans()] == [
        ("a", "X"),
        ("a", "Y"),
        ("b", "X"),
        ("b", "Y"),
    ]
    assert [s.plan for s in await store.load_disaster_plans("b")] == ["X", "Y"]
    assert await store.load_disaster_plans("nobody") == []
    assert [e.changed_by for e in await store.load_disaster_events(plan="X")] == ["op0", "op2"]
    assert [e.changed_by for e in await store.load_disaster_events("a", "X")] == ["op2"]


async def test_events_limit_keeps_latest_oldest_first(store: Store) -> None:
    for i in range(7):
        await store.change_disaster_plan("acme", "P", i % 2 == 0, f"op{i}", T0 + i)
    latest = await store.load_disaster_events(limit=3)
    assert [e.changed_by for e in latest] == ["op4", "op5", "op6"]
    assert [e.action for e in latest] == ["execute", "revert", "execute"]


async def test_racing_changes_record_one_event(store: Store) -> None:
    results = await asyncio.gather(
        *(store.change_disaster_plan("acme", "P", True, f"op{i}", T0 + i) for i in range(6))
    )
    assert sum(r is not None for r in results) == 1
    assert len(await store.load_disaster_events()) == 1


async def test_text_survives_round_trip(store: Store) -> None:
    await store.change_disaster_plan("acme", "Ausfall Zürich ☎", True, "Zoë O'Brien", T0)
    [state] = await store.load_disaster_plans()
    assert (state.plan, state.changed_by) == ("Ausfall Zürich ☎", "Zoë O'Brien")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "P", True, "ops", T0), "tenant must not be empty"),
        (("acme", " ", True, "ops", T0), "plan must not be empty"),
        (("acme", "P", True, "", T0), "changed_by must not be empty"),
        (("acme", "P", 1, "ops", T0), "enabled must be a bool"),
        (("acme", "P", True, "ops", float("inf")), "finite"),
        (("acme", "P", True, "ops", "now"), "epoch seconds"),
        ((None, "P", True, "ops", T0), "tenant must be a string"),
    ],
)
async def test_bad_arguments_raise_storage_error(
    store: Store, args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(StorageError, match=message):
        await store.change_disaster_plan(*args)
    assert await store.load_disaster_events() == []


@pytest.mark.parametrize("limit", [0, -1, 100_001, True, 2.5])
async def test_bad_limit(store: Store, limit: Any) -> None:
    with pytest.raises(StorageError, match="limit"):
        await store.load_disaster_events(limit=limit)


async def test_history_is_append_only(store: Store, store_url: str) -> None:
    await store.change_disaster_plan("acme", "P", True, "ops", T0)
    for sql in (
        "UPDATE disaster_plan_events SET changed_by = 'x'",
        "DELETE FROM disaster_plan_events",
    ):
        with pytest.raises(Exception, match="append-only"):
            await raw_fetch(store_url, sql)
    assert [e.changed_by for e in await store.load_disaster_events()] == ["ops"]


async def test_state_survives_reopen(store_url: str) -> None:
    async with open_store(store_url) as first:
        await first.change_disaster_plan("acme", "P", True, "ops", T0)
    async with open_store(store_url) as second:
        assert [s.enabled for s in await second.load_disaster_plans()] == [True]
        events = await second.load_disaster_events()
        assert events == [DisasterPlanEvent(events[0].id, "acme", "P", "execute", "ops", T0)]
