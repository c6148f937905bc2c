"""The callflow tree's own rules: branches by outcome, node checks, the printed tree."""

from __future__ import annotations

import pytest

from routing.plan import (
    Application,
    Branches,
    Callflow,
    Outcome,
    Ring,
    Target,
    TargetKind,
)

VOICEMAIL = Application(Target(TargetKind.VOICEMAIL, "100"), "voicemail")
OPERATOR = Ring((Target(TargetKind.USER_DEVICES, "101"),), 20, label="operator")
BUSY = Application(Target(TargetKind.HANG_UP, status=486, reason="Busy Here"))


def test_branch_lookup_by_outcome_status_and_otherwise() -> None:
    branches = Branches(on_busy=BUSY, on_rejected=((404, OPERATOR),), otherwise=VOICEMAIL)
    assert branches.get(Outcome.BUSY) is BUSY
    assert branches.get(Outcome.NO_ANSWER) is VOICEMAIL
    assert branches.get(Outcome.OFFLINE) is VOICEMAIL
    assert branches.get(Outcome.REJECTED, 404) is OPERATOR
    assert branches.get(Outcome.REJECTED, 403) is VOICEMAIL
    assert branches.rejected(403) is None and branches.rejected(404) is OPERATOR
    assert branches.get(Outcome.ANSWERED) is None  # an answer ends the callflow
    assert Branches().get(Outcome.BUSY) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Branches(on_rejected=((200, VOICEMAIL),)), "3xx-6xx status, got 200"),
        (
            lambda: Branches(on_rejected=((404, VOICEMAIL), (404, OPERATOR))),
            "one rejected branch per status",
        ),
        (lambda: Ring(()), "at least one target"),
        (lambda: Ring((Target(TargetKind.QUEUE, "500"),)), "queue does not ring"),
        (lambda: Application(Target(TargetKind.EXTERNAL, "+1")), "external rings"),
        (
            lambda: Application(BUSY.target, branches=Branches(otherwise=VOICEMAIL)),
            "hang up ends the call",
        ),
        (lambda: Target(TargetKind.HANG_UP, status=200), "4xx-6xx status, got 200"),
    ],
)
def test_malformed_nodes_are_refused(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


def test_the_tree_prints_each_branch_once() -> None:
    """Outcomes sharing one node are named together; rejected and otherwise last."""
    root = Ring(
        (Target(TargetKind.USER_DEVICES, "100"), Target(TargetKind.EXTERNAL, "+1212", delay=5)),
        20,
        Branches(
            on_busy=BUSY,
            on_no_answer=VOICEMAIL,
            on_unreachable=VOICEMAIL,
            on_rejected=((603, VOICEMAIL),),
            otherwise=OPERATOR,
        ),
        "user 100",
    )
    flow = Callflow(root)
    assert flow.describe() == [
        "ring 20s: user_devices 100; external +1212 [after 5s] (user 100)",
        "  on busy: hang up 486 Busy Here",
        "  on no answer, unreachable: voicemail 100 (voicemail)",
        "  on rejected 603: voicemail 100 (voicemail)",
        "  on anything else: ring 20s: user_devices 101 (operator)",
    ]
    assert [t.ref for t in flow.targets()] == ["100", "+1212", "", "100", "100", "101"]
    assert flow.depth == 1


def test_outcome_statuses() -> None:
    assert [o.status for o in (Outcome.BUSY, Outcome.NO_ANSWER, Outcome.OFFLINE)] == [486, 480, 480]
    with pytest.raises(ValueError, match="rejected has no status of its own"):
        _ = Outcome.REJECTED.status
