"""The two ways a call's audio can flow, behind one interface (``MediaPath``, declared in
``softswitch.calls.call``) chosen once when the call is created:

- ``PassThroughMedia``: SDP goes from leg to leg (``leg_sdp`` fixes a NAT'd phone's
  address) and the phones exchange RTP directly; in-dialog offers are relayed.
- ``AnchoredMedia``: every leg has an endpoint on the media engine (``MediaAnchor``); the
  switch answers every offer itself and bridges the endpoints.

The call layer asks the path for the SDP of each message and tells it what happened to the
call. ``anchored`` is read in two places only, where the difference is one of signalling:
a branch's 2xx answers the switch's own offer (no ACK waits for the caller), and only an
anchored switch places calls for applications.
"""

from __future__ import annotations

from typing import Any

import structlog

from config.models import Tenant
from config.security_media import SrtpPolicy
from media.control import MediaControl
from media.dtmf import Digit
from media.negotiation import NegotiatedLeg
from softswitch.calls.anchor import MediaAnchor, MediaRefused, worst_mos
from softswitch.calls.call import Call, CallState, Leg, MediaEnded
from softswitch.calls.media import leg_sdp
from softswitch.security.media_policy import phone_policy, trunk_policy
from softswitch.sip.message import SipRequest

__all__ = ["AnchoredMedia", "PassThroughMedia", "dtmf_relay", "sdp_body"]

log = structlog.get_logger(__name__)


def sdp_body(request: SipRequest) -> bytes:
    """The SDP body of a request, or b'' (no body, or another content type)."""
    body = request.body
    if body and "application/sdp" in (request.get("Content-Type") or "").lower():
        return body
    return b""


def dtmf_relay(body: bytes) -> Digit | None:
    """The key of an application/dtmf-relay body (``Signal=5`` / ``Duration=160``)."""
    fields: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition("=")
        fields[name.strip().lower()] = value.strip()
    signal = fields.get("signal", "").upper()
    if len(signal) != 1 or signal not in "0123456789*#ABCD":
        return None
    duration = fields.get("duration", "")
    return Digit(
        signal,
        int(duration) if (duration.isascii() and duration.isdigit()) and len(duration) < 7 else 0,
        "info",
    )


