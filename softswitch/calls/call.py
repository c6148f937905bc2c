"""A call: the B2BUA between the caller's leg and the outbound legs it forks to.

The call executes the routing plan it was given (ring groups in parallel with delays and
timeouts, fallbacks on busy / no answer / unreachable / offline); it never decides routing.
All SIP I/O goes through the ``CallManager`` that owns it.
"""

from __future__ import annotations

import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from routing.plan import Final, Node, Outcome, RingGroup, Target, TargetKind
from softswitch.calls.cdr import q850_cause
from softswitch.calls.identity import CallerIdentity
from softswitch.calls.leg import Leg, LegState, response_sdp
from softswitch.sip.dialog import Dialog, DialogState
from softswitch.sip.message import SipRequest, SipResponse
from softswitch.sip.transaction import TxState
from storage.cdr import Cdr

if TYPE_CHECKING:
    from asyncio import TimerHandle

    from softswitch.calls.anchor import CallMedia
    from softswitch.calls.apps import AppCall, Application
    from softswitch.calls.manager import CallManager

__all__ = ["Call", "CallState"]

# An outbound INVITE still waiting for its final response.
_UNANSWERED = frozenset({TxState.CALLING, TxState.PROCEEDING})


class CallState(StrEnum):
    ROUTING = "routing"  # executing the plan: legs trying / ringing
    ANSWERED = "answered"
    ENDED = "ended"


