"""Conference bridge and monitoring configuration: valid cases, errors naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from config import ConfigError, config_from_dict
from config.conference import MonitorCodes
from config.models import Tenant
from routing.engine import plan_call
from routing.facts import CallFacts
from routing.plan import TargetKind


def tenant(**changes: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "name": "acme",
        "domain": "acme.example.test",
        "users": [
            {"extension": "100", "password": "pw-100", "can_monitor": True},
            {"extension": "101", "password": "pw-101"},
        ],
        "conferences": [
            {
                "name": "Sales",
                "extension": "6000",
                "did": "+14155550123",
                "leader_pin": "9876",
                "participant_pin": "1234",
                "max_participants": 10,
                "min_participants": 2,
                "require_leader": True,
                "announce": True,
            },
            {"name": "Alice's bridge", "extension": 6101, "owner": "101"},
        ],
    }
    t.update(changes)
    return {"tenants": [t]}


def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    return info.value.errors


def bridge(i: int, **fields: Any) -> dict[str, Any]:
    data = tenant()
    data["tenants"][0]["conferences"][i].update(fields)
    return data


def test_valid_bridges_and_lookups() -> None:
    t = config_from_dict(tenant()).tenants[0]
    sales = t.conference_by_extension("6000")
    assert sales is not None and sales.has_pins and sales.min_participants == 2
    assert t.conference_by_did("+14155550123") is sales
    owned = t.conference_by_extension("6101")
    assert owned is not None and owned.owner == "101" and not owned.has_pins
    assert owned.max_participants == 50 and not owned.record_names
    # bridge extensions and direct numbers are routed without being listed under routing
    assert t.routing.conferences == {"6000", "6101"}
    (did,) = t.routing.dids
    assert (did.number, did.treatment.value, did.destination) == (
        "+14155550123",
        "conference",
        "6000",
    )
    assert t.may_monitor("100") and not t.may_monitor("101") and not t.may_monitor("999")


def test_did_routed_to_the_bridge_is_accepted_once() -> None:
    data = tenant(
        routing={
            "dids": [
                {"number": "+1 415 555 0123", "treatment": "conference", "destination": "6000"}
            ]
        }
    )
    t = config_from_dict(data).tenants[0]
    assert t.conference_by_did("+14155550123") is not None
    assert len(t.routing.dids) == 1
    again = Tenant.model_validate(t.model_dump())  # a validated tenant validates again
    assert again.routing == t.routing


INVALID: list[tuple[str, dict[str, Any], tuple[str, str]]] = [
    (
        "one PIN only",
        bridge(1, leader_pin="1111"),
        (
            "tenants[0].conferences[1].participant_pin",
            "required when the other PIN is set (both or neither)",
        ),
    ),
    (
        "participant PIN only",
        bridge(1, participant_pin="1111"),
        (
            "tenants[0].conferences[1].leader_pin",
            "required when the other PIN is set (both or neither)",
        ),
    ),
    (
        "same PINs",
        bridge(0, participant_pin="9876"),
        ("tenants[0].conferences[0].participant_pin", "must differ from leader_pin"),
    ),
    (
        "PIN letters",
        bridge(0, leader_pin="12a4"),
        ("tenants[0].conferences[0].leader_pin", "must be digits"),
    ),
    (
        "PIN too short",
        bridge(0, leader_pin="12"),
        ("tenants[0].conferences[0].leader_pin", "must be 3 to 12 digits"),
    ),
    (
        "leader without PINs",
        bridge(1, require_leader=True),
        ("tenants[0].conferences[1].require_leader", "needs leader_pin and participant_pin"),
    ),
    (
        "min above max",
        bridge(0, min_participants=11),
        ("tenants[0].conferences[0].min_participants", "must not exceed max_participants"),
    ),
    (
        "max too small",
        bridge(0, max_participants=1),
        ("tenants[0].conferences[0].max_participants", "must be greater than or equal to 2"),
    ),
    (
        "bad DID",
        bridge(0, did="+1555"),
        ("tenants[0].conferences[0].did", "'+1555': wrong length for its country"),
    ),
    (
        "extension letters",
        bridge(0, extension="60a0"),
        ("tenants[0].conferences[0].extension", "must be digits"),
    ),
    (
        "duplicate extension",
        bridge(1, extension="6000"),
        (
            "tenants[0].conferences[1].extension",
            "duplicate extension '6000' (first at conferences[0].extension)",
        ),
    ),
    (
        "duplicate name",
        bridge(1, name="Sales"),
        (
            "tenants[0].conferences[1].name",
            "duplicate conference name 'Sales' (first at conferences[0].name)",
        ),
    ),
    (
        "duplicate DID",
        bridge(1, did="+14155550123"),
        (
            "tenants[0].conferences[1].did",
            "duplicate DID '+14155550123' (first at conferences[0].did)",
        ),
    ),
    (
        "extension of a user",
        bridge(1, extension="100"),
        ("tenants[0].conferences[1].extension", "already a user's extension"),
    ),
    (
        "owner unknown",
        bridge(1, owner="102"),
        ("tenants[0].conferences[1].owner", "not a user of this tenant"),
    ),
    ("unknown key", bridge(0, pin="1"), ("tenants[0].conferences[0].pin", "unknown key")),
    (
        "DID routed elsewhere",
        tenant(routing={"dids": [{"number": "+14155550123", "destination": "100"}]}),
        ("tenants[0].conferences[0].did", "routing.dids sends +14155550123 to user '100'"),
    ),
    (
        "monitor code clash",
        tenant(monitor_codes={"listen": "*5", "whisper": "*52"}),
        ("tenants[0].monitor_codes.whisper", "clashes with listen code '*5'"),
    ),
    (
        "monitor code keys",
        tenant(monitor_codes={"barge": "*5x"}),
        ("tenants[0].monitor_codes.barge", "must be 2 to 8 of the keys 0-9, * and #"),
    ),
    (
        "can_monitor not bool",
        tenant(users=[{"extension": "100", "password": "p", "can_monitor": "sometimes"}]),
        ("tenants[0].users[0].can_monitor", "must be a valid boolean"),
    ),
]


@pytest.mark.parametrize(("case", "data", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid(case: str, data: dict[str, Any], expected: tuple[str, str]) -> None:
    got = errors(data)
    assert any(loc == expected[0] and expected[1] in msg for loc, msg in got), got


@pytest.mark.parametrize(
    ("dialed", "parsed"),
    [
        ("*51100", ("listen", "100")),
        ("*52100", ("whisper", "100")),
        ("*53100", ("barge", "100")),
        ("*51", None),
        ("*5x100", None),
        ("100", None),
    ],
)
def test_monitor_codes(dialed: str, parsed: tuple[str, str] | None) -> None:
    assert MonitorCodes().parse(dialed) == parsed


def test_bridge_extension_and_did_route_to_the_conference() -> None:
    routing = config_from_dict(tenant()).tenants[0].routing
    for dialled, from_trunk in (("+14155550123", True), ("6000", False)):
        plan = plan_call(
            routing, CallFacts("+13125550000", dialled, 1_700_000_000.0, from_trunk=from_trunk)
        )
        assert [(t.kind, t.ref) for t in plan.targets()] == [(TargetKind.CONFERENCE, "6000")], (
            dialled
        )
