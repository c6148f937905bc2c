"""A call leg: one SIP dialog of the B2BUA (the caller's UAS leg or one outbound UAC leg)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from softswitch.sip.address import Address
from softswitch.sip.dialog import Dialog
from softswitch.sip.message import SipRequest, SipResponse
from softswitch.sip.transaction import ClientTransaction, ServerTransaction

if TYPE_CHECKING:
    from asyncio import TimerHandle

    from media.negotiation import NegotiatedLeg
    from softswitch.calls.call import Call

__all__ = ["Leg", "LegState"]


class LegState(StrEnum):
    TRYING = "trying"  # INVITE sent (or received), nothing back yet
    RINGING = "ringing"  # a provisional response seen (CANCEL may now be sent)
    ANSWERED = "answered"  # 2xx sent/received, dialog confirmed or about to be
    ENDED = "ended"  # failed, cancelled or hung up


class Leg:
    """One side of a call, with its own Call-ID, tags and CSeq.

    ``peer`` is where requests of this leg go when the dialog has no route set: the address
    the caller's INVITE came from (inbound) or the address the INVITE was sent to (outbound,
    the registration's source), which keeps NAT'd phones reachable.
    """

    __slots__ = (
        "ack",
        "ack_wait",
        "answered_at",
        "call",
        "cancel_pending",
        "cancel_sent",
        "contact",
        "dialog",
        "ended_at",
        "inbound",
        "invite",
        "invite_tx",
        "label",
        "local_tag",
        "media",
        "peer",
        "pending",
        "reason",
        "route",
        "rtx",
        "started_at",
        "state",
        "status",
        "target",
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
        self.dialog: Dialog | None = None
        self.invite_tx: ServerTransaction | ClientTransaction | None = None
        self.status = 0
        self.reason = ""
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.cancel_pending = False  # we gave up on this leg; CANCEL sent or due
        self.cancel_sent = False
        self.ack: SipRequest | None = None  # our ACK to this leg's 2xx, resent on retransmission
        self.ack_wait: tuple[int, Any] | None = None  # (CSeq, relay) of our 2xx awaiting ACK
        self.rtx: TimerHandle | None = None  # 2xx retransmission (inbound) until the ACK
        self.pending: Any = None  # the in-dialog INVITE relayed through this leg, if any
        self.target = ""  # what the routing plan asked for ("user_devices 102")
        self.contact = ""  # the registered contact rung
        self.label = ""
        self.route: Any = None  # (trunk, gateways, index, target) of a trunk leg, for failover
        self.media: NegotiatedLeg | None = None  # the leg's endpoint when media is anchored

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
        }

    def __repr__(self) -> str:
        side = "in" if self.inbound else "out"
        return f"<Leg {side} {self.call_id} {self.state.value}>"


def response_sdp(response: SipResponse) -> bytes:
    """The SDP body of a response, or b''."""
    content_type = (response.get("Content-Type") or "").lower()
    return response.body if response.body and "application/sdp" in content_type else b""
