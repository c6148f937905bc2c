"""The callflow executor on hand-built trees, with a recording call control and a fake
clock: which legs ring, which branch each outcome takes, what the caller is answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from routing.plan import (
    Application,
    Branches,
    Node,
    Outcome,
    Ring,
    Target,
    TargetKind,
)
from softswitch.calls.apps import CallRefused
from softswitch.calls.executor import CallflowExecutor
from softswitch.calls.registry import ApplicationRegistry, not_available


class FakeLeg:
    def __init__(self, label: str) -> None:
        self.label = label
        self.active = True
        self.cancel_pending = False


class Timer:
    def __init__(self, at: float, callback: Callable[..., None], args: tuple[Any, ...]) -> None:
        self.at, self.callback, self.args = at, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeCall:
    """A call as the executor sees it; ``fail`` lets the running application node branch
    first, as ``Call.fail`` does."""

    def __init__(self, control: Control, from_trunk: bool = False) -> None:
        self.id = "call-1"
        self.direction = "internal"
        self.destination = ""
        self.from_trunk = from_trunk
        self.outbound: list[FakeLeg] = []
        self.failed: tuple[int, str | None] | None = None
        self.flow: CallflowExecutor[FakeCall, FakeLeg] = CallflowExecutor(control)

    def fail(self, status: int, reason: str | None = None) -> None:
        if self.failed is not None or self.flow.rejected(self, status, reason):
            return
        self.failed = (status, reason)
        self.flow.stop()


class Control:
    """Records what the executor asks of the call layer; ``reachable`` says who has legs."""

    def __init__(self, reachable: dict[str, int] | None = None) -> None:
        self.now = 0.0
        self.reachable = reachable if reachable is not None else {}
        self.timers: list[Timer] = []
        self.rung: list[str] = []
        self.cancelled: list[str] = []
        self.finals: list[Target] = []
        self.refuse: dict[TargetKind, int] = {}

    def _legs(self, call: FakeCall, target: Target) -> list[FakeLeg]:
        self.rung.append(target.ref)
        legs = [FakeLeg(f"{target.ref}/{i}") for i in range(self.reachable.get(target.ref, 0))]
        call.outbound.extend(legs)
        return legs

    def ring_user(self, call: FakeCall, target: Target) -> list[FakeLeg]:
        return self._legs(call, target)

    def ring_external(self, call: FakeCall, target: Target) -> list[FakeLeg]:
        return self._legs(call, target)

    def cancel_leg(self, leg: FakeLeg) -> None:
        self.cancelled.append(leg.label)
        leg.cancel_pending = True

    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer(self.now + delay, callback, args)
        self.timers.append(timer)
        return timer

    def run_final(self, call: FakeCall, target: Target) -> None:
        self.finals.append(target)
        status = self.refuse.get(target.kind)
        if status is not None:
            call.fail(status, "Refused")

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.at <= end]
            if not due:
                break
            timer = min(due, key=lambda t: t.at)
            self.timers.remove(timer)
            self.now = timer.at
            timer.callback(*timer.args)
        self.now = end


def user(ref: str, **kw: Any) -> Target:
    return Target(TargetKind.USER_DEVICES, ref, **kw)


def app(kind: TargetKind, ref: str, branches: Branches | None = None) -> Application:
    return Application(Target(kind, ref), branches=branches or Branches())


def hang_up(status: int, reason: str = "") -> Application:
    return Application(Target(TargetKind.HANG_UP, status=status, reason=reason))


VOICEMAIL = app(TargetKind.VOICEMAIL, "100")


def start(node: Node, reachable: dict[str, int], **kw: Any) -> tuple[Control, FakeCall]:
    control = Control(reachable)
    call = FakeCall(control, **kw)
    call.flow.run(call, node)
    return control, call


def end_leg(call: FakeCall, leg: FakeLeg, status: int) -> None:
    """A leg's final non-2xx, as ``Call.leg_failed`` reports it."""
    was_cancelled = leg.cancel_pending
    leg.active = False
    if was_cancelled:
        call.flow.settle(call)
    else:
        call.flow.leg_failed(call, status)


