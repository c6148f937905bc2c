"""Ring groups: the configuration model and the ring nodes routing makes of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from config.ringgroups import RingGroup, RingStrategy
from config.routing import TenantRouting
from routing.engine import plan_call, ring_group_node
from routing.facts import CallFacts
from routing.plan import Application, Ring, TargetKind

AT = dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)


def routing(*groups: dict[str, Any], **extra: Any) -> TenantRouting:
    data: dict[str, Any] = {
        "users": {"100": {}, "101": {}, "102": {"voicemail": True}},
        "queues": ["500"],
        "ring_groups": list(groups),
    }
    data.update(extra)
    return TenantRouting.model_validate(data)


def group(**kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Front desk",
        "extension": "600",
        "members": [
            {"target": "100", "timeout": 10},
            {"target": "101", "delay": 5, "timeout": 15},
            {"kind": "number", "target": "+13125550101", "timeout": 20},
        ],
    }
    data.update(kw)
    return data


def plan(config: TenantRouting, busy: frozenset[str] = frozenset(), **kw: Any) -> Any:
    registered = kw.pop("registered", {"100": 1, "101": 1, "102": 1})
    facts = CallFacts("+13125550000", "600", AT, registered=registered, busy=busy, **kw)
    return plan_call(config, facts)


def test_simultaneous_rings_every_member_with_its_delay_and_timeout() -> None:
    flow = plan(routing(group(caller_id_prefix="Desk: ")))
    root = flow.root
    assert isinstance(root, Ring)
    legs = [(t.kind, t.ref, t.delay, t.timeout) for t in root.targets]
    assert legs == [
        (TargetKind.USER_DEVICES, "100", 0, 10),
        (TargetKind.USER_DEVICES, "101", 5, 20),
        (TargetKind.EXTERNAL, "+13125550101", 0, 20),
    ]
    assert root.timeout == 20
    assert flow.caller_id_prefix == "Desk: "
    assert all(t.diverted_by == ("600",) for t in root.targets)
    # Nobody answers and no final destination: 480.
    end = root.branches.on_no_answer
    assert isinstance(end, Application) and end.target.status == 480


def test_sequence_chains_one_member_after_another_to_the_final_destination() -> None:
    config = routing(
        group(strategy="sequence", final={"kind": "voicemail", "target": "102"}),
    )
    node = plan(config).root
    seen = []
    while isinstance(node, Ring):
        (target,) = node.targets
        seen.append((target.ref, target.delay, node.timeout))
        assert node.branches.on_busy is node.branches.on_no_answer
        node = node.branches.on_no_answer
    assert seen == [("100", 0, 10), ("101", 5, 20), ("+13125550101", 0, 20)]
    assert isinstance(node, Application)
    assert node.target.kind is TargetKind.VOICEMAIL and node.target.ref == "102"


def test_busy_and_offline_members_are_not_rung() -> None:
    config = routing(group())
    root = plan(config, busy=frozenset({"100"}), registered={"101": 0}).root
    assert isinstance(root, Ring)
    assert [t.ref for t in root.targets] == ["+13125550101"]
    # Without skip_busy the member on a call rings too.
    root = plan(routing(group(skip_busy=False)), busy=frozenset({"100"})).root
    assert [t.ref for t in root.targets] == ["100", "101", "+13125550101"]


def test_no_member_can_ring_goes_straight_to_the_final_destination() -> None:
    config = routing(group(members=[{"target": "100"}], final={"kind": "queue", "target": "500"}))
    root = plan(config, registered={}).root
    assert isinstance(root, Application) and root.target.kind is TargetKind.QUEUE


def test_final_destination_to_a_user_follows_their_rules() -> None:
    config = routing(group(members=[{"target": "100"}], final={"kind": "user", "target": "101"}))
    root = plan(config).root
    assert isinstance(root, Ring)
    follow = root.branches.on_no_answer
    assert isinstance(follow, Ring)
    assert follow.targets[0].ref == "101" and follow.targets[0].diverted_by == ("600",)


def test_explain_lists_the_group() -> None:
    text = "\n".join(plan(routing(group(strategy="sequence"))).describe())
    assert (
        "ring group 'Front desk' member 1" in text and "user_devices 101 [after 5s, for 20s" in text
    )


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"extension": "100"}, "ring_groups.0.extension"),
        ({"extension": "500"}, "ring_groups.0.extension"),
        ({"members": [{"target": "109"}]}, "ring_groups.0.members.0.target"),
        ({"final": {"kind": "voicemail", "target": "109"}}, "ring_groups.0.final.target"),
    ],
)
def test_cross_checks_name_the_field(bad: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError, match=where.replace(".", r"[.\[\]]+")):
        routing(group(**bad))


def test_duplicate_groups_and_members_are_refused() -> None:
    with pytest.raises(ValidationError, match="duplicate ring group"):
        routing(group(), group(extension="601"))
    with pytest.raises(ValidationError, match="listed twice"):
        RingGroup.model_validate(group(members=[{"target": "100"}, {"target": "100"}]))
    with pytest.raises(ValidationError):
        RingGroup.model_validate(group(members=[]))
    with pytest.raises(ValidationError):
        RingGroup.model_validate(group(members=[{"kind": "number", "target": "nope"}]))


def test_ring_time() -> None:
    g = RingGroup.model_validate(group())
    assert g.ring_time() == 20
    seq = g.model_copy(update={"strategy": RingStrategy.SEQUENCE})
    assert seq.ring_time() == 50


def test_a_did_and_a_user_forward_reach_the_group() -> None:
    to_group = {"kind": "ring_group", "target": "600"}
    config = routing(
        group(members=[{"target": "100"}]),
        dids=[{"number": "+14155550100", "treatment": "ring_group", "destination": "600"}],
        users={
            "100": {},
            "101": {"default_rule": {"forward": {"always": to_group}}},
            "102": {"voicemail": True},
        },
    )
    facts = CallFacts("+13125550000", "+14155550100", AT, registered={"100": 1}, from_trunk=True)
    root = plan_call(config, facts).root
    assert isinstance(root, Ring) and root.targets[0].ref == "100"
    root = plan_call(config, CallFacts("+13125550000", "101", AT, registered={"100": 1})).root
    assert isinstance(root, Ring)
    assert root.targets[0].diverted_by == ("101", "600")
    with pytest.raises(ValidationError, match="unknown ring_group destination"):
        routing(dids=[{"number": "+14155550100", "treatment": "ring_group", "destination": "6"}])


def test_groups_forwarding_to_each_other_are_cut() -> None:
    config = routing(
        group(members=[{"target": "100"}], final={"kind": "ring_group", "target": "601"}),
        group(
            name="Back office",
            extension="601",
            members=[{"target": "101"}],
            final={"kind": "ring_group", "target": "600"},
        ),
    )
    flow = plan(config)
    kinds = [(d, type(n).__name__) for d, _, n in flow.walk()]
    assert len(kinds) < 10
    assert any("forwarding loop" in str(d) for d in flow.decisions)


@pytest.mark.parametrize(
    "settings", [{"announcement": "rg-welcome"}, {"ringback": "music"}], ids=["announced", "music"]
)
def test_announcement_or_music_answers_first_then_rings_the_members(
    settings: dict[str, Any],
) -> None:
    config = routing(group(caller_id_prefix="Desk: ", **settings))
    flow = plan(config, busy=frozenset({"100"}))
    root = flow.root
    # The switch answers the caller first: the ring-group application runs.
    assert isinstance(root, Application)
    assert (root.target.kind, root.target.ref) == (TargetKind.RING_GROUP, "600")
    assert flow.caller_id_prefix == "Desk: "
    # What the application connects the caller to: the members (busy 100 skipped).
    facts = CallFacts(
        "+13125550000", "600", AT, registered={"100": 1, "101": 1}, busy=frozenset({"100"})
    )
    node = ring_group_node(config, facts, "600")
    assert isinstance(node, Ring)
    assert [t.ref for t in node.targets] == ["101", "+13125550101"]
    assert ring_group_node(config, facts, "601") is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [({"announcement": "Bad Name!"}, "announcement"), ({"ringback": "silence"}, "ringback")],
)
def test_bad_group_audio_is_refused_with_the_field(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        routing(group(**bad))
    assert message in str(refused.value)
