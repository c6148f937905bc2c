"""Routing under [[tenants]]: loading, path-named errors, the example, and the run-time
disaster state merged from the store."""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError, config_from_dict, example_config_path, load_config
from config.numbers import DisasterStatus
from routing.disaster import DisasterError
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.plan import Ring, TargetKind
from softswitch.routing_state import (
    DisasterState,
    apply_disaster_states,
    current_routing,
    set_disaster_plan,
)
from storage import open_store
from storage.base import DisasterPlanEvent, DisasterPlanState
from storage.sqlite import SqliteStore

T0 = 1_760_000_000.0
MONDAY_10 = dt.datetime(2026, 7, 6, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
JULY_4 = dt.datetime(2026, 7, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4)))

OUTAGE = {
    "name": "Outage",
    "numbers": [{"number": "+14155550100", "forward_to": "+12125550199"}],
}
OTHER = {
    "name": "Other",
    "numbers": [
        {"number": "+14155550100", "forward_to": "+16465550123"},
        {"number": "+14155550101", "forward_to": "+16465550124"},
    ],
}


def base() -> dict[str, Any]:
    return {
        "tenants": [
            {
                "name": "acme",
                "domain": "acme.example.test",
                "users": [
                    {"extension": "100", "password": "pw-100"},
                    {"extension": 101, "password": "pw-101"},
                ],
                "routing": {
                    "time_frames": [
                        {
                            "name": "Hours",
                            "timezone": "America/New_York",
                            "when": {
                                "kind": "days_of_week",
                                "days": {"mon": [{"start": "09:00", "end": "17:00"}]},
                            },
                        },
                    ],
                    "users": {
                        "100": {
                            "rules": [{"time_frame": "Hours"}],
                            "default_rule": {
                                "forward": {"always": {"kind": "user", "target": "101"}}
                            },
                        }
                    },
                    "dids": [
                        {"number": "+14155550100", "destination": "100"},
                        {"number": "+14155550101", "destination": "101"},
                    ],
                    "disaster_plans": [OUTAGE],
                },
            }
        ]
    }


def routing_of(data: dict[str, Any]) -> Any:
    return config_from_dict(data).tenants[0].routing


def _at(*path: str | int, value: Any) -> Any:
    def apply(d: dict[str, Any]) -> None:
        node: Any = d["tenants"][0]["routing"]
        for key in path[:-1]:
            node = node[key]
        key = path[-1]
        if isinstance(node, list) and key == len(node):
            node.append(value)
        else:
            node[key] = value

    return apply


def _rule(i: int, **fields: Any) -> Any:
    def apply(d: dict[str, Any]) -> None:
        rules = d["tenants"][0]["routing"]["users"]["100"]["rules"]
        while len(rules) <= i:
            rules.append({"time_frame": "Hours"})
        rules[i].update(fields)

    return apply


# -- loading -----------------------------------------------------------------------------------


def test_routing_defaults_to_empty_and_every_user_gets_default_rules() -> None:
    data = base()
    del data["tenants"][0]["routing"]
    routing = routing_of(data)
    assert list(routing.users) == ["100", "101"]
    assert routing.dids == () and routing.disaster_plans == () and routing.time_frames == ()
    assert routing.users["101"].rules == ()


def test_configured_rules_are_kept_and_other_users_filled_in() -> None:
    routing = routing_of(base())
    assert set(routing.users) == {"100", "101"}
    assert routing.users["100"].rules[0].time_frame == "Hours"
    assert routing.users["101"].rules == ()


def test_inbound_routing_user_need_not_be_a_sip_user() -> None:
    data = base()
    data["tenants"][0]["routing"]["users"]["700"] = {"inbound_routing": True, "voicemail": False}
    data["tenants"][0]["routing"]["dids"].append({"number": "+14155550102", "destination": "700"})
    assert "700" in routing_of(data).users


def test_plan_call_on_a_loaded_tenant() -> None:
    routing = routing_of(base())
    inside = plan_call(
        routing,
        CallFacts(
            "+12125550100", "+14155550100", MONDAY_10, registered={"100": 1}, from_trunk=True
        ),
    )
    assert isinstance(inside.root, Ring)
    assert [t.ref for t in inside.root.targets] == ["100"]
    after = plan_call(
        routing,
        CallFacts(
            "+12125550100",
            "+14155550100",
            MONDAY_10 + dt.timedelta(hours=9),
            registered={"101": 1},
            from_trunk=True,
        ),
    )
    assert isinstance(after.root, Ring)
    assert [t.ref for t in after.root.targets] == ["101"]