def test_ring_time_runs_out_and_the_no_answer_branch_runs() -> None:
    tree = Ring((user("100"), user("101")), 20, Branches(on_no_answer=VOICEMAIL))
    control, call = start(tree, {"100": 2, "101": 1})
    assert control.rung == ["100", "101"] and len(call.outbound) == 3
    control.advance(19)
    assert not control.cancelled and not control.finals
    control.advance(1)
    assert sorted(control.cancelled) == ["100/0", "100/1", "101/0"]
    # cancelled legs no longer hold the node up: the branch runs before their 487s
    assert control.finals == [VOICEMAIL.target]
    assert call.destination == "voicemail 100" and call.flow.last_outcome is Outcome.NO_ANSWER
    assert call.failed is None


@pytest.mark.parametrize(
    ("statuses", "outcome", "answer"),
    [
        ((486, 480), Outcome.BUSY, 486),
        ((480, 503), Outcome.NO_ANSWER, 480),
        ((503, 408), Outcome.UNREACHABLE, 480),
    ],
)
def test_each_leg_failing_gives_the_outcome(
    statuses: tuple[int, int], outcome: Outcome, answer: int
) -> None:
    _, call = start(Ring((user("100"), user("101"))), {"100": 1, "101": 1})
    for leg, status in zip(list(call.outbound), statuses, strict=True):
        end_leg(call, leg, status)
    assert call.flow.last_outcome is outcome
    assert call.failed == (answer, None)


def test_otherwise_takes_outcomes_without_a_branch_of_their_own() -> None:
    tree = Ring((user("100"),), branches=Branches(on_busy=hang_up(486), otherwise=VOICEMAIL))
    control, call = start(tree, {"100": 1})
    end_leg(call, call.outbound[0], 503)
    assert control.finals == [VOICEMAIL.target]
    control, call = start(tree, {"100": 1})
    end_leg(call, call.outbound[0], 600)
    assert call.failed == (600, None)  # busy everywhere: only a branch for 600 goes on


def test_nothing_to_ring_is_offline_and_an_unroutable_number_unreachable() -> None:
    offline = Ring((user("100"),), branches=Branches(on_offline=VOICEMAIL))
    control, call = start(offline, {})
    assert call.flow.last_outcome is Outcome.OFFLINE and control.finals == [VOICEMAIL.target]
    external = Ring((Target(TargetKind.EXTERNAL, "+12125550123"),))
    control, call = start(external, {})
    assert call.flow.last_outcome is Outcome.UNREACHABLE and call.failed == (480, None)
    assert call.direction == "outbound"
    control, call = start(external, {}, from_trunk=True)
    assert call.direction == "internal"


def test_a_decline_cancels_the_others_and_follows_its_rejected_branch() -> None:
    legs = (user("100"), user("101"))
    tree = Ring(legs, branches=Branches(on_rejected=((603, VOICEMAIL),)))
    control, call = start(tree, {"100": 1, "101": 1})
    end_leg(call, call.outbound[0], 603)
    assert control.cancelled == ["101/0"]
    assert control.finals == [VOICEMAIL.target]
    assert call.flow.last_outcome is Outcome.REJECTED
    # without a branch for its status a decline ends the call (RFC 3261 16.7)
    control, call = start(Ring(legs, branches=Branches(on_busy=VOICEMAIL)), {"100": 1, "101": 1})
    end_leg(call, call.outbound[1], 604)
    assert call.failed == (604, None) and not control.finals


def test_delayed_legs_start_late_and_not_after_the_ring_time() -> None:
    tree = Ring((user("100"), user("101", delay=10), user("102", delay=30)), 20)
    control, call = start(tree, {"100": 1, "101": 1, "102": 1})
    assert control.rung == ["100"]
    control.advance(10)
    assert control.rung == ["100", "101"]
    control.advance(10)
    assert control.rung == ["100", "101"]  # 102's delay is past the ring time
    assert call.failed == (480, None) and call.flow.last_outcome is Outcome.NO_ANSWER
    control.advance(60)
    assert control.rung == ["100", "101"]


