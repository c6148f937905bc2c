"""What the caller's leg hears: ringback and early media while branches ring, the 200 that
bridges it to the branch that answered (or to an application), or a final refusal.

Only for a caller on the other end of an INVITE: a transfer's new call tells its
transferor instead (``softswitch.calls.transfer``), and a call the switch placed has no
caller to tell (``softswitch.calls.originate``).
"""

from __future__ import annotations

from softswitch.calls.admission import RETRY_AFTER
from softswitch.calls.call import Call, Leg
from softswitch.calls.leg import LegState, response_sdp
from softswitch.calls.signalling import CallSignalling
from softswitch.sip.message import SipResponse
from softswitch.sip.transaction import ServerTransaction

__all__ = ["CallerSide"]


class CallerSide:
    """Answers the caller's INVITE on behalf of the call."""

    def __init__(self, signalling: CallSignalling, counters: dict[str, int]) -> None:
        self.sig = signalling
        self.counters = counters

    def provisional(self, call: Call, status: int, reason: str, sdp: bytes, leg: Leg) -> None:
        """Ringback (180) or early media (18x with the branch's SDP, as the media path
        gives it to the caller)."""
        inbound = call.inbound
        assert isinstance(inbound.invite_tx, ServerTransaction)
        body = call.media_path.early(call, leg, sdp)
        response = self.sig.response(inbound.invite, status, reason, inbound.local_tag, body=body)
        response.add("Contact", self.sig.contact_for(inbound.peer))
        if body:
            response.add("Content-Type", "application/sdp")
        self.sig.send_response(inbound.invite_tx, response)

    def bridge(self, call: Call, leg: Leg, response: SipResponse) -> None:
        """Bridge: the caller gets a 200 with the winning leg's media."""
        body = call.media_path.answered(call, leg, response_sdp(response))
        self.answer(call, body)

    def answer(self, call: Call, body: bytes) -> None:
        """The caller's 200: the dialog layer starts the inbound dialog, retransmits the 200
        until its ACK and runs the session timer the caller asked for (RFC 4028)."""
        inbound = call.inbound
        tx = inbound.invite_tx
        assert isinstance(tx, ServerTransaction)
        contact = self.sig.contact_for(inbound.peer)
        inbound.state = LegState.ANSWERED
        inbound.answered_at = call.answered_at
        answer = self.sig.response(
            inbound.invite, 200, "OK", inbound.local_tag, allow=True, body=body
        )
        answer.add("Contact", contact)
        if body:
            answer.add("Content-Type", "application/sdp")
        inbound.session = self.sig.answer(tx, answer, inbound)
        self.counters["answered"] += 1

    def reject(self, call: Call, status: int, reason: str | None) -> None:
        """The caller's final error response."""
        inbound = call.inbound
        tx = inbound.invite_tx
        assert isinstance(tx, ServerTransaction)
        inbound.state = LegState.ENDED
        response = self.sig.response(inbound.invite, status, reason, inbound.local_tag)
        if status == 503:
            response.add("Retry-After", str(RETRY_AFTER))
        self.sig.send_response(tx, response)