@pytest.mark.parametrize(
    ("mutate", "location", "message"),
    [
        (
            _rule(2, time_frame="Lunch"),
            "tenants[0].routing.users.100.rules[2].time_frame",
            "unknown time frame 'Lunch'",
        ),
        (
            _rule(0, forward={"when_busy": {"kind": "user", "target": "107"}}),
            "tenants[0].routing.users.100.rules[0].forward.when_busy.target",
            "unknown user destination '107'",
        ),
        (
            _rule(0, forward={"always": {"kind": "queue", "target": "500"}}),
            "tenants[0].routing.users.100.rules[0].forward.always.target",
            "unknown queue destination '500'",
        ),
        (
            _rule(1, simring={"extra": [{"kind": "extension", "target": "109"}]}),
            "tenants[0].routing.users.100.rules[1].simring.extra[0].target",
            "unknown extension '109'",
        ),
        (
            _rule(0, forward={"always": {"kind": "offnet", "target": "12345"}}),
            "tenants[0].routing.users.100.rules[0].forward.always",
            "country code",
        ),
        (
            _at("users", "100", "default_rule", value={"time_frame": "Hours"}),
            "tenants[0].routing.users.100",
            "takes no time frame",
        ),
        (
            _at("users", "100", "ring_time", value=17),
            "tenants[0].routing.users.100.ring_time",
            "ring time 17s not allowed",
        ),
        (
            _at("users", "105", value={}),
            "tenants[0].routing.users.105",
            "not a user of this tenant",
        ),
        (
            _at("dids", 1, "destination", value="999"),
            "tenants[0].routing.dids[1].destination",
            "unknown user destination '999'",
        ),
        (
            _at("dids", 1, "number", value="+14155550100"),
            "tenants[0].routing.dids[1].number",
            "listed twice (first at dids[0])",
        ),
        (
            _at("dids", 0, "number", value="4155550100"),
            "tenants[0].routing.dids[0].number",
            "country code",
        ),
        (
            _at("time_frames", 0, "timezone", value="Mars/Base"),
            "tenants[0].routing.time_frames[0].timezone",
            "unknown timezone",
        ),
        (
            _at("time_frames", 1, value={"name": "Hours", "when": {"kind": "always"}}),
            "tenants[0].routing.time_frames[1].name",
            "defined twice",
        ),
        (
            _at(
                "time_frames", 1, value={"name": "Mine", "owner": "109", "when": {"kind": "always"}}
            ),
            "tenants[0].routing.time_frames[1].owner",
            "not a user",
        ),
        (
            _at("disaster_plans", 1, value=OUTAGE),
            "tenants[0].routing.disaster_plans[1].name",
            "defined twice",
        ),
        (
            _at(
                "disaster_plans",
                value=[{**OUTAGE, "status": "enabled"}, {**OTHER, "status": "enabled"}],
            ),
            "tenants[0].routing.disaster_plans[1].numbers[0].number",
            "is in enabled disaster plans",
        ),
        (
            _at("disaster_plans", 0, "numbers", 0, "forward_to", value="+14155550100"),
            "tenants[0].routing.disaster_plans[0].numbers[0]",
            "forwards to itself",
        ),
        (_at("colour", value="red"), "tenants[0].routing.colour", "unknown key"),
    ],
)
def test_errors_name_the_path(mutate: Any, location: str, message: str) -> None:
    data = copy.deepcopy(base())
    mutate(data)
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert any(loc == location and message in msg for loc, msg in info.value.errors), (
        info.value.errors
    )


def test_several_errors_are_reported_at_once() -> None:
    data = base()
    _rule(0, time_frame="Lunch")(data)
    _at("dids", 1, "destination", value="999")(data)
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert [loc for loc, _ in info.value.errors] == [
        "tenants[0].routing.users.100.rules[0].time_frame",
        "tenants[0].routing.dids[1].destination",
    ]


def test_toml_routing_loads_from_file(tmp_path: Path) -> None:
    text = """
[[tenants]]
name = "acme"
domain = "acme.example.test"
[[tenants.users]]
extension = 100
password = "pw-100"
[[tenants.routing.time_frames]]
name = "Lunch"
timezone = "Europe/Brussels"
[tenants.routing.time_frames.when]
kind = "days_of_week"
days = { mon = [{ start = "12:00", end = "13:00" }] }
[[tenants.routing.users.100.rules]]
time_frame = "Lunch"
dnd = "voicemail"
"""
    path = tmp_path / "switch.toml"
    path.write_text(text)
    routing = load_config(path).tenants[0].routing
    assert routing.users["100"].rules[0].dnd == "voicemail"
    path.write_text(text.replace('time_frame = "Lunch"', 'time_frame = "Dinner"'))
    with pytest.raises(
        ConfigError,
        match=r"tenants\[0\]\.routing\.users\.100\.rules\[0\]"
        r"\.time_frame: unknown time frame 'Dinner'",
    ):
        load_config(path)