class Call:
    """One call: ``inbound`` (the caller's UAS leg) and the ``outbound`` legs tried."""

    __slots__ = (
        "_state",
        "ack_deferred",
        "answered_at",
        "app",
        "busy_seen",
        "callee",
        "caller",
        "caller_name",
        "caller_number",
        "decline",
        "destination",
        "dialled",
        "direction",
        "domain",
        "early_leg",
        "ended_at",
        "from_trunk",
        "group",
        "group_timed_out",
        "id",
        "inbound",
        "last_outcome",
        "media",
        "mgr",
        "no_answer_seen",
        "originated",
        "outbound",
        "pending_delays",
        "ringing_sent",
        "session_interval",
        "session_timer",
        "started_at",
        "tenant",
        "timers",
        "transfer",
        "transferring",
        "trunk",
        "unreachable_seen",
        "winner",
    )

    def __init__(
        self,
        mgr: CallManager,
        call_id: str,
        tenant: str,
        domain: str,
        caller_number: str,
        caller_name: str,
        dialled: str,
    ) -> None:
        self.mgr = mgr
        self.id = call_id
        self.tenant = tenant
        self.domain = domain
        self.caller_number = caller_number
        self.caller_name = caller_name
        # Who the legs say is calling (PAI, privacy): set by the manager from the INVITE.
        self.caller = CallerIdentity(caller_number, caller_name, asserted=True)
        self.dialled = dialled
        self.direction = "internal"
        self.destination = ""
        self.callee = ""  # extension that answered
        self.inbound: Leg = None  # type: ignore[assignment]  # set by the manager
        self.outbound: list[Leg] = []
        self._state = CallState.ROUTING
        mgr.calls_in_setup += 1
        self.started_at = time.time()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.group: RingGroup | None = None
        self.timers: list[TimerHandle] = []
        self.pending_delays = 0
        self.group_timed_out = False
        self.busy_seen = False
        self.no_answer_seen = False
        self.unreachable_seen = False
        self.decline = 0
        self.last_outcome: Outcome | None = None
        self.ringing_sent = False
        self.early_leg: Leg | None = None
        self.ack_deferred = False
        self.winner: Leg | None = None
        self.trunk = ""  # the carrier trunk the call came in on or went out through
        self.from_trunk = False
        self.session_interval: int | None = None  # RFC 4028, when the caller asked for it
        self.session_timer: TimerHandle | None = None
        # Blind transfer (REFER): ``transfer`` on the new call that rings the transfer
        # target, ``transferring`` on the call being transferred while that rings.
        self.transfer: Any = None
        self.transferring: Any = None
        self.media: CallMedia | None = None  # anchored calls only
        self.app: AppCall | None = None  # a call answered by an application
        # A call the switch places itself (CallManager.originate): ``inbound`` stands for
        # the switch, and the application runs on the answering leg.
        self.originated: Application | None = None

    @property
    def state(self) -> CallState:
        return self._state

    @state.setter
    def state(self, value: CallState) -> None:
        # Leaving set-up (answered or ended) is counted here, whoever answers the call, for
        # the manager's overload control.
        if self._state is CallState.ROUTING and value is not CallState.ROUTING:
            self.mgr.calls_in_setup -= 1
        self._state = value

    # ---------------------------------------------------------------- plan execution
    def execute(self, node: Node) -> None:
        """Carry out one node of the routing plan."""
        if self.state is not CallState.ROUTING:
            return
        if isinstance(node, Final):
            target = node.target
            self.destination = f"{target.kind.value} {target.ref}".strip()
            if target.kind is TargetKind.REJECT:
                self.fail(target.status, target.reason or None)
            else:
                self.mgr.run_final(self, target)
            return
        self._clear_timers()
        self.group = node
        self.group_timed_out = self.busy_seen = self.no_answer_seen = False
        self.unreachable_seen = False
        self.pending_delays = 0
        started_before = len(self.outbound)
        if node.timeout is not None:
            self.timers.append(self.mgr.schedule(node.timeout, self._group_timeout, node))
        for target in node.targets:
            if target.delay > 0:
                self.pending_delays += 1
                self.timers.append(
                    self.mgr.schedule(target.delay, self._start_delayed, node, target)
                )
            else:
                self._start_target(target)
        self._group_settled(no_legs=len(self.outbound) == started_before)

    def _start_delayed(self, group: RingGroup, target: Target) -> None:
        if self.group is not group or self.state is not CallState.ROUTING:
            return
        self.pending_delays -= 1
        self._start_target(target)
        self._group_settled()

    def _start_target(self, target: Target) -> None:
        if target.kind is TargetKind.EXTERNAL:
            legs = self.mgr.ring_external(self, target)
            if not legs:
                self.unreachable_seen = True  # no trunk, or no gateway could be tried
                if not self.from_trunk:
                    self.direction = "outbound"
        else:
            legs = self.mgr.ring_user(self, target)
        if target.timeout is not None and legs:
            self.timers.append(self.mgr.schedule(target.timeout, self._target_timeout, legs))

    def _target_timeout(self, legs: list[Leg]) -> None:
        for leg in legs:
            if leg.active and leg.state is not LegState.ANSWERED:
                self.no_answer_seen = True
                self.mgr.cancel_leg(leg)
        self._group_settled()

    def _group_timeout(self, group: RingGroup) -> None:
        if self.group is not group or self.state is not CallState.ROUTING:
            return
        self.group_timed_out = True
        self.pending_delays = 0
        self._clear_timers()
        for leg in self.outbound:
            if leg.active:
                self.mgr.cancel_leg(leg)
        self._group_settled()

    def _group_settled(self, no_legs: bool = False) -> None:
        """Move on when nothing of the current ring group is still running."""
        if self.state is not CallState.ROUTING or self.group is None:
            return
        # A cancelled leg no longer holds the group up: its 487 may take a while.
        if self.pending_delays > 0 or any(
            leg.active and not leg.cancel_pending for leg in self.outbound
        ):
            return
        self._clear_timers()
        if self.decline:
            self.fail(self.decline)
            return
        if self.busy_seen:
            outcome = Outcome.BUSY
        elif self.group_timed_out or self.no_answer_seen:
            outcome = Outcome.NO_ANSWER
        elif no_legs and not self.unreachable_seen:
            outcome = Outcome.OFFLINE
        else:
            outcome = Outcome.UNREACHABLE
        self.last_outcome = outcome
        fallback = self.group.fallbacks.get(outcome)
        self.group = None
        if fallback is not None:
            self.execute(fallback)
        else:
            self.fail(outcome.status)

    def _clear_timers(self) -> None:
        for handle in self.timers:
            handle.cancel()
        self.timers.clear()

    # ---------------------------------------------------------------- outbound leg events
    def leg_provisional(self, leg: Leg, response: SipResponse) -> None:
        if leg.state is LegState.TRYING:
            leg.state = LegState.RINGING
        if leg.cancel_pending:
            if not leg.cancel_sent:
                self.mgr.send_cancel(leg)
            return
        if self.state is not CallState.ROUTING or response.status == 100:
            return
        sdp = response_sdp(response)
        if sdp and self.early_leg in (None, leg):
            self.early_leg = leg
            self.mgr.relay_provisional(self, response.status, response.reason, sdp, leg)
        elif not self.ringing_sent and self.early_leg is None:
            self.ringing_sent = True
            self.mgr.relay_provisional(self, 180, "Ringing", b"", leg)

    def leg_answered(self, leg: Leg, response: SipResponse) -> None:
        """A 2xx on an outbound leg: the first wins, any later one is ACKed and hung up."""
        leg.dialog = Dialog.from_uac(leg.invite, response, self.mgr.contact_for(leg.peer))
        leg.status = response.status
        if self.state is not CallState.ROUTING:
            # A late 2xx from a losing branch (it crossed our CANCEL): ACK it, then BYE.
            leg.reason = "answered late"
            self.mgr.ack_and_bye(leg)
            if self.state is CallState.ENDED:
                self.release()
            return
        leg.state = LegState.ANSWERED
        leg.answered_at = time.time()
        self._clear_timers()
        self.state = CallState.ANSWERED
        self.answered_at = leg.answered_at
        self.winner = leg
        self.callee = leg.label
        self.destination = leg.label
        for other in self.outbound:
            if other is not leg and other.active:
                self.mgr.cancel_leg(other, elsewhere=True)
        # A transfer offers no SDP to the target: its 200 carries the offer (RFC 3725).
        # Anchored, every branch got the switch's own offer: its 2xx is the answer.
        self.ack_deferred = self.media is None and (
            not self.inbound.invite.body or self.transfer is not None
        )
        if not self.ack_deferred:
            self.mgr.send_ack(leg)
        self.mgr.answer_caller(self, leg, response)
        self.mgr.mark_busy(self, leg.label, +1)

    def leg_failed(self, leg: Leg, status: int, reason: str) -> None:
        """A final non-2xx (or a timeout / transport failure) on an outbound leg."""
        was_cancelled = leg.cancel_pending
        leg.state = LegState.ENDED
        if leg.ended_at is None:
            leg.ended_at = time.time()
        leg.status = status
        leg.reason = reason
        if self.state is not CallState.ROUTING or was_cancelled:
            self._group_settled()
            if self.state is CallState.ENDED:
                self.release()  # the branch that held the ended call up has settled
            return
        if (status == 408 or 500 <= status < 600) and self.mgr.failover(leg):
            return  # the trunk's next gateway is being tried
        if status in (486, 600):
            self.busy_seen = True
        elif status in (408, 480):
            self.no_answer_seen = status == 480 or self.no_answer_seen
        if status >= 600:
            # 6xx: nobody else is to be tried (RFC 3261 16.7 step 5).
            self.decline = status
            self.pending_delays = 0
            self._clear_timers()
            for other in self.outbound:
                if other.active:
                    self.mgr.cancel_leg(other)
        self._group_settled()

    # ---------------------------------------------------------------- the caller
    def caller_cancelled(self) -> None:
        """The caller's CANCEL: every branch is cancelled, the caller gets 487."""
        if self.state is not CallState.ROUTING:
            return
        self._clear_timers()
        self.pending_delays = 0
        for leg in self.outbound:
            if leg.active:
                self.mgr.cancel_leg(leg)
        self.mgr.reject_caller(self, 487, "Request Terminated")
        self.end("CANCELLED", 487)

    def fail(self, status: int, reason: str | None = None) -> None:
        """Answer the caller with a final error and end the call."""
        if self.state is not CallState.ROUTING:
            return
        for leg in self.outbound:
            if leg.active:
                self.mgr.cancel_leg(leg)
        self.mgr.reject_caller(self, status, reason)
        if status in (486, 600, 603) or self.last_outcome is Outcome.BUSY:
            disposition = "BUSY"
        elif self.last_outcome is Outcome.NO_ANSWER:
            disposition = "NO ANSWER"
        else:
            disposition = "FAILED"
        self.end(disposition, status)

    def end(self, disposition: str, status: int) -> None:
        """Finish the call: timers off, dialog index cleaned, the CDR written."""
        if self.state is CallState.ENDED:
            return
        was_answered = self.state is CallState.ANSWERED
        self.state = CallState.ENDED
        self._clear_timers()
        if self.session_timer is not None:
            self.session_timer.cancel()
            self.session_timer = None
        self.ended_at = time.time()
        if was_answered and self.callee:
            self.mgr.mark_busy(self, self.callee, -1)
        cdr = self._cdr(disposition, status)
        cdr.mos, cdr.quality, cdr.recordings = self.mgr.media_ended(self)
        self.mgr.call_ended(self, cdr)

    def _cdr(self, disposition: str, status: int) -> Cdr:
        cause, name = q850_cause(status, no_answer=disposition == "NO ANSWER")
        assert self.ended_at is not None
        return Cdr(
            call_id=self.id,
            sip_call_id=self.inbound.call_id,
            tenant=self.tenant,
            direction=self.direction,
            caller_number=self.caller_number,
            caller_name=self.caller_name,
            dialled=self.dialled,
            destination=self.destination,
            trunk=self.trunk,
            start=self.started_at,
            answer=self.answered_at,
            end=self.ended_at,
            disposition=disposition,
            sip_code=status,
            q850_cause=cause,
            q850_name=name,
            legs=[leg.record() for leg in self.outbound],
        )

    def release(self) -> None:
        """Break the call <-> leg <-> transaction cycles once the call is over.

        Transactions linger for Timers D/L/M (32 s) holding their leg; were the leg still
        tied to the call, every ended call would stay alive that long and then be left to the
        cyclic collector, whose passes over tens of thousands of such calls stall the loop.
        Released, an ended call is freed by reference counting alone. A call that may still
        hear from a branch (a 2xx crossing our CANCEL), or that is part of a transfer or runs
        an application, keeps its ties.
        """
        if (
            self.transfer is not None
            or self.transferring is not None
            or self.app is not None
            or self.originated is not None
        ):
            return
        for leg in self.outbound:
            tx = leg.invite_tx
            if tx is not None and tx.state in _UNANSWERED:
                return
        for leg in (self.inbound, *self.outbound):
            if leg is not None and leg.call is self:
                leg.invite_tx = None
                leg.media = None  # its endpoint's callbacks hold the leg
        self.inbound = None  # type: ignore[assignment]
        self.outbound = []
        self.winner = self.early_leg = None

    def other(self, leg: Leg) -> Leg | None:
        """The leg bridged to ``leg`` in an answered call."""
        if leg is self.inbound:
            return self.winner
        return self.inbound if leg is self.winner else None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state.value, "legs": len(self.outbound)}


def invite_has_sdp(request: SipRequest) -> bool:
    return bool(request.body) and "application/sdp" in (request.get("Content-Type") or "").lower()


__all__ += ["DialogState", "invite_has_sdp"]
