"""In-dialog traffic of calls: finding the leg a request belongs to, relaying re-INVITE,
UPDATE and INFO (and their responses) from one leg to the other, the ACK of a 2xx, the
UAS core's 2xx retransmission (RFC 3261 13.3.1.4), the session timer (RFC 4028) and BYE.

This is the part the dialog layer in ``softswitch.sip`` is meant to take over (dialog
matching, CSeq, ACK, 2xx retransmission, session timers); it is kept in one module so that
it can be swapped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from softswitch.calls.anchor import MediaRefused
from softswitch.calls.call import Call, CallState, Leg
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
    out: SipRequest
    response: SipResponse | None = None
    ack: SipRequest | None = None
    deferred: bool = False  # the 2xx carried the offer: the ACK waits for the answer


class DialogRelay:
    """The dialogs of every call's legs and what travels in them."""

    def __init__(self, signalling: CallSignalling) -> None:
        self.sig = signalling
        self.dialogs: dict[tuple[str, str], Leg] = {}

    # ---------------------------------------------------------------- the dialog table
    def find(self, request: SipRequest) -> Leg | None:
        """The leg whose dialog ``request`` (which has a To tag) belongs to."""
        to = request.to
        return self.dialogs.get((request.call_id or "", to.tag or "")) if to else None

    def add(self, leg: Leg) -> None:
        self.dialogs[(leg.call_id, leg.local_tag)] = leg

    def forget(self, call: Call) -> None:
        """The ended call's legs are no longer found and no longer retransmit 2xx."""
        for leg in (call.inbound, *call.outbound):
            if leg.call is not call:
                continue  # a transferred leg that lives on in another call
            self.dialogs.pop((leg.call_id, leg.local_tag), None)
            if leg.rtx is not None:
                leg.rtx.cancel()
                leg.rtx = None

    def accept(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> bool:
        """Whether ``request`` is for the call layer; OPTIONS, requests on a dialog not
        (or no longer) established and CSeq out of order are answered here."""
        if request.method == "OPTIONS":
            self.sig.respond(tx, 200, "OK", allow=True)
            return False
        dialog = leg.dialog
        if dialog is None or leg.call.state is CallState.ENDED:
            self.sig.respond(tx, 481, "Call/Transaction Does Not Exist")
            return False
        if not dialog.accept_cseq(request):
            self.sig.respond(tx, 500, "CSeq Out of Order")
            return False
        return True

    # ---------------------------------------------------------------- BYE
    def on_bye(self, leg: Leg, tx: ServerTransaction) -> None:
        self.sig.respond(tx, 200, "OK")
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
        elif call.transfer is not None or leg.inbound:
            call.caller_cancelled()

    # ---------------------------------------------------------------- ACK of our 2xx
    def on_ack(self, request: SipRequest) -> None:
        """An ACK for a 2xx (no transaction)."""
        leg = self.find(request)
        if leg is None or leg.ack_wait is None:
            return
        cseq = request.cseq
        number, relay = leg.ack_wait
        if cseq is None or cseq[0] != number:
            return
        leg.ack_wait = None
        if leg.rtx is not None:
            leg.rtx.cancel()
            leg.rtx = None
        call = leg.call
        body = request.body
        if body and call.media_path.ack_answer(leg, body):
            return  # the answer to the offer in our 2xx, taken by the media engine
        if body:
            body = leg_sdp(body, leg.peer.host)
        if relay is None:
            if call.ack_deferred and call.winner is not None:
                call.ack_deferred = False
                self.sig.send_ack(call.winner, body, request.get("Content-Type"))
        elif isinstance(relay, RelayedRequest):
            relay.source.pending = None
            if relay.deferred and relay.target.dialog is not None:
                dest = self.sig.dest(relay.target)
                relay.ack = relay.target.dialog.build_ack(
                    relay.out.cseq[0] if relay.out.cseq else 0,
                    self.sig.via(dest),
                    body,
                    request.get("Content-Type"),
                )
                self.sig.send_stateless(relay.ack, dest)

    # ---------------------------------------------------------------- 2xx retransmission
    def start_2xx_rtx(
        self,
        leg: Leg,
        tx: ServerTransaction,
        response: SipResponse,
        cseq: int,
        relay: RelayedRequest | None,
    ) -> None:
        """Retransmit our 2xx to an INVITE on ``leg`` until its ACK (RFC 3261 13.3.1.4)."""
        leg.ack_wait = (cseq, relay)
        t1 = self.sig.timers.t1
        deadline = self.sig.clock() + self.sig.timers.timeout
        leg.rtx = self.sig.schedule(t1, self._retransmit_2xx, leg, tx, response, t1, deadline)

    def _retransmit_2xx(
        self,
        leg: Leg,
        tx: ServerTransaction,
        response: SipResponse,
        interval: float,
        deadline: float,
    ) -> None:
        leg.rtx = None
        if leg.ack_wait is None or leg.call.state is CallState.ENDED:
            return
        now = self.sig.clock()
        if now >= deadline:
            leg.ack_wait = None
            log.info("ack_timeout", call=leg.call.id)
            self.sig.hang_up(leg.call, "FAILED", 408)
            return
        self.sig.tx.send_response(tx, response, now)
        interval = min(2 * interval, self.sig.timers.t2)
        leg.rtx = self.sig.schedule(
            min(interval, deadline - now),
            self._retransmit_2xx,
            leg,
            tx,
            response,
            interval,
            deadline,
        )

    # ---------------------------------------------------------------- session timer
    def session_refreshed(self, call: Call, answer: SipResponse) -> None:
        """A 2xx that starts or refreshes the session timer: say so, and restart the
        watchdog that ends a call whose refresher went silent (RFC 4028 10)."""
        interval = call.session_interval
        if interval is None:
            return
        answer.add("Session-Expires", f"{interval};refresher=uac")
        answer.add("Require", "timer")
        if call.session_timer is not None:
            call.session_timer.cancel()
        call.session_timer = self.sig.schedule(
            interval - min(32, interval / 3), self._session_expired, call
        )

    def _session_expired(self, call: Call) -> None:
        call.session_timer = None
        if call.state is CallState.ANSWERED:
            log.info("session_expired", call=call.id)
            self.sig.hang_up(call, "ANSWERED", 408)

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
            or other.dialog is None
            or other.state is LegState.ENDED
        ):
            self.sig.respond(tx, 481, "Call/Transaction Does Not Exist")
            return
        if method == "INFO":
            call.media_path.info(leg, request)
        if method == "INVITE" and (leg.pending is not None or other.pending is not None):
            self.sig.send_response(tx, self.sig.response(request, 491, "Request Pending"))
            return
        assert leg.dialog is not None
        if method in ("INVITE", "UPDATE"):
            leg.dialog.refresh_target(request)
        body = request.body
        content_type = request.get("Content-Type")
        if body and content_type and "application/sdp" in content_type.lower():
            body = leg_sdp(body, leg.peer.host)
        headers = [
            (name, value) for name in _RELAYED_HEADERS if (value := request.get(name)) is not None
        ]
        dest = self.sig.dest(other)
        out = other.dialog.build_request(
            method,
            self.sig.via(dest),
            body=body,
            content_type=content_type,
            headers=headers,
            max_forwards=max(0, (request.max_forwards or 70) - 1),
        )
        relay = RelayedRequest(leg, other, tx, request, out)
        ctx = self.sig.send_request(out, dest)
        ctx.app_data = relay
        if method == "INVITE":
            leg.pending = other.pending = relay

    def _answer_offer(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        """A re-INVITE or UPDATE the switch answers itself (anchored media: hold and
        resume change what the engine sends this leg's peer)."""
        assert leg.dialog is not None
        offer = sdp_body(request)
        method = request.method
        if method == "UPDATE" and not offer:
            sdp = b""  # a session refresh without a new offer
        else:
            try:
                sdp = leg.call.media_path.answer_offer(leg, offer)
            except MediaRefused as refused:
                self.sig.respond(tx, refused.status, refused.reason)
                return
        leg.dialog.refresh_target(request)
        answer = self.sig.response(request, 200, "OK", body=sdp, allow=True)
        answer.add("Contact", leg.dialog.local_contact)
        if sdp:
            answer.add("Content-Type", "application/sdp")
        if leg.inbound:
            self.session_refreshed(leg.call, answer)
        self.sig.send_response(tx, answer)
        if method == "INVITE":
            cseq = request.cseq
            self.start_2xx_rtx(leg, tx, answer, cseq[0] if cseq else 0, None)

    def relay_response(self, relay: RelayedRequest, response: SipResponse) -> None:
        """The other party's final answer to a relayed request goes back to the sender."""
        status = response.status
        if status < 200:
            return
        method = relay.out.method
        target = relay.target
        if relay.response is not None:  # a retransmitted 2xx to a relayed re-INVITE
            if relay.ack is not None:
                self.sig.send_stateless(relay.ack, self.sig.dest(target))
            return
        relay.response = response
        success = 200 <= status < 300
        if success and method in ("INVITE", "UPDATE") and target.dialog is not None:
            target.dialog.refresh_target(response)
        body = response.body
        content_type = response.get("Content-Type")
        if body and content_type and "application/sdp" in content_type.lower():
            body = leg_sdp(body, target.peer.host)
        answer = self.sig.response(relay.request, status, response.reason, body=body)
        if body and content_type:
            answer.add("Content-Type", content_type)
        source = relay.source
        if success and method in ("INVITE", "UPDATE") and source.dialog is not None:
            answer.add("Contact", source.dialog.local_contact)
            if source.inbound:
                self.session_refreshed(source.call, answer)
        self.sig.send_response(relay.server_tx, answer)
        if method != "INVITE":
            return
        target.pending = None
        if not success:
            source.pending = None
            return
        if relay.request.body and target.dialog is not None:
            dest = self.sig.dest(target)
            relay.ack = target.dialog.build_ack(
                relay.out.cseq[0] if relay.out.cseq else 0, self.sig.via(dest)
            )
            self.sig.send_stateless(relay.ack, dest)
        else:
            relay.deferred = True
        cseq = relay.request.cseq
        self.start_2xx_rtx(source, relay.server_tx, answer, cseq[0] if cseq else 0, relay)

    def relay_failed(self, relay: RelayedRequest, timeout: bool) -> None:
        """The other party never answered a relayed request (or could not be reached)."""
        # A relayed request already answered (its transaction released) needs no reply
        # and no longer owns the legs' pending state.
        if not relay.server_tx.released:
            self.sig.respond(
                relay.server_tx,
                408 if timeout else 503,
                "Request Timeout" if timeout else "Service Unavailable",
            )
            relay.source.pending = relay.target.pending = None