def test_example_config_has_a_worked_routing_example() -> None:
    cfg = load_config(example_config_path())
    routing = cfg.tenants[0].routing
    assert [f.name for f in routing.time_frames] == ["Business hours", "US holidays"]
    assert [r.time_frame for r in routing.users["100"].rules] == ["US holidays", "Business hours"]
    assert [d.number for d in routing.dids] == ["+14155550100", "+14155550101"]
    assert [p.name for p in routing.disaster_plans] == ["Office outage"]
    # The example's own comment promises these outcomes.
    holiday = plan_call(
        routing,
        CallFacts("+12125550100", "+14155550100", JULY_4, registered={"100": 1}, from_trunk=True),
    )
    assert [t.kind for t in holiday.targets()] == [TargetKind.VOICEMAIL]
    monday = plan_call(
        routing,
        CallFacts(
            "+12125550100",
            "+14155550100",
            MONDAY_10,
            registered={"100": 1, "102": 1},
            from_trunk=True,
        ),
    )
    assert isinstance(monday.root, Ring)
    assert [(t.ref, t.delay) for t in monday.root.targets] == [("100", 0), ("102", 10)]


def test_example_toml_is_plain_toml() -> None:
    data = tomllib.loads(example_config_path().read_text())
    assert data["tenants"][0]["routing"]["default_region"] == "US"


# -- disaster state merged from the store --------------------------------------------------


def state(plan: str, enabled: bool, at: float = T0, tenant: str = "acme") -> DisasterPlanState:
    return DisasterPlanState(tenant, plan, enabled, "ops", at)


def two_plans(**status: str) -> Any:
    data = base()
    data["tenants"][0]["routing"]["disaster_plans"] = [
        {**OUTAGE, "status": status.get("Outage", "saved")},
        {**OTHER, "status": status.get("Other", "saved")},
    ]
    return routing_of(data)


@pytest.mark.parametrize(
    ("configured", "states", "enabled", "problems"),
    [
        ({}, [], [], 0),
        ({}, [state("Outage", True)], ["Outage"], 0),
        ({"Outage": "enabled"}, [], ["Outage"], 0),
        ({"Outage": "enabled"}, [state("Outage", False)], [], 0),
        ({}, [state("Outage", True), state("Other", False)], ["Outage"], 0),
        # Overlapping numbers: the plan enabled first wins, the other stays saved.
        ({}, [state("Outage", True, T0 + 5), state("Other", True, T0)], ["Other"], 1),
        ({}, [state("Outage", True, T0), state("Other", True, T0 + 5)], ["Outage"], 1),
        ({"Other": "enabled"}, [state("Outage", True, T0)], ["Other"], 1),
        ({}, [state("Gone", True)], [], 0),
        ({}, [state("Outage", True, tenant="acme")], ["Outage"], 0),
    ],
)
def test_apply_disaster_states(
    configured: dict[str, str],
    states: list[DisasterPlanState],
    enabled: list[str],
    problems: int,
) -> None:
    routing = two_plans(**configured)
    merged, found = apply_disaster_states(routing, states)
    assert [p.name for p in merged.disaster_plans if p.enabled] == enabled
    assert len(found) == problems
    assert [p.name for p in merged.disaster_plans] == ["Outage", "Other"]


def test_apply_returns_the_same_object_when_nothing_changes() -> None:
    routing = two_plans(Outage="enabled")
    assert apply_disaster_states(routing, [state("Outage", True)])[0] is routing
    assert apply_disaster_states(routing, [])[0] is routing


def test_apply_merges_history() -> None:
    routing = two_plans()
    events = [
        DisasterPlanEvent(1, "acme", "Outage", "execute", "alice", T0),
        DisasterPlanEvent(2, "acme", "Outage", "revert", "bob", T0 + 60),
    ]
    merged, _ = apply_disaster_states(routing, [state("Outage", False, T0 + 60)], events)
    history = merged.disaster_plans[0].history
    assert [(e.action, e.by) for e in history] == [("execute", "alice"), ("revert", "bob")]
    assert history[1].at == dt.datetime.fromtimestamp(T0 + 60, dt.UTC)
    assert merged.disaster_plans[1].history == ()


def ringing(plan: Any) -> list[str]:
    """What the plan rings first."""
    assert isinstance(plan.root, Ring)
    return [t.ref for t in plan.root.targets]


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with SqliteStore(tmp_path / "state.db") as store:
        yield store


