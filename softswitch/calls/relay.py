"""In-dialog traffic of calls: relaying re-INVITE, UPDATE and INFO (and their answers) from
one leg to the other, what the caller's ACK completes, and a leg's dialog ending (the peer's
BYE, no ACK for our 2xx, an expired session timer).

The dialog work itself (matching requests to dialogs, CSeq, 481, in-dialog OPTIONS, the
2xx retransmission until its ACK, ACKing the peer's 2xx again, session timers) is the SIP
stack's dialog layer (``softswitch.sip.dialog_layer``); this module only decides what a
call does with what happens in its legs' dialogs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from softswitch.calls.anchor import MediaRefused
from softswitch.calls.call import CallState, Leg
from softswitch.calls.leg import LegState
from softswitch.calls.media import leg_sdp
from softswitch.calls.mediapath import sdp_body
from softswitch.calls.signalling import CallSignalling
from softswitch.sip.message import SipRequest, SipResponse
from softswitch.sip.transaction import ServerTransaction

__all__ = ["DialogRelay", "RelayedRequest"]

log = structlog.get_logger(__name__)

#: Headers carried from one leg's in-dialog request to the other's (besides the body).
_RELAYED_HEADERS = ("Content-Disposition", "Info-Package", "Recv-Info")


@dataclass(slots=True)
class RelayedRequest:
    """An in-dialog request relayed from ``source`` leg to ``target`` leg."""

    source: Leg
    target: Leg
    server_tx: ServerTransaction
    request: SipRequest
    answered: bool = False
    deferred: bool = False  # the 2xx carried the offer: the ACK waits for the answer


class DialogRelay:
    """What travels in the dialogs of every call's legs."""

    def __init__(self, signalling: CallSignalling) -> None:
        self.sig = signalling

    # ---------------------------------------------------------------- a dialog ends
    def on_bye(self, leg: Leg) -> None:
        """The peer's BYE (the dialog layer answered it 200)."""
        leg.state = LegState.ENDED
        leg.ended_at = time.time()
        call = leg.call
        transfer = call.transferring
        if transfer is not None and leg is transfer.transferor:
            # The transferor leaves while the target rings: the transferee stays on.
            call.end("ANSWERED", 200)
        elif call.state is CallState.ANSWERED:
            other = call.other(leg)
            if other is not None and other.state is not LegState.ENDED:
                self.sig.send_bye(other)
            call.end("ANSWERED", 200)
        elif leg is call.inbound or leg.inbound:
            # The caller (a transferee is its new call's inbound leg) left while ringing;
            # an outbound leg hanging up while its answerer is asked to accept is the
            # confirmation's to handle (softswitch.calls.confirm).
            call.caller_cancelled()

    def on_ended(self, leg: Leg, reason: str, status: int) -> None:
        """The dialog layer ended the leg's dialog with a BYE of its own: no ACK came for
        our 2xx (``ack_timeout``), the refresher went silent (``session_expired``), or a
        request in it got 481/408 (``terminated``). The other party is hung up too."""
        leg.state = LegState.ENDED
        if leg.ended_at is None:
            leg.ended_at = time.time()
        call = leg.call
        if call.state is CallState.ENDED:
            return
        log.info(reason, call=call.id)
        transfer = call.transferring
        if transfer is not None and leg is transfer.transferor:
            call.end("ANSWERED", status)  # the transferee lives on in the transfer's call
            return
        other = call.other(leg)
        if other is not None and other.state is not LegState.ENDED:
            self.sig.send_bye(other)
        if call.state is CallState.ANSWERED:
            disposition = "FAILED" if reason == "ack_timeout" else "ANSWERED"
            call.end(disposition, status)
        else:
            call.fail(status)

    # ---------------------------------------------------------------- ACK of our 2xx
    def on_ack(self, leg: Leg, request: SipRequest) -> None:
        """The ACK for our 2xx on ``leg`` (matched by the dialog layer)."""
        pending = leg.pending
        relay = (
            pending
            if isinstance(pending, RelayedRequest) and pending.source is leg and pending.answered
            else None
        )
        call = leg.call
        if relay is not None:
            leg.pending = None
        body = request.body
        if body and call.media_path.ack_answer(leg, body):
            return  # the answer to the offer in our 2xx, taken by the media engine
        if body:
            body = leg_sdp(body, leg.peer.host)
        content_type = request.get("Content-Type")
        if relay is None:
            if call.ack_deferred and call.winner is not None:
                call.ack_deferred = False
                self.sig.send_ack(call.winner, body, content_type)
        elif relay.deferred:
            self.sig.send_ack(relay.target, body, content_type)

    # ---------------------------------------------------------------- re-INVITE, UPDATE, INFO
    def relay_request(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        """A re-INVITE, UPDATE or INFO from one party: answered by the media path when it
        answers offers itself, else relayed to the other party."""
        call = leg.call
        method = request.method
        if method in ("INVITE", "UPDATE") and call.media_path.answers_offers(call, leg):
            self._answer_offer(leg, request, tx)
            return
        other = call.other(leg)
        if (
            call.state is not CallState.ANSWERED
            or other is None
            or other.session is None
            or other.state is LegState.ENDED
        ):
            self.sig.respond(tx, 481, "Call/Transaction Does Not Exist")
            return
        if method == "INFO":
            call.media_path.info(leg, request)
        if method == "INVITE" and (leg.pending is not None or other.pending is not None):
            self.sig.send_response(tx, self.sig.response(request, 491, "Request Pending"))
            return
        body = request.body
        content_type = request.get("Content-Type")
        if body and content_type and "application/sdp" in content_type.lower():
            body = leg_sdp(body, leg.peer.host)
        headers = [
            (name, value) for name in _RELAYED_HEADERS if (value := request.get(name)) is not None
        ]
        relay = RelayedRequest(leg, other, tx, request)
        self.sig.request(
            other,
            method,
            relay,
            body=body,
            content_type=content_type,
            headers=headers,
            max_forwards=max(0, (request.max_forwards or 70) - 1),
        )
        if method == "INVITE":
            leg.pending = other.pending = relay

    def _answer_offer(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        """A re-INVITE or UPDATE the switch answers itself (anchored media: hold and
        resume change what the engine sends this leg's peer)."""
        assert leg.session is not None
        offer = sdp_body(request)
        if request.method == "UPDATE" and not offer:
            sdp = b""  # a session refresh without a new offer
        else:
            try:
                sdp = leg.call.media_path.answer_offer(leg, offer)
            except MediaRefused as refused:
                self.sig.respond(tx, refused.status, refused.reason)
                return
        answer = self.sig.response(request, 200, "OK", body=sdp, allow=True)
        answer.add("Contact", leg.session.dialog.local_contact)
        if sdp:
            answer.add("Content-Type", "application/sdp")
        self.sig.answer(tx, answer)

    def relay_response(self, relay: RelayedRequest, response: SipResponse) -> None:
        """The other party's final answer to a relayed request goes back to the sender."""
        status = response.status
        method = relay.request.method
        target = relay.target
        relay.answered = True
        success = 200 <= status < 300
        body = response.body
        content_type = response.get("Content-Type")
        if body and content_type and "application/sdp" in content_type.lower():
            body = leg_sdp(body, target.peer.host)
        answer = self.sig.response(relay.request, status, response.reason, body=body)
        if body and content_type:
            answer.add("Content-Type", content_type)
        source = relay.source
        if success and method in ("INVITE", "UPDATE") and source.session is not None:
            answer.add("Contact", source.session.dialog.local_contact)
        self.sig.answer(relay.server_tx, answer)
        if method != "INVITE":
            return
        target.pending = None
        if not success:
            source.pending = None
            return
        if relay.request.body:
            self.sig.send_ack(target)
        else:
            relay.deferred = True  # the 2xx carried the offer: the sender's ACK answers it

    def relay_failed(self, relay: RelayedRequest, status: int) -> None:
        """The other party never answered a relayed request (or could not be reached)."""
        # A relayed request already answered (its transaction released) needs no reply
        # and no longer owns the legs' pending state.
        if not relay.server_tx.released:
            self.sig.respond(
                relay.server_tx,
                status,
                "Request Timeout" if status == 408 else "Service Unavailable",
            )
            relay.source.pending = relay.target.pending = None