def test_a_leg_timeout_cancels_only_that_leg() -> None:
    tree = Ring((user("100", timeout=5), user("101")), 20, Branches(on_no_answer=VOICEMAIL))
    control, call = start(tree, {"100": 1, "101": 1})
    control.advance(5)
    assert control.cancelled == ["100/0"] and not control.finals
    end_leg(call, call.outbound[1], 503)
    assert control.finals == [VOICEMAIL.target]  # a leg timed out: no answer


def test_an_application_refusal_follows_its_rejected_branch() -> None:
    fallback = Ring((user("101"),), 20)
    queue = app(TargetKind.QUEUE, "500", Branches(on_rejected=((480, fallback),)))
    control = Control({"101": 1})
    control.refuse[TargetKind.QUEUE] = 480
    call = FakeCall(control)
    call.flow.run(call, queue)
    assert [t.ref for t in control.finals] == ["500"]
    assert control.rung == ["101"] and call.failed is None
    assert call.flow.last_outcome is Outcome.REJECTED


def test_a_refusal_without_a_branch_keeps_the_ring_outcome() -> None:
    """Busy, then a voicemail that refuses the call: the caller hears the refusal and the
    call still counts as busy."""
    tree = Ring((user("100"),), branches=Branches(on_busy=VOICEMAIL))
    control = Control({"100": 1})
    control.refuse[TargetKind.VOICEMAIL] = 480
    call = FakeCall(control)
    call.flow.run(call, tree)
    end_leg(call, call.outbound[0], 486)
    assert call.failed == (480, "Refused")
    assert call.flow.last_outcome is Outcome.BUSY


def test_hang_up_ends_the_call_with_its_cause() -> None:
    tree = Ring((user("100"),), branches=Branches(on_offline=hang_up(404, "Not Found")))
    control, call = start(tree, {})
    assert call.failed == (404, "Not Found") and call.destination == "hang_up"
    assert not control.finals


def test_stop_turns_every_timer_off() -> None:
    tree = Ring((user("100"), user("101", delay=5)), 20, Branches(on_no_answer=VOICEMAIL))
    control, call = start(tree, {"100": 1, "101": 1})
    call.flow.stop()  # answered
    assert all(t.cancelled for t in control.timers)
    control.advance(60)
    assert control.rung == ["100"] and not control.finals and call.failed is None
    call.flow.run(call, VOICEMAIL)
    assert not control.finals


# -- the registry of application modules ------------------------------------------------------


def test_registry_answers_480_for_kinds_without_a_module() -> None:
    registry: ApplicationRegistry[object] = ApplicationRegistry()
    assert registry.available() == frozenset()
    for kind in (TargetKind.VOICEMAIL, TargetKind.QUEUE, TargetKind.AUTO_ATTENDANT):
        with pytest.raises(CallRefused) as refused:
            registry.application(object(), Target(kind, "500"))
        assert refused.value.status == 480


def test_registry_runs_the_registered_module() -> None:
    registry: ApplicationRegistry[object] = ApplicationRegistry()

    async def bridge(session: Any) -> None:
        return None

    def conference(call: object, target: Target) -> Any:
        return bridge if target.ref == "700" else None

    registry["conference"] = conference
    assert registry.available() == {TargetKind.CONFERENCE}
    assert registry.application(object(), Target(TargetKind.CONFERENCE, "700")) is bridge
    with pytest.raises(CallRefused):
        registry.application(object(), Target(TargetKind.CONFERENCE, "701"))
    registry.register(TargetKind.CONFERENCE, not_available)
    assert registry.available() == frozenset()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("valet", "'valet' is not a callflow node kind"),
        ("hang_up", "'hang_up' is not an application kind a module can run"),
        ("user_devices", "'user_devices' is not an application kind a module can run"),
    ],
)
def test_registry_refuses_what_is_not_an_application_kind(kind: str, message: str) -> None:
    registry: ApplicationRegistry[object] = ApplicationRegistry()
    with pytest.raises(ValueError, match=message):
        registry.register(kind, not_available)