async def test_disaster_state_follows_the_store(sqlite_store: SqliteStore) -> None:
    tenant = config_from_dict(base()).tenants[0]
    state_ = DisasterState(sqlite_store)
    assert await state_.refresh() is True
    before = state_.routing_for(tenant)
    assert state_.routing_for(tenant) is before  # cached: same object, compile cache hits
    assert await state_.refresh() is False
    facts = CallFacts(
        "+12125550100", "+14155550100", MONDAY_10, registered={"100": 1}, from_trunk=True
    )
    assert ringing(plan_call(before, facts)) == ["100"]

    await sqlite_store.change_disaster_plan("acme", "Outage", True, "alice", T0)
    assert state_.routing_for(tenant) is before  # not yet refreshed
    assert await state_.refresh() is True
    during = state_.routing_for(tenant)
    assert during.disaster_plans[0].status is DisasterStatus.ENABLED
    assert ringing(plan_call(during, facts)) == ["+12125550199"]
    assert [e.by for e in during.disaster_plans[0].history] == ["alice"]

    await sqlite_store.change_disaster_plan("acme", "Outage", False, "bob", T0 + 1)
    await state_.refresh()
    assert ringing(plan_call(state_.routing_for(tenant), facts)) == ["100"]
    assert [s.enabled for s in state_.states("acme")] == [False]


async def test_disaster_state_background_refresh(tmp_path: Path) -> None:
    tenant = config_from_dict(base()).tenants[0]
    url = f"sqlite:///{tmp_path}/bg.db"
    async with open_store(url) as store:
        state_ = DisasterState(store, interval=0.01)
        await state_.refresh()
        state_.start()
        try:
            await store.change_disaster_plan("acme", "Outage", True, "alice", T0)
            for _ in range(500):  # bounded wait for the poller
                if state_.routing_for(tenant).disaster_plans[0].enabled:
                    break
                await asyncio.sleep(0.01)
            assert state_.routing_for(tenant).disaster_plans[0].enabled
        finally:
            await state_.stop()
        await state_.stop()  # twice is fine


async def test_disaster_state_keeps_last_state_when_store_fails(tmp_path: Path) -> None:
    tenant = config_from_dict(base()).tenants[0]
    store = SqliteStore(tmp_path / "fail.db")
    await store.open()
    await store.change_disaster_plan("acme", "Outage", True, "alice", T0)
    state_ = DisasterState(store, interval=0.01)
    await state_.refresh()
    await store.close()  # every further refresh raises StorageError
    state_.start()
    await asyncio.sleep(0.05)
    assert state_.routing_for(tenant).disaster_plans[0].enabled
    await state_.stop()


def test_disaster_state_rejects_bad_interval(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        DisasterState(SqliteStore(tmp_path / "x.db"), interval=0)


async def test_set_disaster_plan_checks_then_records(sqlite_store: SqliteStore) -> None:
    tenant = config_from_dict(base()).tenants[0]
    at = dt.datetime.fromtimestamp(T0, dt.UTC)
    plan = await set_disaster_plan(sqlite_store, tenant, "Outage", True, "alice", at)
    assert plan.enabled and [e.by for e in plan.history] == ["alice"]
    for name, enable, message in [
        ("Outage", True, "already enabled"),
        ("Flood", True, "no disaster plan 'Flood' (plans: 'Outage')"),
    ]:
        with pytest.raises(DisasterError, match=re.escape(message)):
            await set_disaster_plan(sqlite_store, tenant, name, enable, "bob", at)
    plan = await set_disaster_plan(sqlite_store, tenant, "Outage", False, "bob")
    assert not plan.enabled
    with pytest.raises(DisasterError, match="not enabled"):
        await set_disaster_plan(sqlite_store, tenant, "Outage", False, "bob")
    with pytest.raises(DisasterError, match="timezone"):
        await set_disaster_plan(
            sqlite_store, tenant, "Outage", True, "bob", dt.datetime(2026, 1, 1)
        )
    events = await sqlite_store.load_disaster_events()
    assert [(e.action, e.changed_by) for e in events] == [("execute", "alice"), ("revert", "bob")]
    routing, problems = await current_routing(sqlite_store, tenant)
    assert not routing.disaster_plans[0].enabled and problems == []


async def test_set_disaster_plan_refuses_overlapping_plans(sqlite_store: SqliteStore) -> None:
    data = base()
    data["tenants"][0]["routing"]["disaster_plans"] = [OUTAGE, OTHER]
    tenant = config_from_dict(data).tenants[0]
    await set_disaster_plan(sqlite_store, tenant, "Outage", True, "alice")
    with pytest.raises(DisasterError, match="is in enabled disaster plans 'Outage' and 'Other'"):
        await set_disaster_plan(sqlite_store, tenant, "Other", True, "bob")
    assert len(await sqlite_store.load_disaster_events()) == 1
