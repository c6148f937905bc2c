"""plan_call: rules, forwards, sim-ring, loops, DIDs, disaster plans, block lists, explain."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from config.routing import TenantRouting
from routing.answering import (
    RoutingConfigError,
    bulk_toggle,
    move_rule,
    set_rule_enabled,
    set_time_frame_enabled,
)
from routing.engine import plan_call
from routing.explain import explain
from routing.facts import CallFacts
from routing.plan import (
    Application,
    Callflow,
    DiversionReason,
    Node,
    Outcome,
    Ring,
    Target,
    TargetKind,
)

NYC = ZoneInfo("America/New_York")
JULY4 = dt.datetime(2022, 7, 4, 10, 0, tzinfo=NYC)  # a Monday, inside business hours
TUESDAY_10 = dt.datetime(2022, 7, 5, 10, 0, tzinfo=NYC)
TUESDAY_20 = dt.datetime(2022, 7, 5, 20, 0, tzinfo=NYC)
SATURDAY = dt.datetime(2022, 7, 9, 11, 0, tzinfo=NYC)

FRAMES = [
    {
        "name": "Business Hours",
        "timezone": "America/New_York",
        "when": {
            "kind": "days_of_week",
            "days": {
                d: [{"start": "09:00", "end": "17:00"}] for d in ("mon", "tue", "wed", "thu", "fri")
            },
        },
    },
    {
        "name": "Holidays",
        "timezone": "America/New_York",
        "when": {"kind": "holidays", "country": "US"},
    },
    {"name": "Always", "when": {"kind": "always"}},
]


def cfg(users: dict[str, Any], **extra: Any) -> TenantRouting:
    data: dict[str, Any] = {
        "time_frames": FRAMES,
        "users": users,
        "queues": ["500"],
        "auto_attendants": ["600"],
        "conferences": ["700"],
        "mailboxes": ["800"],
    }
    data.update(extra)
    return TenantRouting.model_validate(data)


def call(
    config: TenantRouting,
    dialled: str = "100",
    at: dt.datetime | float = TUESDAY_10,
    caller: str | None = "+13125550000",
    registered: dict[str, int] | None = None,
    **kw: Any,
) -> Callflow:
    reg = {"100": 1, "101": 1, "102": 1} if registered is None else registered
    return plan_call(config, CallFacts(caller, dialled, at, registered=reg, **kw))


def fwd(kind: str, target: str) -> dict[str, str]:
    return {"kind": kind, "target": target}


def only(node: Node) -> Target:
    """The single target of a node."""
    if isinstance(node, Application):
        return node.target
    assert len(node.targets) == 1, node.targets
    return node.targets[0]


def assert_reject(node: Node, status: int) -> None:
    assert isinstance(node, Application)
    assert node.target.kind is TargetKind.HANG_UP and node.target.status == status


# -- the active rule ---------------------------------------------------------------------------

HOLIDAY_RULE = {"time_frame": "Holidays", "forward": {"always": fwd("voicemail", "100")}}
HOURS_RULE = {"time_frame": "Business Hours", "simring": {}}
AFTER_HOURS = {"forward": {"always": fwd("auto_attendant", "600")}}


@pytest.mark.parametrize(
    ("rules", "at", "expected"),
    [
        # July 4th ordering: Holidays above Business Hours wins, the other order loses
        ([HOLIDAY_RULE, HOURS_RULE], JULY4, TargetKind.VOICEMAIL),
        ([HOURS_RULE, HOLIDAY_RULE], JULY4, TargetKind.USER_DEVICES),
        ([HOLIDAY_RULE, HOURS_RULE], TUESDAY_10, TargetKind.USER_DEVICES),
        ([HOURS_RULE, HOLIDAY_RULE], TUESDAY_10, TargetKind.USER_DEVICES),
        ([HOLIDAY_RULE, HOURS_RULE], TUESDAY_20, TargetKind.AUTO_ATTENDANT),
        ([HOLIDAY_RULE, HOURS_RULE], SATURDAY, TargetKind.AUTO_ATTENDANT),
        ([], TUESDAY_10, TargetKind.AUTO_ATTENDANT),
        ([{**HOLIDAY_RULE, "enabled": False}, HOURS_RULE], JULY4, TargetKind.USER_DEVICES),
        (
            [{**HOLIDAY_RULE, "enabled": False}, {**HOURS_RULE, "enabled": False}],
            JULY4,
            TargetKind.AUTO_ATTENDANT,
        ),
    ],
    ids=[
        "july4-holidays-first",
        "july4-hours-first",
        "tue-holidays-first",
        "tue-hours-first",
        "evening",
        "saturday",
        "no-rules",
        "holiday-disabled",
        "both-disabled",
    ],
)
def test_active_rule(rules: list[dict[str, Any]], at: dt.datetime, expected: TargetKind) -> None:
    config = cfg({"100": {"rules": rules, "default_rule": AFTER_HOURS}})
    plan = call(config, at=at)
    kinds = {t.kind for t in plan.targets()}
    first = only(plan.root) if isinstance(plan.root, Application) else plan.root.targets[0]
    assert first.kind is expected, (kinds, plan.describe())


def test_reordering_and_toggles_are_pure() -> None:
    config = cfg({"100": {"rules": [HOURS_RULE, HOLIDAY_RULE], "default_rule": AFTER_HOURS}})
    assert only(call(config, at=JULY4).root).kind is TargetKind.USER_DEVICES
    moved = move_rule(config, "100", 2, 1)
    assert only(call(moved, at=JULY4).root).kind is TargetKind.VOICEMAIL
    assert only(call(config, at=JULY4).root).kind is TargetKind.USER_DEVICES  # input untouched
    off = set_rule_enabled(moved, "100", 1, False)
    assert only(call(off, at=JULY4).root).kind is TargetKind.USER_DEVICES
    frame_off = set_time_frame_enabled(moved, "Holidays", False)
    assert only(call(frame_off, at=JULY4).root).kind is TargetKind.USER_DEVICES
    with pytest.raises(RoutingConfigError):
        move_rule(config, "100", 3, 1)
    with pytest.raises(RoutingConfigError):
        set_time_frame_enabled(config, "Nope", False)


def test_bulk_toggle_many_users() -> None:
    users = {
        ext: {"rules": [HOLIDAY_RULE | {"forward": {"always": fwd("voicemail", ext)}}]}
        for ext in ("100", "101", "102")
    }
    config = cfg(users)
    off = bulk_toggle(config, "Holidays", ["100", "101"], enabled=False)
    assert isinstance(call(off, "100", JULY4).root, Ring)
    assert isinstance(call(off, "101", JULY4).root, Ring)
    assert only(call(off, "102", JULY4).root).kind is TargetKind.VOICEMAIL
    back = bulk_toggle(off, "Holidays", ["100", "101"], enabled=True)
    assert only(call(back, "100", JULY4).root).kind is TargetKind.VOICEMAIL
    with pytest.raises(RoutingConfigError, match="no answering rule"):
        bulk_toggle(config, "Business Hours", ["100"], enabled=False)
    with pytest.raises(RoutingConfigError, match="no user"):
        bulk_toggle(config, "Holidays", ["999"], enabled=False)


def test_owned_frame_shadows_domain_frame() -> None:
    config = cfg(
        {
            "100": {
                "rules": [
                    {"time_frame": "Business Hours", "forward": {"always": fwd("queue", "500")}}
                ]
            },
            "101": {
                "rules": [
                    {"time_frame": "Business Hours", "forward": {"always": fwd("queue", "500")}}
                ]
            },
        },
        time_frames=[
            *FRAMES,
            {
                "name": "Business Hours",
                "owner": "100",
                "timezone": "Asia/Tokyo",
                "when": {
                    "kind": "days_of_week",
                    "days": {"sun": [{"start": "00:00", "end": "24:00"}]},
                },
            },
        ],
    )
    assert only(call(config, "100").root).kind is TargetKind.USER_DEVICES  # Tokyo Sunday only
    assert only(call(config, "101").root).kind is TargetKind.QUEUE


# -- forwarding --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dest", "kind", "ref"),
    [
        (fwd("voicemail", "100"), TargetKind.VOICEMAIL, "100"),
        (fwd("voicemail", "800"), TargetKind.VOICEMAIL, "800"),
        (fwd("queue", "500"), TargetKind.QUEUE, "500"),
        (fwd("auto_attendant", "600"), TargetKind.AUTO_ATTENDANT, "600"),
        (fwd("conference", "700"), TargetKind.CONFERENCE, "700"),
        (fwd("offnet", "+1 (212) 555-0123"), TargetKind.EXTERNAL, "+12125550123"),
        (fwd("phone", "101"), TargetKind.USER_DEVICES, "101"),
        (fwd("user", "101"), TargetKind.USER_DEVICES, "101"),
    ],
)
def test_forward_always_each_destination(dest: dict[str, str], kind: TargetKind, ref: str) -> None:
    config = cfg({"100": {"default_rule": {"forward": {"always": dest}}}, "101": {}})
    target = call(config).root
    t = target.targets[0] if isinstance(target, Ring) else target.target
    assert (t.kind, t.ref) == (kind, ref)
    assert t.diverted_by == ("100",)


def test_user_forward_follows_their_rules_and_phone_bypasses_them() -> None:
    users = {
        "100": {"default_rule": {"forward": {"always": fwd("user", "101")}}},
        "101": {"default_rule": {"forward": {"always": fwd("queue", "500")}}},
        "102": {"default_rule": {"forward": {"always": fwd("phone", "101")}}},
    }
    config = cfg(users)
    assert only(call(config, "100").root).kind is TargetKind.QUEUE
    plan = call(config, "102")
    assert isinstance(plan.root, Ring)
    assert only(plan.root).kind is TargetKind.USER_DEVICES and only(plan.root).ref == "101"


def test_phone_forward_to_offline_user_rejects() -> None:
    config = cfg({"100": {"default_rule": {"forward": {"always": fwd("phone", "101")}}}, "101": {}})
    assert_reject(call(config, registered={"100": 1}).root, 480)


@pytest.mark.parametrize(
    ("forward", "registered", "busy", "expected_root"),
    [
        ({"when_offline": fwd("queue", "500")}, 0, False, TargetKind.QUEUE),
        ({"when_offline": fwd("queue", "500")}, 2, False, TargetKind.USER_DEVICES),
        ({"on_active": fwd("conference", "700")}, 1, True, TargetKind.CONFERENCE),
        ({"on_active": fwd("conference", "700")}, 1, False, TargetKind.USER_DEVICES),
        ({}, 1, True, TargetKind.USER_DEVICES),  # call waiting: rings anyway
        ({}, 0, False, TargetKind.VOICEMAIL),  # offline, no forward: voicemail
        ({"when_unanswered": fwd("auto_attendant", "600")}, 0, False, TargetKind.AUTO_ATTENDANT),
        (
            {"always": fwd("queue", "500"), "when_offline": fwd("conference", "700")},
            0,
            False,
            TargetKind.QUEUE,
        ),
    ],
    ids=[
        "offline-fwd",
        "online-no-fwd",
        "on-active",
        "not-active",
        "call-waiting",
        "offline-voicemail",
        "offline-unanswered",
        "always-wins",
    ],
)
def test_conditional_forwards(
    forward: dict[str, Any], registered: int, busy: bool, expected_root: TargetKind
) -> None:
    config = cfg({"100": {"default_rule": {"forward": forward}}})
    plan = call(
        config, registered={"100": registered}, busy=frozenset({"100"}) if busy else frozenset()
    )
    root = plan.root
    first = root.targets[0] if isinstance(root, Ring) else root.target
    assert first.kind is expected_root


@pytest.mark.parametrize(
    ("forward", "voicemail", "outcome", "kind", "status"),
    [
        ({"when_busy": fwd("queue", "500")}, True, Outcome.BUSY, TargetKind.QUEUE, 0),
        ({}, True, Outcome.BUSY, TargetKind.VOICEMAIL, 0),
        ({}, False, Outcome.BUSY, TargetKind.HANG_UP, 480),
        (
            {"when_unanswered": fwd("offnet", "+12125550123")},
            True,
            Outcome.NO_ANSWER,
            TargetKind.EXTERNAL,
            0,
        ),
        ({}, True, Outcome.NO_ANSWER, TargetKind.VOICEMAIL, 0),
        ({}, False, Outcome.NO_ANSWER, TargetKind.HANG_UP, 480),
        ({"when_unanswered": fwd("queue", "500")}, True, Outcome.UNREACHABLE, TargetKind.QUEUE, 0),
        ({"when_unanswered": fwd("queue", "500")}, True, Outcome.OFFLINE, TargetKind.QUEUE, 0),
    ],
)
def test_fallbacks(
    forward: dict[str, Any], voicemail: bool, outcome: Outcome, kind: TargetKind, status: int
) -> None:
    config = cfg({"100": {"default_rule": {"forward": forward}, "voicemail": voicemail}})
    root = call(config).root
    assert isinstance(root, Ring)
    node = root.branches.get(outcome)
    assert node is not None
    assert only(node).kind is kind
    if status:
        assert only(node).status == status


@pytest.mark.parametrize(
    ("ring_time", "expected"),
    [
        (5, 5),
        (25, 25),
        (90, 90),
        (120, 120),
        (300, 300),
        (1200, 1200),
        ("unlimited", None),
        (None, None),
    ],
)
def test_ring_time_is_the_group_timeout(ring_time: Any, expected: int | None) -> None:
    config = cfg({"100": {"ring_time": ring_time}})
    root = call(config).root
    assert isinstance(root, Ring) and root.timeout == expected


@pytest.mark.parametrize("bad", [0, 3, 7, 95, 100, 330, 600, 1201, -5, "soon", 2.5, True])
def test_invalid_ring_times(bad: Any) -> None:
    with pytest.raises(ValidationError, match="ring time"):
        cfg({"100": {"ring_time": bad}})


@pytest.mark.parametrize(
    ("dnd", "forward", "voicemail", "kind", "status"),
    [
        ("voicemail", {}, True, TargetKind.VOICEMAIL, 0),
        ("voicemail", {}, False, TargetKind.HANG_UP, 480),
        ("busy", {}, True, TargetKind.HANG_UP, 486),
        ("busy", {"when_busy": fwd("queue", "500")}, True, TargetKind.QUEUE, 0),
        ("voicemail", {"always": fwd("queue", "500")}, True, TargetKind.VOICEMAIL, 0),
    ],
)
def test_do_not_disturb(
    dnd: str, forward: dict[str, Any], voicemail: bool, kind: TargetKind, status: int
) -> None:
    config = cfg(
        {"100": {"default_rule": {"dnd": dnd, "forward": forward}, "voicemail": voicemail}}
    )
    target = only(call(config).root)
    assert target.kind is kind
    if status:
        assert target.status == status


# -- simultaneous ring -------------------------------------------------------------------------


def _sim(**sim: Any) -> TenantRouting:
    return cfg({"100": {"default_rule": {"simring": sim}, "ring_time": 30}, "101": {}, "102": {}})


def test_simring_delays_and_answer_confirmation() -> None:
    config = _sim(
        extra=[
            {"kind": "number", "target": "+12125550123", "delay": 10},
            {"kind": "extension", "target": "101", "delay": 5},
            {"kind": "number", "target": "+12125550124"},
        ],
        answer_confirmation=True,
    )
    root = call(config).root
    assert isinstance(root, Ring)
    legs = {(t.kind, t.ref): t for t in root.targets}
    assert legs[(TargetKind.USER_DEVICES, "100")].delay == 0
    assert legs[(TargetKind.USER_DEVICES, "100")].all_devices
    assert not legs[(TargetKind.USER_DEVICES, "100")].answer_confirmation
    assert legs[(TargetKind.EXTERNAL, "+12125550123")].delay == 10
    assert legs[(TargetKind.EXTERNAL, "+12125550123")].answer_confirmation
    assert legs[(TargetKind.EXTERNAL, "+12125550124")].delay == 0
    assert legs[(TargetKind.USER_DEVICES, "101")].delay == 5
    assert not legs[(TargetKind.USER_DEVICES, "101")].answer_confirmation


def test_simring_without_confirmation() -> None:
    config = _sim(extra=[{"kind": "number", "target": "+12125550123", "delay": 10}])
    root = call(config).root
    assert isinstance(root, Ring)
    assert not any(t.answer_confirmation for t in root.targets)


@pytest.mark.parametrize(
    ("sim", "expected"),
    [
        ({"include_extension": True, "ring_all_devices": True}, [("100", True)]),
        ({"include_extension": True, "ring_all_devices": False}, [("100", False)]),
        ({"include_extension": False, "ring_all_devices": True}, [("100", True)]),
        (
            {
                "include_extension": False,
                "ring_all_devices": False,
                "extra": [{"kind": "extension", "target": "101"}],
            },
            [("101", True)],
        ),
        (None, [("100", False)]),  # just ring the user's extension
    ],
)
def test_simring_device_selection(
    sim: dict[str, Any] | None, expected: list[tuple[str, bool]]
) -> None:
    config = cfg({"100": {"default_rule": {"simring": sim}}, "101": {}})
    root = call(config).root
    assert isinstance(root, Ring)
    assert [(t.ref, t.all_devices) for t in root.targets] == expected


def test_simring_leg_delay_beyond_ring_time_is_dropped() -> None:
    config = _sim(extra=[{"kind": "number", "target": "+12125550123", "delay": 30}])
    root = call(config).root
    assert isinstance(root, Ring)
    assert [t.kind for t in root.targets] == [TargetKind.USER_DEVICES]


def test_simring_rings_extra_legs_when_user_offline() -> None:
    config = _sim(extra=[{"kind": "number", "target": "+12125550123"}])
    root = call(config, registered={}).root
    assert isinstance(root, Ring)
    assert [t.kind for t in root.targets] == [TargetKind.EXTERNAL]


def test_screening_marks_every_leg() -> None:
    config = cfg(
        {
            "100": {
                "default_rule": {
                    "screening": True,
                    "simring": {"extra": [{"kind": "number", "target": "+12125550123"}]},
                }
            }
        }
    )
    root = call(config).root
    assert isinstance(root, Ring)
    assert all(t.screening for t in root.targets)


# -- loops -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "dialled", "end_ref"),
    [
        (
            {
                "100": {"default_rule": {"forward": {"always": fwd("user", "101")}}},
                "101": {"default_rule": {"forward": {"always": fwd("user", "100")}}},
            },
            "100",
            "101",
        ),
        ({"100": {"default_rule": {"forward": {"always": fwd("user", "100")}}}}, "100", "100"),
        (
            {
                "100": {"default_rule": {"forward": {"always": fwd("user", "101")}}},
                "101": {"default_rule": {"forward": {"always": fwd("user", "102")}}},
                "102": {"default_rule": {"forward": {"always": fwd("user", "100")}}},
            },
            "100",
            "102",
        ),
        (
            {
                "100": {"default_rule": {"forward": {"always": fwd("user", "101")}}},
                "101": {"default_rule": {"forward": {"always": fwd("user", "102")}}},
                "102": {"default_rule": {"forward": {"always": fwd("user", "101")}}},
            },
            "100",
            "102",
        ),
    ],
    ids=["a-b-a", "self", "a-b-c-a", "a-b-c-b"],
)
def test_forward_loops_are_cut_to_voicemail(
    users: dict[str, Any], dialled: str, end_ref: str
) -> None:
    plan = call(cfg(users), dialled)
    target = only(plan.root)
    assert target.kind is TargetKind.VOICEMAIL and target.ref == end_ref
    assert any(d.stage == "loop" for d in plan.decisions)


@pytest.mark.parametrize(
    ("forward", "registered", "busy", "outcome", "reason"),
    [
        ({"always": fwd("user", "101")}, 1, False, None, DiversionReason.UNCONDITIONAL),
        ({"when_offline": fwd("user", "101")}, 0, False, None, DiversionReason.UNAVAILABLE),
        ({"on_active": fwd("user", "101")}, 1, True, None, DiversionReason.BUSY),
        ({"when_busy": fwd("user", "101")}, 1, False, Outcome.BUSY, DiversionReason.BUSY),
        (
            {"when_unanswered": fwd("user", "101")},
            1,
            False,
            Outcome.NO_ANSWER,
            DiversionReason.NO_ANSWER,
        ),
        (
            {"when_unanswered": fwd("offnet", "+12125550123")},
            0,
            False,
            None,
            DiversionReason.UNAVAILABLE,
        ),
    ],
    ids=["always", "offline", "on-active", "busy", "unanswered", "nothing-to-ring"],
)
def test_forwards_say_why(
    forward: dict[str, Any],
    registered: int,
    busy: bool,
    outcome: Outcome | None,
    reason: DiversionReason,
) -> None:
    config = cfg({"100": {"default_rule": {"forward": forward}}, "101": {}})
    plan = call(
        config,
        registered={"100": registered, "101": 1},
        busy=frozenset({"100"}) if busy else frozenset(),
    )
    node = plan.root
    if outcome is not None:
        assert isinstance(node, Ring)
        branch = node.branches.get(outcome)
        assert branch is not None
        node = branch
    assert only(node).diversions() == (("100", reason),)


def test_forward_chain_keeps_each_reason() -> None:
    users = {
        "100": {"default_rule": {"forward": {"when_busy": fwd("user", "101")}}},
        "101": {"default_rule": {"forward": {"always": fwd("user", "102")}}},
        "102": {},
    }
    root = call(cfg(users)).root
    assert isinstance(root, Ring) and root.branches.on_busy is not None
    assert only(root.branches.on_busy).diversions() == (
        ("100", DiversionReason.BUSY),
        ("101", DiversionReason.UNCONDITIONAL),
    )


def test_diversion_reasons_must_match_the_forwarders() -> None:
    with pytest.raises(ValueError, match="diversion_reasons"):
        Target(
            TargetKind.EXTERNAL,
            "+12125550123",
            diverted_by=("100", "101"),
            diversion_reasons=(DiversionReason.BUSY,),
        )


def test_loop_without_voicemail_ends_480() -> None:
    users = {
        "100": {"default_rule": {"forward": {"always": fwd("user", "101")}}, "voicemail": False},
        "101": {"default_rule": {"forward": {"always": fwd("user", "100")}}, "voicemail": False},
    }
    assert_reject(call(cfg(users)).root, 480)


def test_unanswered_loop_rings_then_cuts() -> None:
    users = {
        "100": {"default_rule": {"forward": {"when_unanswered": fwd("user", "101")}}},
        "101": {"default_rule": {"forward": {"when_unanswered": fwd("user", "100")}}},
    }
    plan = call(cfg(users))
    root = plan.root
    assert isinstance(root, Ring) and root.targets[0].ref == "100"
    second = root.branches.on_no_answer
    assert isinstance(second, Ring) and second.targets[0].ref == "101"
    end = second.branches.on_no_answer
    assert end is not None and only(end).kind is TargetKind.VOICEMAIL and only(end).ref == "101"


def test_long_chain_is_cut_at_max_depth() -> None:
    # (from 200: 112 is an emergency number, never an extension)
    users = {
        str(200 + i): {"default_rule": {"forward": {"always": fwd("user", str(201 + i))}}}
        for i in range(12)
    }
    users["212"] = {}
    config = cfg(users, max_forward_depth=4)
    plan = call(config, "200")
    target = only(plan.root)
    assert target.kind is TargetKind.VOICEMAIL and target.ref == "203"


# -- DIDs, disaster plans, outbound ------------------------------------------------------------

DIDS = [
    {
        "number": "+12127881500",
        "treatment": "user",
        "destination": "100",
        "caller_id_prefix": "Sales",
    },
    {"number": "+12127881501", "treatment": "queue", "destination": "500"},
    {"number": "+12127881502", "treatment": "conference", "destination": "700"},
    {"number": "+12127881503", "treatment": "voicemail", "destination": "800"},
    {"number": "+12127881504", "treatment": "auto_attendant", "destination": "600"},
    {"number": "+12127881505", "treatment": "offnet", "destination": "+12125550199"},
    {"number": "+12127881506", "treatment": "fax", "destination": "fax@example.com"},
]


@pytest.mark.parametrize(
    ("dialled", "kind", "ref"),
    [
        ("+12127881500", TargetKind.USER_DEVICES, "100"),
        ("+12127881501", TargetKind.QUEUE, "500"),
        ("+12127881502", TargetKind.CONFERENCE, "700"),
        ("+12127881503", TargetKind.VOICEMAIL, "800"),
        ("+12127881504", TargetKind.AUTO_ATTENDANT, "600"),
        ("+12127881505", TargetKind.EXTERNAL, "+12125550199"),
        ("+12127881506", TargetKind.FAX, "fax@example.com"),
        ("(212) 788-1500", TargetKind.USER_DEVICES, "100"),  # national format, region US
        ("0012127881501", TargetKind.QUEUE, "500"),  # international prefix 00
    ],
)
def test_did_treatments(dialled: str, kind: TargetKind, ref: str) -> None:
    config = cfg({"100": {}}, dids=DIDS)
    plan = call(config, dialled, from_trunk=True)
    t = only(plan.root)
    assert (t.kind, t.ref) == (kind, ref)


def test_caller_id_prefix() -> None:
    config = cfg({"100": {}}, dids=DIDS)
    assert call(config, "+12127881500", from_trunk=True).caller_id_prefix == "Sales"
    assert call(config, "+12127881501", from_trunk=True).caller_id_prefix == ""


@pytest.mark.parametrize(
    ("dialled", "from_trunk", "kind", "status"),
    [
        ("+12125550100", True, TargetKind.HANG_UP, 404),
        ("+12125550100", False, TargetKind.EXTERNAL, 0),
        ("2125550100", False, TargetKind.EXTERNAL, 0),
        ("998", False, TargetKind.HANG_UP, 484),
        ("999", False, TargetKind.EMERGENCY, 0),
        ("999", True, TargetKind.HANG_UP, 404),
        ("", False, TargetKind.HANG_UP, 484),
        ("not a number", True, TargetKind.HANG_UP, 404),
        ("500", False, TargetKind.QUEUE, 0),
        ("600", False, TargetKind.AUTO_ATTENDANT, 0),
        ("700", False, TargetKind.CONFERENCE, 0),
        ("800", False, TargetKind.VOICEMAIL, 0),
    ],
)
def test_dialled_numbers(dialled: str, from_trunk: bool, kind: TargetKind, status: int) -> None:
    config = cfg({"100": {}}, dids=DIDS)
    t = only(call(config, dialled, from_trunk=from_trunk).root)
    assert t.kind is kind
    assert t.status == status


def _disaster(status: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "Outage",
            "region": "North America",
            "status": status,
            "numbers": [
                {"number": "+12127881500", "forward_to": "+15055551234"},
                {"number": "+12127881501", "forward_to": "+15055551235"},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("status", "dialled", "expected"),
    [
        ("enabled", "+12127881500", "+15055551234"),
        ("enabled", "+12127881501", "+15055551235"),
        ("enabled", "+12127881502", None),
        ("saved", "+12127881500", None),
    ],
)
def test_disaster_plan_forwards_before_any_rule(
    status: str, dialled: str, expected: str | None
) -> None:
    users = {
        "100": {
            "block": {"blocked": ["+13125550000"]},
            "default_rule": {"forward": {"always": fwd("queue", "500")}},
        }
    }
    config = cfg(users, dids=DIDS, disaster_plans=_disaster(status))
    plan = call(config, dialled, from_trunk=True)
    t = only(plan.root)
    if expected is None:
        assert t.kind is not TargetKind.EXTERNAL or t.ref != "+15055551234"
        assert not any(d.stage == "disaster" for d in plan.decisions)
    else:
        assert (t.kind, t.ref) == (TargetKind.EXTERNAL, expected)
        assert plan.decisions[0].stage == "disaster"


# -- block and allow lists ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "user", "caller", "spam", "kind", "status"),
    [
        ({}, {}, "+13125550000", False, TargetKind.USER_DEVICES, 0),
        ({"blocked": ["+13125550000"]}, {}, "+13125550000", False, TargetKind.HANG_UP, 603),
        ({}, {"blocked": ["+13125550000"]}, "+13125550000", False, TargetKind.HANG_UP, 603),
        ({}, {"blocked": ["+1312*"]}, "+13125550000", False, TargetKind.HANG_UP, 603),
        ({}, {"blocked": ["+1312*"]}, "+14155550000", False, TargetKind.USER_DEVICES, 0),
        ({}, {"blocked": ["+13125550000"]}, "(312) 555-0000", False, TargetKind.HANG_UP, 603),
        (
            {"blocked": ["+13125550000"]},
            {"allowed": ["+13125550000"]},
            "+13125550000",
            False,
            TargetKind.USER_DEVICES,
            0,
        ),
        (
            {"allowed": ["+13125550000"]},
            {"blocked": ["+13125550000"]},
            "+13125550000",
            False,
            TargetKind.USER_DEVICES,
            0,
        ),
        ({"block_anonymous": True}, {}, None, False, TargetKind.HANG_UP, 433),
        ({}, {"block_anonymous": True}, "anonymous", False, TargetKind.HANG_UP, 433),
        ({}, {"block_anonymous": True}, "Restricted", False, TargetKind.HANG_UP, 433),
        ({}, {"block_anonymous": True}, "+13125550000", False, TargetKind.USER_DEVICES, 0),
        ({}, {}, None, False, TargetKind.USER_DEVICES, 0),
        ({}, {"blocked": ["101"]}, "101", False, TargetKind.HANG_UP, 603),
        # spam treatments
        ({}, {}, "+13125550000", True, TargetKind.USER_DEVICES, 0),
        ({"spam": "drop"}, {}, "+13125550000", True, TargetKind.HANG_UP, 603),
        ({"spam": "voicemail"}, {}, "+13125550000", True, TargetKind.VOICEMAIL, 0),
        ({"spam": "drop"}, {"spam": "ring"}, "+13125550000", True, TargetKind.USER_DEVICES, 0),
        ({"spam": "ring"}, {"spam": "voicemail"}, "+13125550000", True, TargetKind.VOICEMAIL, 0),
        (
            {"spam": "drop"},
            {"allowed": ["+13125550000"]},
            "+13125550000",
            True,
            TargetKind.USER_DEVICES,
            0,
        ),
        ({"spam": "drop"}, {}, "+13125550000", False, TargetKind.USER_DEVICES, 0),
    ],
)
def test_block_allow_and_spam(
    tenant: dict[str, Any],
    user: dict[str, Any],
    caller: str | None,
    spam: bool,
    kind: TargetKind,
    status: int,
) -> None:
    config = cfg({"100": {"block": user}, "101": {}}, block=tenant)
    t = only(call(config, caller=caller, spam=spam).root)
    assert t.kind is kind
    assert t.status == status


def test_spam_screen_turns_on_screening() -> None:
    config = cfg({"100": {"block": {"spam": "screen"}}})
    root = call(config, spam=True).root
    assert isinstance(root, Ring) and all(t.screening for t in root.targets)
    root = call(config, spam=False).root
    assert isinstance(root, Ring) and not any(t.screening for t in root.targets)


def test_tenant_block_applies_to_service_dids() -> None:
    config = cfg({"100": {}}, dids=DIDS, block={"blocked": ["+13125550000"]})
    assert_reject(call(config, "+12127881501", from_trunk=True).root, 603)


@pytest.mark.parametrize("entry", ["12345abc+", "+12", "+1 312 555", "", "+99912345678"])
def test_invalid_list_entries(entry: str) -> None:
    with pytest.raises(ValidationError):
        cfg({"100": {"block": {"blocked": [entry]}}})


# -- configuration references ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("users", "extra", "message"),
    [
        ({"100": {"rules": [{"time_frame": "Nope"}]}}, {}, "unknown time frame"),
        (
            {"100": {"default_rule": {"forward": {"always": fwd("user", "999")}}}},
            {},
            "unknown user",
        ),
        (
            {"100": {"default_rule": {"forward": {"always": fwd("queue", "501")}}}},
            {},
            "unknown queue",
        ),
        (
            {
                "100": {"default_rule": {"forward": {"always": fwd("voicemail", "101")}}},
                "101": {"voicemail": False},
            },
            {},
            "unknown voicemail",
        ),
        (
            {"100": {"default_rule": {"forward": {"always": fwd("offnet", "12345")}}}},
            {},
            "country code",
        ),
        (
            {"100": {"default_rule": {"forward": {"always": fwd("queue", "+12125550100")}}}},
            {},
            "not a number",
        ),
        (
            {
                "100": {
                    "default_rule": {"simring": {"extra": [{"kind": "extension", "target": "9"}]}}
                }
            },
            {},
            "unknown extension",
        ),
        ({"100": {"rules": [{}]}}, {}, "needs a time frame"),
        ({"100": {"default_rule": {"time_frame": "Always"}}}, {}, "takes no time frame"),
        ({"100": {}}, {"dids": [{"number": "+12127881500", "destination": "999"}]}, "unknown user"),
        ({"100": {}}, {"dids": [DIDS[0], DIDS[0]]}, "listed twice"),
        ({"100": {}}, {"dids": [{"number": "12127881500", "destination": "100"}]}, "country code"),
        ({"+100": {}}, {}, "invalid extension"),
        ({"100": {}}, {"time_frames": [*FRAMES, FRAMES[0]]}, "defined twice"),
        (
            {"100": {}},
            {"time_frames": [{"name": "x", "owner": "9", "when": {"kind": "always"}}]},
            "not a user",
        ),
    ],
)
def test_bad_references_are_named(
    users: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        cfg(users, **extra)
    assert message in str(info.value)


# -- explain -----------------------------------------------------------------------------------


def test_explain_says_why() -> None:
    config = cfg(
        {"100": {"rules": [HOLIDAY_RULE, HOURS_RULE], "default_rule": AFTER_HOURS}}, dids=DIDS
    )
    lines = explain(config, CallFacts("+13125550000", "+12127881500", JULY4, from_trunk=True))
    text = "\n".join(lines)
    assert "treatment user 100" in text
    assert "rule 1 active" in text and "Independence Day" in text
    assert "caller-ID prefix: Sales" in text
    assert text.splitlines()[-1] == "path: voicemail 100"
    lines = explain(config, CallFacts("+13125550000", "+12127881500", TUESDAY_20, from_trunk=True))
    text = "\n".join(lines)
    assert "rule 1: time frame 'Holidays'" in text and "not active now" in text
    assert "default rule active" in text


def test_explain_disaster_and_bad_time() -> None:
    config = cfg({"100": {}}, dids=DIDS, disaster_plans=_disaster("enabled"))
    text = "\n".join(explain(config, CallFacts(None, "+12127881500", 0)))
    assert "plan 'Outage' is enabled" in text and "+15055551234" in text
    assert explain(config, CallFacts(None, "100", dt.datetime(2024, 1, 1))) == [
        "error: call time must be timezone-aware (or epoch seconds)"
    ]


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call(cfg({"100": {}}), at=dt.datetime(2024, 1, 1))


def test_plan_is_cached_per_config_and_new_config_takes_effect() -> None:
    config = cfg({"100": {}}, dids=DIDS, disaster_plans=_disaster("saved"))
    first = call(config, "+12127881500", from_trunk=True)
    again = call(config, "+12127881500", from_trunk=True)
    assert first.root is again.root  # pooled immutable nodes
    enabled = cfg({"100": {}}, dids=DIDS, disaster_plans=_disaster("enabled"))
    t = only(call(enabled, "+12127881500", from_trunk=True).root)
    assert t.ref == "+15055551234"


def test_explain_follows_the_assumed_outcomes() -> None:
    config = cfg({"100": {"default_rule": {"forward": {"when_busy": fwd("queue", "500")}}}})
    facts = CallFacts("101", "100", TUESDAY_20, registered={"100": 1})
    assert explain(config, facts)[-1] == "path: ring 100 (no answer) -> voicemail 100"
    busy = explain(config, facts, [Outcome.BUSY])
    assert busy[-1] == "path: ring 100 (busy) -> queue 500"
    assert "    * on busy: queue 500 [forwarded by 100] (forward when busy)" in busy
    with pytest.raises(ValueError, match="cannot assume a ring node ends 'answered'"):
        explain(config, facts, [Outcome.ANSWERED])


# -- monitor codes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialled", "mode"), [("*51101", "listen"), ("*52101", "whisper"), ("*53101", "barge")]
)
def test_a_monitor_code_and_extension_make_a_monitor_node(dialled: str, mode: str) -> None:
    flow = call(cfg({"100": {}, "101": {}}), dialled, caller="100")
    assert isinstance(flow.root, Application)
    assert flow.root.target == Target(TargetKind.MONITOR, "101", mode=mode)
    assert flow.describe() == [f"monitor 101 [{mode}]"]


def test_monitor_codes_are_the_tenants_and_not_for_calls_from_trunks() -> None:
    config = cfg({"100": {}, "101": {}}, monitor_codes={"listen": "*61"})
    assert only(call(config, "*61101").root).kind is TargetKind.MONITOR
    assert only(call(config, "*51101").root).kind is not TargetKind.MONITOR
    # From a carrier the code is just a number that is not in the inventory.
    assert_reject(call(config, "*61101", from_trunk=True).root, 404)
    # A code alone, or followed by something other than digits, monitors nobody.
    assert only(call(config, "*61").root).kind is not TargetKind.MONITOR


def test_a_monitor_target_needs_a_mode() -> None:
    with pytest.raises(ValueError, match="monitor mode"):
        Target(TargetKind.MONITOR, "101")


def test_feature_codes_are_application_nodes() -> None:
    """*97 (my mailbox, from a user's own phone), *98 (any mailbox: asked for) and, in a
    tenant with queues, *71-*73 (an agent's status) are application nodes of their own."""
    from config.models import Tenant
    from routing.engine import plan_call
    from routing.facts import CallFacts
    from routing.plan import Application, TargetKind

    tenant = Tenant.model_validate(
        {
            "name": "acme",
            "domain": "acme.test",
            "users": [{"extension": e, "password": f"secret-{e}-pw"} for e in ("101", "102")],
            "queues": [{"name": "sales", "extension": "8000", "agents": [{"extension": "101"}]}],
        }
    )

    def node(dialled: str, caller: str = "101") -> Application:
        flow = plan_call(tenant.routing, CallFacts(caller=caller, dialled=dialled, at=0.0))
        assert isinstance(flow.root, Application), flow.root
        return flow.root

    assert (node("*97").target.kind, node("*97").target.ref) == (TargetKind.VOICEMAIL_INBOX, "101")
    assert (node("*98").target.kind, node("*98").target.ref) == (TargetKind.VOICEMAIL_INBOX, "")
    assert (node("*73").target.kind, node("*73").target.ref) == (TargetKind.QUEUE_AGENT, "on_break")
