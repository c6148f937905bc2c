"""An application hands its answered caller on to another destination (``AppCall.connect``).

The auto attendant's keys, voicemail's ``0`` to the operator, a queue offering its caller
to an agent: the caller is already answered by an application and is to reach a user
(with their answering rules), a conference, an outside number or another application.
Like a blind transfer (``softswitch.calls.transfer``) the caller's leg moves to a new call
that runs the destination's callflow tree; unlike one, nobody else is told and, when the
destination does not take the call, the caller goes back to the application with the
outcome (busy, no answer, failed) so that it can go on.

- a ringing leg that answers is bridged to the caller's anchored endpoint, and the
  application's call ends (its session's ``ended`` is set: the application returns);
- an application node of the destination (voicemail, a conference, another attendant)
  runs on the caller's endpoint without a second answer, and likewise ends the first
  application's call;
- the caller hanging up while the destination rings ends both calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog

from config.models import Tenant
from routing.plan import RINGING_KINDS, Application, Node, Outcome, Ring, Target
from softswitch.calls.admission import Admission
from softswitch.calls.call import Call, CallLayer, CallState, Leg
from softswitch.calls.leg import LegState, response_sdp
from softswitch.calls.planning import CallPlanner
from softswitch.sip.message import SipResponse, new_call_id

__all__ = ["ConnectOutcome", "Connected", "Destination", "Handoff", "Handoffs", "as_node"]

log = structlog.get_logger(__name__)

#: What an application connects its caller to: a number or extension dialled as the
#: tenant's own (routed with its answering rules), a callflow target, or a callflow node.
Destination = str | Target | Node


class ConnectOutcome(StrEnum):
    """How handing the caller on ended."""

    ANSWERED = "answered"  # bridged to whoever answered, or taken by an application node
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"  # unreachable, refused, nothing to ring, or the caller hung up


@dataclass(frozen=True, slots=True)
class Connected:
    """The result of ``AppCall.connect``: the outcome and the SIP status behind it."""

    outcome: ConnectOutcome
    status: int = 200
    reason: str = ""
    answered_by: str = ""  # the ref of the ring target that answered (an extension), if any

    @property
    def answered(self) -> bool:
        return self.outcome is ConnectOutcome.ANSWERED


def as_node(destination: Target | Node) -> Node:
    """A callflow node for ``destination`` (a ringing target becomes a one-leg ring node)."""
    if isinstance(destination, (Ring, Application)):
        return destination
    if destination.kind in RINGING_KINDS:
        return Ring((destination,), destination.timeout)
    return Application(destination)


@dataclass(slots=True, eq=False)
class Handoff:
    """``caller`` (the leg of ``origin``, an application's call) moved to ``call``, which
    runs the destination's callflow; ``done`` gets the result."""

    origin: Call
    caller: Leg
    call: Call
    done: asyncio.Future[Connected]
    silence: Callable[[], None]  # stops what the application plays to the caller
    timer: Any = None
    early: bool = False  # the caller hears a branch's early media
    caller_voice: Any = None  # the caller's recorded name, for screened legs


class Handoffs:
    """Carries out ``AppCall.connect`` (see the module docstring)."""

    def __init__(
        self,
        *,
        layer: CallLayer,
        admission: Admission,
        planner: CallPlanner,
        tenants: dict[str, Tenant],
        calls: dict[str, Call],
        counters: dict[str, int],
    ) -> None:
        self.layer = layer
        self.admission = admission
        self.planner = planner
        self.tenants = tenants
        self.calls = calls
        self.counters = counters

    def start(
        self,
        origin: Call,
        destination: Destination,
        done: asyncio.Future[Connected],
        silence: Callable[[], None],
        timeout: float | None = None,
        caller_voice: Any = None,
    ) -> None:
        """Run ``destination``'s callflow for ``origin``'s answered caller; ``silence`` stops
        the application's playback when the caller is bridged to a branch."""
        caller = origin.inbound
        if origin.originated is not None and origin.winner is not None:
            caller = origin.winner  # a call the switch placed: its party answered a leg of ours
        tenant = self.tenants.get(origin.tenant)
        if (
            origin.state is not CallState.ANSWERED
            or caller is None
            or caller.state is LegState.ENDED
            or caller.call is not origin
            or tenant is None
        ):
            _resolve(done, Connected(ConnectOutcome.FAILED, 481, "Call Does Not Exist"))
            return
        dialled = destination if isinstance(destination, str) else _describe(destination)
        new = Call(
            self.layer,
            new_call_id(),
            origin.tenant,
            origin.domain,
            origin.caller_number,
            origin.caller_name,
            dialled,
            origin.media_path,
        )
        new.caller = origin.caller
        new.direction = origin.direction
        handoff = Handoff(origin, caller, new, done, silence, caller_voice=caller_voice)
        new.transfer = handoff  # the leg moved here from another call, as in a transfer
        caller.call = new
        new.inbound = caller
        self.calls[new.id] = new
        self.admission.count(new.tenant)
        self.planner.mark_busy(new.tenant, new.caller_number, +1)
        self.counters["calls"] += 1
        self.counters["handoffs"] = self.counters.get("handoffs", 0) + 1
        log.info("handoff", call=origin.id, to=dialled, new_call=new.id)
        if timeout is not None:
            handoff.timer = self.layer.schedule(timeout, self.give_up, handoff)
        if isinstance(destination, str):
            # The application dials on behalf of the tenant: extensions and services by
            # their number, outside numbers through the outbound route.
            caller_key = "anonymous" if origin.caller.private else origin.caller_number
            plan = self.planner.plan(new, tenant, caller_key)
            if plan is None:
                return  # failed with 500 already
            node = plan.root
        else:
            node = as_node(destination)
        new.execute(node)

    def give_up(self, handoff: Handoff) -> None:
        """The application's time for the destination ran out: every leg is cancelled
        and the caller goes back to the application (no answer)."""
        call = handoff.call
        if call.state is not CallState.ROUTING:
            return
        call.flow.stop()
        for leg in call.outbound:
            if leg.active:
                self.layer.cancel_leg(leg)
        call.flow.last_outcome = Outcome.NO_ANSWER
        call.fail(480, "No Answer")

    # ---------------------------------------------------------------- what the new call does
    def ringing(self, handoff: Handoff, leg: Leg, sdp: bytes) -> None:
        """A branch rings; with early media (a carrier's announcement or ringback) the
        caller hears it instead of the application's ringback."""
        if not sdp or handoff.early:
            return
        handoff.early = True
        handoff.silence()
        handoff.call.media_path.early(handoff.call, leg, sdp)

    def answered(self, handoff: Handoff, leg: Leg, response: SipResponse) -> None:
        """A leg of the destination answered: bridged to the caller."""
        call = handoff.call
        handoff.silence()
        call.media_path.transfer_answered(call, handoff.caller, leg, response_sdp(response))
        self._taken(handoff, leg.label)

    def taken_by_application(self, handoff: Handoff) -> None:
        """An application node of the destination runs on the caller (already answered)."""
        self._taken(handoff)

    def _taken(self, handoff: Handoff, answered_by: str = "") -> None:
        call = handoff.call
        call.transfer = None  # from now on an ordinary answered call
        call.answered_at = call.answered_at or time.time()
        self._cancel_timer(handoff)
        _resolve(handoff.done, Connected(ConnectOutcome.ANSWERED, 200, "OK", answered_by))
        handoff.origin.end("ANSWERED", 200)  # the application's part of the call is over

    def failed(self, handoff: Handoff, status: int, reason: str | None) -> None:
        """The destination did not take the call: the caller goes back to the application
        with the outcome (or, gone, ends the application's call too)."""
        call, origin, caller = handoff.call, handoff.origin, handoff.caller
        call.transfer = None
        self._cancel_timer(handoff)
        outcome = call.flow.last_outcome
        if caller.state is LegState.ENDED or origin.state is not CallState.ANSWERED:
            result = Connected(ConnectOutcome.FAILED, 487, "Caller Hung Up")
            caller.call = origin
            _resolve(handoff.done, result)
            origin.end("ANSWERED", 200)
            return
        caller.call = origin
        if status in (486, 600) or outcome is Outcome.BUSY:
            result = Connected(ConnectOutcome.BUSY, status, reason or "Busy Here")
        elif outcome is Outcome.NO_ANSWER:
            result = Connected(ConnectOutcome.NO_ANSWER, status, reason or "No Answer")
        else:
            result = Connected(ConnectOutcome.FAILED, status, reason or "")
        log.info("handoff_failed", call=origin.id, outcome=result.outcome.value, status=status)
        _resolve(handoff.done, result)

    def _cancel_timer(self, handoff: Handoff) -> None:
        if handoff.timer is not None:
            handoff.timer.cancel()
            handoff.timer = None


def _resolve(done: asyncio.Future[Connected], result: Connected) -> None:
    if not done.done():
        done.set_result(result)


def _describe(destination: Target | Node) -> str:
    target = destination if isinstance(destination, Target) else None
    if isinstance(destination, Application):
        target = destination.target
    elif isinstance(destination, Ring):
        target = destination.targets[0]
    assert target is not None
    return target.ref or target.kind.value
