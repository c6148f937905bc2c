"""The callflow executor: runs the callflow tree routing built for a call.

One executor per call (``Call.flow``): it holds the state of the node being run (the ring
node's timers, delayed legs not yet started, the failures seen so far, the outcome) and
nothing else, so a call's whole progress through its tree is in one small object. The call
passes itself in on each event instead of being held, which keeps an ended call free of
reference cycles once its timers are off (``stop``).

- A ``Ring`` node starts its legs (delayed ones on a timer), runs the node's ring time and
  each leg's own timeout, and settles when no leg of it is running: busy if a leg said
  486/600, no answer if the time ran out or a leg said 480, offline if nothing could be
  rung, unreachable otherwise; a 6xx decline cancels the other legs and is REJECTED with
  its status (RFC 3261 16.7: nobody else is tried unless the tree has a branch for that
  very status; ``otherwise`` does not catch it).
- An ``Application`` node hands the call to its application through ``run_final`` (the
  registry in ``softswitch.calls.registry`` says which module runs each kind); when the
  application refuses the call (``Call.fail`` while the node runs) the node is REJECTED with
  the refusal's status. ``HANG_UP`` ends the call with its cause here.
- The outcome's branch, if the tree has one, is run next; else the call ends with the
  outcome's status. An answer ends the callflow (``stop``).

The executor talks down only through ``CallControl`` (the call manager) and up to the call
only through ``RoutedCall``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import structlog

from routing.plan import Application, Node, Outcome, Ring, Target, TargetKind

__all__ = ["CallControl", "CallflowExecutor", "RingingLeg", "RoutedCall"]

log = structlog.get_logger(__name__)


class RingingLeg(Protocol):
    """What the executor reads of an outbound leg."""

    cancel_pending: bool  # given up on (CANCEL sent or due): no longer holds its node up

    @property
    def active(self) -> bool: ...


_LegT = TypeVar("_LegT", bound=RingingLeg)
_CallT_contra = TypeVar("_CallT_contra", contravariant=True)


class RoutedCall(Protocol[_LegT]):
    """What the executor reads and sets of its call."""

    id: str
    direction: str  # set to "outbound" when an internal call's number cannot be dialled
    destination: str  # what the call was handed to, for the CDR
    from_trunk: bool
    outbound: list[_LegT]

    def fail(self, status: int, reason: str | None = None) -> None: ...


_CallT = TypeVar("_CallT", bound="RoutedCall[Any]")


class CallControl(Protocol[_CallT_contra, _LegT]):
    """The narrow interface down to the call layer (the call manager implements it)."""

    def ring_user(self, call: _CallT_contra, target: Target) -> list[_LegT]: ...

    def ring_external(self, call: _CallT_contra, target: Target) -> list[_LegT]: ...

    def cancel_leg(self, leg: _LegT) -> None: ...

    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Any: ...

    def run_final(self, call: _CallT_contra, target: Target) -> None: ...

    def screen(self, call: _CallT_contra, node: Ring) -> bool: ...


class CallflowExecutor(Generic[_CallT, _LegT]):
    """Runs one call's callflow tree; see the module docstring."""

    __slots__ = (
        "busy_seen",
        "control",
        "decline",
        "last_outcome",
        "no_answer_seen",
        "node",
        "pending_delays",
        "stopped",
        "timed_out",
        "timers",
        "unreachable_seen",
    )

    def __init__(self, control: CallControl[_CallT, _LegT]) -> None:
        self.control = control
        self.node: Node | None = None  # the node being run; None between nodes and after
        self.stopped = False  # answered, cancelled or ended: nothing more to run
        self.timers: list[Any] = []
        self.pending_delays = 0
        self.timed_out = False
        self.busy_seen = False
        self.no_answer_seen = False
        self.unreachable_seen = False
        self.decline = 0
        self.last_outcome: Outcome | None = None

    # ---------------------------------------------------------------- running nodes
    def run(self, call: _CallT, node: Node) -> None:
        """Run ``node`` of ``call``'s tree (the root, or the branch an outcome chose)."""
        if self.stopped:
            return
        self._clear_timers()
        if isinstance(node, Application):
            self._run_application(call, node)
        else:
            self._run_ring(call, node)

    def _run_application(self, call: _CallT, node: Application) -> None:
        target = node.target
        call.destination = f"{target.kind.value} {target.ref}".strip()
        if target.kind is TargetKind.HANG_UP:
            self.node = None
            call.fail(target.status, target.reason or None)
            return
        self.node = node
        self.control.run_final(call, target)

    def _run_ring(self, call: _CallT, node: Ring) -> None:
        if any(t.screening for t in node.targets) and self.control.screen(call, node):
            return  # the caller records a name first; the node rings after that
        self.node = node
        self.timed_out = self.busy_seen = self.no_answer_seen = False
        self.unreachable_seen = False
        self.decline = 0
        self.pending_delays = 0
        started_before = len(call.outbound)
        control = self.control
        if node.timeout is not None:
            self.timers.append(control.schedule(node.timeout, self._ring_timeout, call, node))
        for target in node.targets:
            if target.delay > 0:
                self.pending_delays += 1
                self.timers.append(
                    control.schedule(target.delay, self._start_delayed, call, node, target)
                )
            else:
                self._start_target(call, target)
        self.settle(call, no_legs=len(call.outbound) == started_before)

    def _start_delayed(self, call: _CallT, node: Ring, target: Target) -> None:
        if self.node is not node:
            return
        self.pending_delays -= 1
        self._start_target(call, target)
        self.settle(call)

    def _start_target(self, call: _CallT, target: Target) -> None:
        if target.kind is TargetKind.EXTERNAL or target.kind is TargetKind.EMERGENCY:
            legs = self.control.ring_external(call, target)
            if not legs:
                self.unreachable_seen = True  # no trunk, or no gateway could be tried
                if not call.from_trunk:
                    call.direction = "outbound"
        else:
            legs = self.control.ring_user(call, target)
        if target.timeout is not None and legs:
            self.timers.append(
                self.control.schedule(target.timeout, self._target_timeout, call, legs)
            )

    def _target_timeout(self, call: _CallT, legs: list[_LegT]) -> None:
        if self.stopped:
            return
        for leg in legs:
            if leg.active:
                self.no_answer_seen = True
                self.control.cancel_leg(leg)
        self.settle(call)

    def _ring_timeout(self, call: _CallT, node: Ring) -> None:
        if self.node is not node:
            return
        self.timed_out = True
        self.pending_delays = 0
        self._clear_timers()
        for leg in call.outbound:
            if leg.active:
                self.control.cancel_leg(leg)
        self.settle(call)

    # ---------------------------------------------------------------- leg events
    def leg_failed(self, call: _CallT, status: int) -> None:
        """A leg of the ring node ended with a final non-2xx ``status`` (not failed over)."""
        if status in (486, 600):
            self.busy_seen = True
        elif status == 480:
            self.no_answer_seen = True
        if status >= 600 and isinstance(self.node, Ring):
            # 6xx: nobody else is to be tried (RFC 3261 16.7 step 5).
            self.decline = status
            self.pending_delays = 0
            self._clear_timers()
            for other in call.outbound:
                if other.active:
                    self.control.cancel_leg(other)
        self.settle(call)

    def settle(self, call: _CallT, no_legs: bool = False) -> None:
        """Move on when nothing of the current ring node is still running."""
        node = self.node
        if self.stopped or not isinstance(node, Ring):
            return
        # A cancelled leg no longer holds the node up: its 487 may take a while.
        if self.pending_delays > 0 or any(
            leg.active and not leg.cancel_pending for leg in call.outbound
        ):
            return
        self._clear_timers()
        status = 0
        if self.decline:
            outcome, status = Outcome.REJECTED, self.decline
        elif self.busy_seen:
            outcome = Outcome.BUSY
        elif self.timed_out or self.no_answer_seen:
            outcome = Outcome.NO_ANSWER
        elif no_legs and not self.unreachable_seen:
            outcome = Outcome.OFFLINE
        else:
            outcome = Outcome.UNREACHABLE
        self._follow(call, node, outcome, status or outcome.status, None)

    def rejected(self, call: _CallT, status: int, reason: str | None) -> bool:
        """The running application node refused the call with ``status``: True when the
        tree has a branch for that (and it now runs), False to end the call."""
        node = self.node
        if self.stopped or not isinstance(node, Application):
            return False
        return self._follow(call, node, Outcome.REJECTED, status, reason)

    def _follow(
        self, call: _CallT, node: Node, outcome: Outcome, status: int, reason: str | None
    ) -> bool:
        """Take ``node``'s branch for ``outcome``; without one, a ring node ends the call with
        ``status`` (an application's refusal ends it by itself). True when a branch was taken.

        ``last_outcome`` (the CDR's disposition) keeps the ring outcome that led to an
        application refusing the call: busy, then no voicemail, is still a busy call.
        """
        self.node = None
        if isinstance(node, Ring) and outcome is Outcome.REJECTED:
            branch = node.branches.rejected(status)  # a decline: only its own branch
        else:
            branch = node.branches.get(outcome, status)
        if branch is None:
            if isinstance(node, Ring):
                self.last_outcome = outcome
                call.fail(status, reason)
            return False
        self.last_outcome = outcome
        log.debug("callflow_branch", call=call.id, outcome=outcome.value, status=status)
        self.run(call, branch)
        return True

    # ---------------------------------------------------------------- the end
    def stop(self) -> None:
        """The callflow is over (answered, cancelled or ended): timers off, nothing more
        runs."""
        self.stopped = True
        self.node = None
        self.pending_delays = 0
        self._clear_timers()

    def _clear_timers(self) -> None:
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()
