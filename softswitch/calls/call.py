"""A call: the B2BUA between the caller's leg and the outbound legs it forks to, and its
``Leg``s (one module: each refers to the other).

The call runs the callflow tree routing built for it through its ``CallflowExecutor``
(``flow``); it never decides routing. It talks down through two narrow interfaces declared
here and implemented above it: ``CallLayer`` (SIP I/O, leg set-up, the switch's
bookkeeping: the ``CallManager``) and ``MediaPath`` (anchored or pass-through media, chosen
once per call: ``mediapath``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from config.security_media import SrtpPolicy
from routing.plan import Node, Outcome, Ring, Target
from softswitch.calls.cdr import q850_cause
from softswitch.calls.executor import CallflowExecutor
from softswitch.calls.identity import CallerIdentity
from softswitch.calls.leg import LegState, response_sdp
from softswitch.calls.mediastate import CallMedia
from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, SipResponse
from softswitch.sip.session import InviteSession, OutgoingInvite
from softswitch.sip.transaction import ClientTransaction, ServerTransaction, TxState
from storage.cdr import Cdr

if TYPE_CHECKING:
    from media.control import MediaControl
    from media.negotiation import NegotiatedLeg

__all__ = ["Call", "CallLayer", "CallState", "Leg", "MediaEnded", "MediaPath"]

# An outbound INVITE still waiting for its final response.
_UNANSWERED = frozenset({TxState.CALLING, TxState.PROCEEDING})


#: What a call's media leaves for its CDR: (MOS, quality per side, recordings).
MediaEnded = tuple[float | None, dict[str, Any], list[dict[str, Any]]]


class CallState(StrEnum):
    ROUTING = "routing"  # executing the plan: legs trying / ringing
    ANSWERED = "answered"
    ENDED = "ended"


class CallLayer(Protocol):
    """What a call (and the plan executor, and an application's session) asks of the layer
    below: legs started and given up, the caller answered or refused, SIP sent on legs,
    timers, and the switch's bookkeeping when the call moves on."""

    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Any: ...
    def ring_user(self, call: Call, target: Target) -> list[Leg]: ...
    def ring_external(self, call: Call, target: Target) -> list[Leg]: ...
    def cancel_leg(self, leg: Leg, *, elsewhere: bool = False) -> None: ...
    def run_final(self, call: Call, target: Target) -> None: ...
    def failover(self, leg: Leg) -> bool: ...
    def send_cancel(self, leg: Leg) -> None: ...
    def send_ack(self, leg: Leg, body: bytes = b"", content_type: str | None = None) -> None: ...
    def ack_and_bye(self, leg: Leg) -> None: ...
    def contact_for(self, dest: Address) -> str: ...
    def relay_provisional(
        self, call: Call, status: int, reason: str, sdp: bytes, leg: Leg
    ) -> None: ...
    def answer_caller(self, call: Call, leg: Leg, response: SipResponse) -> None: ...
    def reject_caller(self, call: Call, status: int, reason: str | None) -> None: ...
    def mark_busy(self, call: Call, extension: str, delta: int) -> None: ...
    def setup_count(self, delta: int) -> None: ...
    def call_ended(self, call: Call, cdr: Cdr) -> None: ...
    def hang_up_application(self, call: Call) -> None: ...
    def confirm_leg(self, call: Call, leg: Leg, response: SipResponse) -> bool: ...
    def screen(self, call: Call, node: Ring) -> bool: ...
    def hand_off(self, call: Call, destination: Any, *args: Any) -> None: ...


class MediaPath(Protocol):
    """How a call's audio flows: through the switch's media engine (anchored) or straight
    between the phones (pass-through). The call layer asks it for the SDP of each message
    and tells it what happened; see ``softswitch.calls.mediapath``."""

    @property
    def anchored(self) -> bool: ...
    def caller_offer(self, leg: Leg, offer: bytes) -> None: ...
    def branch_offer(
        self, call: Call, srtp: SrtpPolicy = "optional"
    ) -> tuple[bytes, str | None, NegotiatedLeg | None]: ...
    def attach(self, leg: Leg, endpoint: NegotiatedLeg) -> None: ...
    def early(self, call: Call, leg: Leg, sdp: bytes) -> bytes: ...
    def answered(self, call: Call, leg: Leg, sdp: bytes) -> bytes: ...
    def transfer_answered(self, call: Call, transferee: Leg, target: Leg, sdp: bytes) -> bool: ...
    def join(self, call: Call, transferee: Leg, target: Leg) -> bool: ...
    def ack_answer(self, leg: Leg, body: bytes) -> bool: ...
    def answers_offers(self, call: Call, leg: Leg) -> bool: ...
    def answer_offer(self, leg: Leg, offer: bytes) -> bytes: ...
    def info(self, leg: Leg, request: SipRequest) -> None: ...
    def application_media(self, leg: Leg) -> tuple[MediaControl, NegotiatedLeg] | None: ...
    def originated_answered(
        self, call: Call, leg: Leg, sdp: bytes
    ) -> tuple[MediaControl, NegotiatedLeg] | None: ...
    def ended(self, call: Call) -> MediaEnded: ...


class RunningApplication(Protocol):
    """An application's session on an answered call (``softswitch.calls.apps.AppCall``)."""

    ended: asyncio.Event


class Leg:
    """One side of a call, with its own Call-ID, tags and CSeq.

    ``peer`` is where requests of this leg go when the dialog has no route set: the address
    the caller's INVITE came from (inbound) or the address the INVITE was sent to (outbound,
    the registration's source), which keeps NAT'd phones reachable.
    """

    __slots__ = (
        "answered_at",
        "call",
        "cancel_pending",
        "cancel_sent",
        "confirm",
        "contact",
        "ended_at",
        "inbound",
        "invite",
        "invite_tx",
        "label",
        "local_tag",
        "media",
        "outgoing",
        "peer",
        "pending",
        "reason",
        "route",
        "session",
        "started_at",
        "state",
        "status",
        "target",
        "transfer",
    )

    def __init__(
        self,
        call: Call,
        inbound: bool,
        invite: SipRequest,
        peer: Address,
        local_tag: str,
        started_at: float,
    ) -> None:
        self.call = call
        self.inbound = inbound
        self.invite = invite
        self.peer = peer
        self.local_tag = local_tag
        self.started_at = started_at
        self.state = LegState.TRYING
        # The leg's dialog as the SIP stack's dialog layer keeps it, once there is one.
        self.session: InviteSession | None = None
        self.outgoing: OutgoingInvite | None = None  # outbound: the INVITE as the layer sent it
        self.invite_tx: ServerTransaction | ClientTransaction | None = None
        self.status = 0
        self.reason = ""
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.cancel_pending = False  # we gave up on this leg; CANCEL sent or due
        self.cancel_sent = False
        self.pending: Any = None  # the in-dialog INVITE relayed through this leg, if any
        self.target = ""  # what the routing plan asked for ("user_devices 102")
        self.contact = ""  # the registered contact rung
        self.label = ""
        self.route: Any = None  # (trunk, gateways, index, target) of a trunk leg, for failover
        self.media: NegotiatedLeg | None = None  # the leg's endpoint when media is anchored
        # "confirm" / "screen": the answerer must accept (press 1) before the leg wins
        # (softswitch.calls.confirm).
        self.confirm = ""
        # An attended transfer this leg took part in, for the CDR (softswitch.calls.replaces).
        self.transfer: dict[str, str] | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id or ""

    @property
    def active(self) -> bool:
        return self.state is not LegState.ENDED

    def record(self) -> dict[str, Any]:
        """This leg in the CDR's call flow."""
        return {
            "target": self.target,
            "contact": self.contact,
            "status": self.status,
            "started": round(self.started_at, 3),
            "ended": None if self.ended_at is None else round(self.ended_at, 3),
            "answered": self.answered_at is not None,
        } | ({"transfer": self.transfer} if self.transfer is not None else {})

    def __repr__(self) -> str:
        side = "in" if self.inbound else "out"
        return f"<Leg {side} {self.call_id} {self.state.value}>"


class Call:
    """One call: ``inbound`` (the caller's UAS leg) and the ``outbound`` legs tried."""

    __slots__ = (
        "_state",
        "ack_deferred",
        "answered_at",
        "app",
        "callee",
        "caller",
        "caller_name",
        "caller_number",
        "destination",
        "dialled",
        "direction",
        "domain",
        "early_leg",
        "ended_at",
        "flow",
        "from_trunk",
        "id",
        "inbound",
        "media",
        "media_path",
        "mgr",
        "originated",
        "outbound",
        "released",
        "ringing_sent",
        "started_at",
        "tenant",
        "transfer",
        "transferring",
        "trunk",
        "winner",
    )

    def __init__(
        self,
        mgr: CallLayer,
        call_id: str,
        tenant: str,
        domain: str,
        caller_number: str,
        caller_name: str,
        dialled: str,
        media_path: MediaPath,
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
        self.released = False
        self.outbound: list[Leg] = []
        self._state = CallState.ROUTING
        mgr.setup_count(+1)
        self.started_at = time.time()
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.flow: CallflowExecutor[Call, Leg] = CallflowExecutor(mgr)
        self.ringing_sent = False
        self.early_leg: Leg | None = None
        self.ack_deferred = False
        self.winner: Leg | None = None
        self.trunk = ""  # the carrier trunk the call came in on or went out through
        self.from_trunk = False
        # Blind transfer (REFER): ``transfer`` on the new call that rings the transfer
        # target, ``transferring`` on the call being transferred while that rings. An
        # application handing its caller on (``softswitch.calls.connect``) sets ``transfer``
        # of the new call to its ``Handoff``.
        self.transfer: Any = None
        self.transferring: Any = None
        # Chosen once: anchored or pass-through; the anchored call's own media state.
        self.media_path = media_path
        self.media: CallMedia | None = CallMedia() if media_path.anchored else None
        self.app: RunningApplication | None = None  # a call answered by an application
        # A call the switch places itself (softswitch.calls.originate): ``inbound`` stands for
        # the switch, and the application runs on the answering leg.
        self.originated: Callable[..., Awaitable[None]] | None = None

    @property
    def state(self) -> CallState:
        return self._state

    @state.setter
    def state(self, value: CallState) -> None:
        # Leaving set-up (answered or ended) is counted here, whoever answers the call, for
        # the manager's overload control.
        if self._state is CallState.ROUTING and value is not CallState.ROUTING:
            self.mgr.setup_count(-1)
            self.flow.stop()  # answered or ended: the callflow is over
        self._state = value

    # ---------------------------------------------------------------- the callflow
    def execute(self, node: Node) -> None:
        """Run the callflow tree from ``node`` (its root): see ``CallflowExecutor``."""
        self.flow.run(self, node)

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
        leg.status = response.status
        if (
            leg.confirm
            and self.state is CallState.ROUTING
            and not leg.cancel_pending
            and self.mgr.confirm_leg(self, leg, response)
        ):
            return  # its answerer is asked to accept first
        if self.state is not CallState.ROUTING:
            # A late 2xx from a losing branch (it crossed our CANCEL): ACK it, then BYE.
            leg.reason = "answered late"
            self.mgr.ack_and_bye(leg)
            if self.state is CallState.ENDED:
                self.release()
            return
        leg.state = LegState.ANSWERED
        leg.answered_at = time.time()
        self.state = CallState.ANSWERED  # stops the callflow
        self.answered_at = leg.answered_at
        self.winner = leg
        self.callee = leg.label
        self.destination = leg.label
        for other in self.outbound:
            if other is not leg and other.active:
                self.mgr.cancel_leg(other, elsewhere=True)
        # A transfer offers no SDP to the target: its 200 carries the offer (RFC 3725).
        # Anchored, every branch got the switch's own offer: its 2xx is the answer.
        self.ack_deferred = not self.media_path.anchored and (
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
            self.flow.settle(self)
            if self.state is CallState.ENDED:
                self.release()  # the branch that held the ended call up has settled
            return
        if (status == 408 or 500 <= status < 600) and self.mgr.failover(leg):
            return  # the trunk's next gateway is being tried
        self.flow.leg_failed(self, status)

    # ---------------------------------------------------------------- the caller
    def caller_cancelled(self) -> None:
        """The caller's CANCEL: every branch is cancelled, the caller gets 487."""
        if self.state is not CallState.ROUTING:
            return
        self.flow.stop()
        for leg in self.outbound:
            if leg.active:
                self.mgr.cancel_leg(leg)
        self.mgr.reject_caller(self, 487, "Request Terminated")
        self.end("CANCELLED", 487)

    def fail(self, status: int, reason: str | None = None) -> None:
        """Answer the caller with a final error and end the call; while an application node
        runs, a refusal with a branch for its status goes on down that branch instead."""
        if self.state is not CallState.ROUTING or self.flow.rejected(self, status, reason):
            return
        for leg in self.outbound:
            if leg.active:
                self.mgr.cancel_leg(leg)
        self.mgr.reject_caller(self, status, reason)
        outcome = self.flow.last_outcome
        if status in (486, 600, 603) or outcome is Outcome.BUSY:
            disposition = "BUSY"
        elif outcome is Outcome.NO_ANSWER:
            disposition = "NO ANSWER"
        else:
            disposition = "FAILED"
        self.end(disposition, status)

    def end(self, disposition: str, status: int) -> None:
        """Finish the call: the CDR written (the dialog layer keeps the dialogs' timers)."""
        if self.state is CallState.ENDED:
            return
        was_answered = self.state is CallState.ANSWERED
        self.state = CallState.ENDED  # stops the callflow
        self.ended_at = time.time()
        if was_answered and self.callee:
            self.mgr.mark_busy(self, self.callee, -1)
        cdr = self._cdr(disposition, status)
        cdr.mos, cdr.quality, cdr.recordings = self.media_path.ended(self)
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
        hear from a branch (a 2xx crossing our CANCEL, an answerer still asked to accept), or
        that is part of a transfer or runs an application, keeps its ties.
        """
        if (
            self.released  # (a branch settling after the call ended releases it again)
            or self.transfer is not None
            or self.transferring is not None
            or self.app is not None
            or self.originated is not None
        ):
            return
        for leg in self.outbound:
            tx = leg.invite_tx
            if tx is not None and tx.state in _UNANSWERED:
                return
            if leg.confirm and leg.state is not LegState.ENDED:
                return  # answered and being asked to accept: it still needs its BYE
        for leg in (self.inbound, *self.outbound):
            if leg is not None and leg.call is self:
                leg.invite_tx = None
                leg.session = leg.outgoing = None  # each holds the leg as its app_data
                leg.media = None  # its endpoint's callbacks hold the leg
        self.inbound = None  # type: ignore[assignment]
        self.outbound = []
        self.winner = self.early_leg = None
        self.released = True

    def other(self, leg: Leg) -> Leg | None:
        """The leg bridged to ``leg`` in an answered call."""
        if leg is self.inbound:
            return self.winner
        return self.inbound if leg is self.winner else None

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state.value, "legs": len(self.outbound)}
