"""Property tests: any configuration yields a finite, loop-free plan that refers to real things."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.routing import TenantRouting
from routing.engine import MAX_EXPANSIONS, plan_call
from routing.explain import explain
from routing.facts import CallFacts
from routing.plan import Application, Ring, TargetKind

EXTS = ["100", "101", "102", "103", "104"]
SERVICES = {"queue": "500", "auto_attendant": "600", "conference": "700"}
FRAMES: list[dict[str, Any]] = [
    {"name": "always", "when": {"kind": "always"}},
    {
        "name": "hours",
        "timezone": "Europe/Brussels",
        "when": {
            "kind": "days_of_week",
            "days": {
                "mon": [{"start": "09:00", "end": "17:00"}],
                "sat": [{"start": "22:00", "end": "02:00"}],
            },
        },
    },
    {
        "name": "holidays",
        "timezone": "America/New_York",
        "when": {"kind": "holidays", "country": "US"},
    },
    {
        "name": "weekly",
        "timezone": "Asia/Tokyo",
        "when": {
            "kind": "specific_dates",
            "periods": [
                {"start": "2024-01-01T08:00", "end": "2024-01-01T20:00", "recurrence": "weekly"}
            ],
        },
    },
    {"name": "off", "enabled": False, "when": {"kind": "always"}},
]


def destination() -> st.SearchStrategy[dict[str, str]]:
    return st.one_of(
        st.builds(lambda e: {"kind": "user", "target": e}, st.sampled_from(EXTS)),
        st.builds(lambda e: {"kind": "phone", "target": e}, st.sampled_from(EXTS)),
        # "100" always has a mailbox, "800" is a general one: forwards may only name real boxes
        st.builds(lambda e: {"kind": "voicemail", "target": e}, st.sampled_from(["100", "800"])),
        st.builds(lambda k: {"kind": k, "target": SERVICES[k]}, st.sampled_from(sorted(SERVICES))),
        st.just({"kind": "offnet", "target": "+12125550123"}),
    )


forwarding = st.fixed_dictionaries(
    {},
    optional={
        name: destination()
        for name in ("always", "on_active", "when_busy", "when_unanswered", "when_offline")
    },
)

simring = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "include_extension": st.booleans(),
            "ring_all_devices": st.booleans(),
            "answer_confirmation": st.booleans(),
            "extra": st.lists(
                st.one_of(
                    st.builds(
                        lambda e, d: {"kind": "extension", "target": e, "delay": d},
                        st.sampled_from(EXTS),
                        st.sampled_from([0, 5, 30, 300]),
                    ),
                    st.builds(
                        lambda d: {"kind": "number", "target": "+32470123456", "delay": d},
                        st.sampled_from([0, 10, 60]),
                    ),
                ),
                max_size=3,
            ),
        }
    ),
)


def rule(with_frame: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, Any] = {
        "enabled": st.booleans() if with_frame else st.just(True),
        "dnd": st.sampled_from([None, None, None, "voicemail", "busy"]),
        "screening": st.booleans(),
        "forward": forwarding,
        "simring": simring,
    }
    if with_frame:
        fields["time_frame"] = st.sampled_from([f["name"] for f in FRAMES])
    return st.fixed_dictionaries(fields)


user = st.fixed_dictionaries(
    {
        "rules": st.lists(rule(True), max_size=4),
        "default_rule": rule(False),
        "ring_time": st.sampled_from([5, 25, 90, 300, 1200, None]),
        "voicemail": st.booleans(),
        "block": st.fixed_dictionaries(
            {
                "block_anonymous": st.booleans(),
                "spam": st.sampled_from([None, "ring", "voicemail", "drop", "screen"]),
                "blocked": st.sampled_from([[], ["+13125550000"], ["+1312*"]]),
                "allowed": st.sampled_from([[], ["+13125550000"]]),
            }
        ),
    }
)


def _config(users: list[dict[str, Any]], depth: int) -> TenantRouting:
    users[0] = {**users[0], "voicemail": True}
    return TenantRouting.model_validate(
        {
            "time_frames": FRAMES,
            "users": dict(zip(EXTS, users, strict=False)),
            "mailboxes": ["800"],
            "max_forward_depth": depth,
            "queues": [SERVICES["queue"]],
            "auto_attendants": [SERVICES["auto_attendant"]],
            "conferences": [SERVICES["conference"]],
            "dids": [{"number": "+12127881500", "destination": "100"}],
        }
    )


config_strategy = st.builds(
    _config,
    st.lists(user, min_size=len(EXTS), max_size=len(EXTS)),
    st.integers(1, 10),
)

facts_strategy = st.builds(
    CallFacts,
    caller=st.sampled_from([None, "anonymous", "+13125550000", "+14155550000", "101"]),
    dialled=st.sampled_from([*EXTS, "+12127881500", "500", "+12125550100"]),
    at=st.datetimes(
        min_value=dt.datetime(2020, 1, 1),
        max_value=dt.datetime(2030, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    registered=st.dictionaries(st.sampled_from(EXTS), st.integers(0, 3)),
    busy=st.frozensets(st.sampled_from(EXTS)),
    spam=st.booleans(),
    from_trunk=st.booleans(),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=config_strategy, facts=facts_strategy)
def test_any_configuration_gives_a_finite_loop_free_plan(
    config: TenantRouting, facts: CallFacts
) -> None:
    plan = plan_call(config, facts)
    nodes = list(plan.walk())
    # finite and small: each user expansion adds a ring group and a few fallbacks
    assert len(nodes) <= 8 * (MAX_EXPANSIONS + 2)
    assert plan.depth <= config.max_forward_depth + 3
    for target in plan.targets():
        # a forwarding loop would repeat an extension in the diversion chain
        assert len(set(target.diverted_by)) == len(target.diverted_by), target
        if target.kind is TargetKind.USER_DEVICES:
            assert target.ref in config.users
        if target.kind is TargetKind.VOICEMAIL:
            assert target.ref in config.mailboxes or config.users[target.ref].voicemail
        if target.kind is TargetKind.HANG_UP:
            assert 400 <= target.status <= 699
    for _, _, node in nodes:
        if isinstance(node, Ring):
            assert node.targets and all(t.delay < (node.timeout or 10**9) for t in node.targets)
        else:
            assert isinstance(node, Application)
    # the plan is deterministic and explain never raises
    assert plan_call(config, facts) == plan
    assert explain(config, facts)[-1]


@settings(max_examples=100, deadline=None)
@given(config=config_strategy, at=st.integers(0, 2_000_000_000))
def test_every_user_gets_a_plan(config: TenantRouting, at: int) -> None:
    for ext in EXTS:
        plan = plan_call(config, CallFacts("+14155550000", ext, at))
        assert plan.decisions and plan.describe()