class PassThroughMedia:
    """SDP passes through; the phones exchange RTP directly."""

    anchored = False

    def caller_offer(self, leg: Leg, offer: bytes) -> None:
        pass  # the caller's offer goes to the branches as it is

    def branch_offer(
        self, call: Call, srtp: SrtpPolicy = "optional"
    ) -> tuple[bytes, str | None, NegotiatedLeg | None]:
        inbound = call.inbound
        # A transfer offers no SDP to the target: its 200 carries the offer (RFC 3725).
        body = inbound.invite.body if call.transfer is None else b""
        content_type = inbound.invite.get("Content-Type")
        if not body or not content_type:
            return b"", None, None
        if "application/sdp" in content_type.lower():
            body = leg_sdp(body, inbound.peer.host)
        return body, content_type, None

    def attach(self, leg: Leg, endpoint: NegotiatedLeg) -> None:
        pass  # no endpoints

    def early(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        return leg_sdp(sdp, leg.peer.host) if sdp else b""

    def answered(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        return leg_sdp(sdp, leg.peer.host) if sdp else b""

    def transfer_answered(self, call: Call, transferee: Leg, target: Leg, sdp: bytes) -> bool:
        return False  # the transferee needs a re-INVITE with the target's offer

    def join(self, call: Call, transferee: Leg, target: Leg) -> bool:
        return False  # attended transfer: the parties exchange SDP in re-INVITEs

    def ack_answer(self, leg: Leg, body: bytes) -> bool:
        return False  # the ACK's answer goes on to the other party

    def answers_offers(self, call: Call, leg: Leg) -> bool:
        return False  # re-INVITEs and UPDATEs are relayed

    def answer_offer(self, leg: Leg, offer: bytes) -> bytes:
        raise MediaRefused(488, "Not Acceptable Here")  # never asked: answers_offers

    def info(self, leg: Leg, request: SipRequest) -> None:
        pass  # key presses reach only the other party

    def application_media(self, leg: Leg) -> tuple[MediaControl, NegotiatedLeg] | None:
        return None  # applications need anchored media

    def originated_answered(
        self, call: Call, leg: Leg, sdp: bytes
    ) -> tuple[MediaControl, NegotiatedLeg] | None:
        return None

    def ended(self, call: Call) -> MediaEnded:
        return None, {}, []


class AnchoredMedia:
    """Every leg's RTP goes through the media engine (see ``softswitch.calls.anchor``)."""

    anchored = True

    def __init__(self, anchor: MediaAnchor, tenants: dict[str, Tenant]) -> None:
        self.anchor = anchor
        self.tenants = tenants

    def caller_offer(self, leg: Leg, offer: bytes) -> None:
        """The caller's endpoint answers its offer under the caller's SRTP policy (its
        trunk's, else its own or its tenant's); raises MediaRefused."""
        call = leg.call
        tenant = self.tenants.get(call.tenant)
        srtp = (
            trunk_policy(tenant, call.trunk)
            if call.from_trunk
            else phone_policy(tenant, call.caller_number)
        )
        self.anchor.answer_caller_offer(leg, offer, srtp)

    def branch_offer(
        self, call: Call, srtp: SrtpPolicy = "optional"
    ) -> tuple[bytes, str | None, NegotiatedLeg | None]:
        try:
            endpoint, body = self.anchor.offer_to_branch(call.inbound, srtp)
        except MediaRefused as refused:
            raise ValueError(str(refused)) from None
        return body, "application/sdp", endpoint

    def attach(self, leg: Leg, endpoint: NegotiatedLeg) -> None:
        self.anchor.attach(leg, endpoint)

    def early(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        inbound = call.inbound
        if sdp and self.anchor.remote_answer(leg, sdp):
            self.anchor.bridge(inbound, leg)  # early media: the caller hears the branch
            if inbound.media is not None and inbound.media.stream is not None:
                return inbound.media.local_sdp
        return b""

    def answered(self, call: Call, leg: Leg, sdp: bytes) -> bytes:
        inbound = call.inbound
        if not self.anchor.remote_answer(leg, sdp):
            log.info("callee_answer_unusable", call=call.id)
        self.anchor.bridge(inbound, leg)
        body = inbound.media.local_sdp if inbound.media is not None else b""
        self._bridged(call)
        return body

    def transfer_answered(self, call: Call, transferee: Leg, target: Leg, sdp: bytes) -> bool:
        self.anchor.remote_answer(target, sdp)
        self.anchor.bridge(transferee, target)  # no re-INVITE: the endpoints are bridged
        self._bridged(call)
        return True

    def join(self, call: Call, transferee: Leg, target: Leg) -> bool:
        self.anchor.bridge(transferee, target)  # attended transfer: already negotiated
        self._bridged(call)
        return True

    def _bridged(self, call: Call) -> None:
        """Each party's hold music is chosen by who would hold it, other branches are
        released, configured recording starts."""
        assert call.winner is not None
        tenant = self.tenants.get(call.tenant)
        caller = "" if call.from_trunk else call.caller_number
        self.anchor.set_hold_music(tenant, call.inbound, call.callee)
        self.anchor.set_hold_music(tenant, call.winner, caller)
        self.anchor.call_answered(call, self._records(call))

    def _records(self, call: Call) -> bool:
        """Whether configuration asks for every call of this tenant, caller or callee to be
        recorded."""
        tenant = self.tenants.get(call.tenant)
        if tenant is None:
            return False
        if tenant.record_calls:
            return True
        return any(
            user is not None and user.record_calls
            for user in (
                tenant.user_by_extension(call.caller_number),
                tenant.user_by_extension(call.callee),
            )
        )

    def ack_answer(self, leg: Leg, body: bytes) -> bool:
        if leg.media is None:
            return False
        self.anchor.ack_answer(leg, body)  # the answer to the offer in our 2xx
        return True

    def answers_offers(self, call: Call, leg: Leg) -> bool:
        """In an answered call the switch answers every offer on an anchored leg: hold and
        resume change what the engine sends (music on hold), nothing reaches the other
        party."""
        return call.state is CallState.ANSWERED and leg.media is not None

    def answer_offer(self, leg: Leg, offer: bytes) -> bytes:
        """Our answer to a re-INVITE/UPDATE offer (our offer when it has none); raises
        MediaRefused."""
        ep = leg.media
        was_held = ep is not None and ep.remote_hold
        sdp = self.anchor.reoffer(leg, offer)
        if offer and ep is not None and ep.remote_hold != was_held:
            log.info(
                "call_held" if ep.remote_hold else "call_resumed",
                call=leg.call.id,
                by="caller" if leg.inbound else "callee",
            )
        return sdp

    def info(self, leg: Leg, request: SipRequest) -> None:
        """SIP INFO application/dtmf-relay: a key press for the call's feature codes."""
        if leg.media is None or "dtmf-relay" not in (request.get("Content-Type") or "").lower():
            return
        digit = dtmf_relay(request.body)
        if digit is not None:
            self.anchor.digit(leg, digit)

    def application_media(self, leg: Leg) -> tuple[MediaControl, NegotiatedLeg] | None:
        return self.anchor.local_media(leg)

    def originated_answered(
        self, call: Call, leg: Leg, sdp: bytes
    ) -> tuple[MediaControl, NegotiatedLeg] | None:
        """The answering leg's endpoint for the application of a call the switch placed,
        or None when its answer is unusable."""
        local = self.anchor.local_media(leg)
        if not self.anchor.remote_answer(leg, sdp) or local is None:
            return None
        self.anchor.call_answered(call, False)
        return local

    def ended(self, call: Call) -> MediaEnded:
        media = call.media
        if media is None:
            return None, {}, []
        self.anchor.call_ended(call)
        quality: dict[str, Any] = media.quality
        return worst_mos(quality), quality, media.recordings
