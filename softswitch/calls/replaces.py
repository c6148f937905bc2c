"""Attended transfer (REFER with Replaces, RFC 3891 / RFC 5589 section 7): the transferor
A talks with B (call 1) and with C (call 2), then sends REFER on its call-1 leg with a
Refer-To that names its call-2 dialog in an embedded Replaces.

The switch is the UA that would receive the INVITE with Replaces, so it carries it out
itself: the dialog named is found among its own legs, B and C are joined in a new call,
A hears "200 OK" in a NOTIFY and both of A's legs get a BYE. Anchored, the endpoints of B
and C are simply bridged; pass-through, C gets an offerless re-INVITE, its offer goes to B
in a re-INVITE and B's answer back to C in the ACK (RFC 3725 flow I).

An INVITE with Replaces arriving at the switch (a phone taking over a call, RFC 3891) is
admitted like any INVITE, then takes the place of the leg it names: the other party of
that leg's call is bridged to it (anchored) or re-INVITEd with its offer (pass-through),
the new INVITE is answered and the replaced leg gets a BYE. One that names a leg still
ringing (a busy-lamp key's pickup) is a directed pickup: ``early_pickup``, set by
``softswitch.calls.pickup``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import structlog

from softswitch.calls.admission import Admission
from softswitch.calls.anchor import MediaRefused
from softswitch.calls.call import Call, CallLayer, CallState, Leg
from softswitch.calls.leg import LegState, response_sdp
from softswitch.calls.media import leg_sdp
from softswitch.calls.planning import CallPlanner
from softswitch.calls.signalling import CallSignalling
from softswitch.sip.address import Address
from softswitch.sip.message import SipParseError, SipRequest, SipResponse, new_call_id, new_tag
from softswitch.sip.replaces import Replaces, parse_replaces
from softswitch.sip.transaction import ServerTransaction

__all__ = ["AttendedTransfers", "Join", "JoinReinvite", "Takeover"]

log = structlog.get_logger(__name__)


class Notifier(Protocol):
    """How the transferor hears the outcome (``Transfers.notify``)."""

    def __call__(self, leg: Leg, fragment: str, *, final: bool) -> None: ...


class Answerer(Protocol):
    """How a new INVITE is answered (``CallerSide.answer``)."""

    def __call__(self, call: Call, body: bytes) -> None: ...


@dataclass(slots=True)
class Takeover:
    """An INVITE with Replaces: ``leg`` (its new leg, inbound of ``call``) takes the place of
    ``replaced``; ``other`` is the party it is joined with."""

    call: Call
    leg: Leg
    replaced: Leg
    other: Leg


@dataclass(slots=True)
class Join:
    """B (``transferee``) and C (``target``) joined in ``call`` by ``transferor`` (A)."""

    call: Call
    transferee: Leg
    target: Leg
    transferor: str


@dataclass(slots=True)
class JoinReinvite:
    """A re-INVITE of a pass-through join: ``to_target`` asks C for an offer, otherwise
    it gives C's offer to B."""

    join: Join
    to_target: bool


class EarlyPickup(Protocol):
    """How an INVITE whose Replaces names a ringing leg is carried out (a busy-lamp key's
    pickup: ``softswitch.calls.pickup``)."""

    def __call__(
        self, request: SipRequest, source: Address, tx: ServerTransaction, caller: str, leg: Leg
    ) -> None: ...


class AttendedTransfers:
    """Carries out REFERs with Replaces (see the module docstring)."""

    def __init__(
        self,
        signalling: CallSignalling,
        *,
        layer: CallLayer,
        admission: Admission,
        planner: CallPlanner,
        calls: dict[str, Call],
        counters: dict[str, int],
        notify: Notifier,
        answer: Answerer,
    ) -> None:
        self.sig = signalling
        self.layer = layer
        self.admission = admission
        self.planner = planner
        self.calls = calls
        self.counters = counters
        self.notify = notify
        self.answer = answer
        # Set by the pickup service: an INVITE with Replaces naming a leg that rings.
        self.early_pickup: EarlyPickup | None = None

    def find_leg(self, replaces: Replaces, tenant: str) -> Leg | None:
        """The switch's leg of ``tenant`` whose dialog ``replaces`` names: to-tag is our
        local tag, from-tag the remote one (RFC 3891 section 3). Only the tenant's own
        calls: Call-ID and tags are no secret across tenants."""
        for call in self.calls.values():
            if call.tenant != tenant:
                continue
            for leg in (call.inbound, *call.outbound):
                session = leg.session if leg is not None else None
                if session is None or leg.state is LegState.ENDED:
                    continue
                dialog = session.dialog
                if (
                    dialog.call_id == replaces.call_id
                    and dialog.local_tag == replaces.to_tag
                    and dialog.remote_tag == replaces.from_tag
                ):
                    return leg
        return None

    def ringing_leg(self, replaces: Replaces, tenant: str) -> Leg | None:
        """The outbound leg of ``tenant`` still ringing whose dialog ``replaces`` names, as
        a busy lamp shows it (its Call-ID and our tag, RFC 4235): the callee's tag is not
        shown there, so either tag may be ours."""
        for call in self.calls.values():
            if call.tenant != tenant or call.state is not CallState.ROUTING:
                continue
            for leg in call.outbound:
                if (
                    leg.active
                    and not leg.cancel_pending
                    and leg.answered_at is None
                    and leg.call_id == replaces.call_id
                    and leg.local_tag in (replaces.to_tag, replaces.from_tag)
                ):
                    return leg
        return None

    def on_refer(
        self, leg: Leg, request: SipRequest, tx: ServerTransaction, replaces: Replaces
    ) -> None:
        """REFER with Replaces from A on call 1 (``leg``): join call 1's other party with
        the other party of the call whose leg the Replaces names."""
        call = leg.call
        transferee = call.other(leg)
        assert transferee is not None  # Transfers.on_refer checked call 1 is answered
        replaced = self.find_leg(replaces, call.tenant)
        if replaced is None or replaced is leg or replaced.call is call:
            self.sig.respond(tx, 481, "Replaced Dialog Does Not Exist")
            return
        other_call = replaced.call
        target = other_call.other(replaced)
        if (
            other_call.state is not CallState.ANSWERED
            or target is None
            or target.session is None
            or replaces.early_only
        ):
            self.sig.respond(tx, 486, "Busy Here")  # RFC 3891 3: not a confirmed dialog
            return
        if other_call.transferring is not None or target.pending is not None:
            self.sig.respond(tx, 491, "Request Pending")
            return
        accepted = self.sig.response(request, 202, "Accepted")
        if leg.session is not None:
            accepted.add("Contact", leg.session.dialog.local_contact)
        self.sig.send_response(tx, accepted)
        joined = self._join_call(call, transferee, other_call, target)
        join = Join(
            joined, transferee, target, call.caller_number if leg is call.inbound else call.callee
        )
        # Every leg involved says so in the CDRs of the three calls.
        record = {
            "kind": "attended",
            "by": join.transferor,
            "transferee": joined.caller_number,
            "to": joined.callee,
            "call": joined.id,
        }
        for involved in (leg, replaced, transferee, target):
            involved.transfer = record
        # The transferor is done: it hears so and both of its legs are released.
        self.notify(leg, "SIP/2.0 200 OK", final=True)
        for old, gone in ((call, leg), (other_call, replaced)):
            if gone.state is not LegState.ENDED:
                self.sig.send_bye(gone)
            old.end("ANSWERED", 200)
        self.counters["transfers"] = self.counters.get("transfers", 0) + 1
        log.info(
            "attended_transfer",
            call=joined.id,
            transferor=join.transferor,
            transferee=joined.caller_number,
            target=joined.callee,
        )
        if joined.media_path.join(joined, transferee, target):
            return
        self.sig.request(target, "INVITE", JoinReinvite(join, to_target=True))
        target.pending = transferee.pending = join

    def _join_call(self, call: Call, transferee: Leg, other_call: Call, target: Leg) -> Call:
        """The new call of B (its inbound side) and C (its winner)."""
        if transferee is call.inbound:
            number, name, identity = call.caller_number, call.caller_name, call.caller
        else:
            number, name, identity = call.callee, "", None
        callee = other_call.callee if target is other_call.winner else other_call.caller_number
        joined = Call(
            self.layer,
            new_call_id(),
            call.tenant,
            call.domain,
            number,
            name,
            callee,
            call.media_path,
        )
        if identity is not None:
            joined.caller = identity
        joined.direction = call.direction
        joined.destination = callee
        joined.callee = callee
        joined.inbound = transferee
        joined.outbound = [target]
        joined.winner = target
        joined.state = CallState.ANSWERED
        joined.answered_at = time.time()
        transferee.call = joined
        target.call = joined
        self.calls[joined.id] = joined
        self.admission.count(call.tenant)
        self.planner.mark_busy(joined.tenant, number, +1)  # call_ended takes it back
        if callee:
            self.layer.mark_busy(joined, callee, +1)  # Call.end takes it back
        self.counters["calls"] += 1
        return joined

    def reinvite_response(self, reinvite: JoinReinvite, response: SipResponse) -> None:
        """C's offer goes to B; B's answer goes back to C in the ACK."""
        join = reinvite.join
        sdp = response_sdp(response)
        if not 200 <= response.status < 300:
            self._failed(join, response.status)
            return
        if reinvite.to_target:
            if not sdp:  # an offerless re-INVITE's 2xx must carry the offer (RFC 3261 14.1)
                self.sig.send_ack(join.target)
                self._failed(join, 488)
                return
            self.sig.request(
                join.transferee,
                "INVITE",
                JoinReinvite(join, to_target=False),
                body=leg_sdp(sdp, join.target.peer.host),
                content_type="application/sdp",
            )
            return
        self.sig.send_ack(join.transferee)
        join.transferee.pending = join.target.pending = None
        self.sig.send_ack(
            join.target,
            leg_sdp(sdp, join.transferee.peer.host) if sdp else b"",
            "application/sdp" if sdp else None,
        )

    def reinvite_failed(self, reinvite: JoinReinvite) -> None:
        """A re-INVITE of the join got no answer: the joined call is hung up."""
        self._failed(reinvite.join, 408)

    def _failed(self, join: Join, status: int) -> None:
        join.transferee.pending = join.target.pending = None
        if join.call.state is not CallState.ENDED:
            log.warning("attended_transfer_failed", call=join.call.id, status=status)
            self.sig.hang_up(join.call, "FAILED", status)

    # ---------------------------------------------------------------- INVITE with Replaces
    def on_invite(
        self,
        request: SipRequest,
        source: Address,
        tx: ServerTransaction,
        tenant: str,
        caller: str,
    ) -> bool:
        """An admitted new INVITE: whether it carried Replaces (and was dealt with here)."""
        header = request.get("Replaces")
        if header is None:
            return False
        try:
            replaces = parse_replaces(header)
        except SipParseError as error:
            self.sig.respond(tx, 400, error.reason)
            return True
        replaced = self.find_leg(replaces, tenant)
        if replaced is None:
            ringing = self.ringing_leg(replaces, tenant)
            if ringing is not None and self.early_pickup is not None:
                self.early_pickup(request, source, tx, caller, ringing)
                return True
            self.sig.respond(tx, 481, "Call/Transaction Does Not Exist")
            return True
        old = replaced.call
        other = old.other(replaced)
        if (
            old.state is not CallState.ANSWERED
            or other is None
            or other.session is None
            or replaces.early_only
        ):
            self.sig.respond(tx, 486, "Busy Here")  # RFC 3891 3: only a confirmed dialog
            return True
        if old.transferring is not None or other.pending is not None:
            self.sig.respond(tx, 491, "Request Pending")
            return True
        if other is old.inbound:
            number, name = old.caller_number, old.caller_name
        else:
            number, name = old.callee, ""
        call = Call(
            self.layer, new_call_id(), old.tenant, old.domain, number, name, caller, old.media_path
        )
        call.direction = old.direction
        call.callee = call.destination = caller
        leg = Leg(call, True, request, source, new_tag(), call.started_at)
        leg.invite_tx = tx
        leg.label = caller
        tx.app_data = leg
        call.inbound = leg
        self.calls[call.id] = call
        self.counters["calls"] += 1
        self.planner.mark_busy(call.tenant, number, +1)  # call_ended takes it back
        offer = request.body if "application/sdp" in (request.get("Content-Type") or "") else b""
        try:
            call.media_path.caller_offer(leg, offer)
        except MediaRefused as refused:
            call.fail(refused.status, refused.reason)
            return True
        takeover = Takeover(call, leg, replaced, other)
        other.call = call  # the kept party's requests go to the new call from now on
        call.outbound = [other]
        call.winner = other
        if call.media_path.join(call, leg, other):
            self._take_over(takeover, leg.media.local_sdp if leg.media is not None else b"")
            return True
        other.pending = takeover
        self.sig.request(
            other,
            "INVITE",
            takeover,
            body=leg_sdp(offer, source.host) if offer else b"",
            content_type="application/sdp" if offer else None,
        )
        return True

    def takeover_response(self, takeover: Takeover, response: SipResponse) -> None:
        """The kept party answered the new phone's offer: the new INVITE gets that answer."""
        other = takeover.other
        other.pending = None
        if not 200 <= response.status < 300:
            self._takeover_failed(takeover, response.status)
            return
        self.sig.send_ack(other)
        sdp = response_sdp(response)
        self._take_over(takeover, leg_sdp(sdp, other.peer.host) if sdp else b"")

    def takeover_failed(self, takeover: Takeover) -> None:
        """The kept party never answered the re-INVITE."""
        takeover.other.pending = None
        self._takeover_failed(takeover, 408)

    def _takeover_failed(self, takeover: Takeover, status: int) -> None:
        # The replaced call goes on as it was; the new INVITE is refused.
        takeover.other.call = takeover.replaced.call
        log.warning("replaces_failed", call=takeover.call.id, status=status)
        takeover.call.fail(status)

    def _take_over(self, takeover: Takeover, body: bytes) -> None:
        call, replaced = takeover.call, takeover.replaced
        old = replaced.call
        call.state = CallState.ANSWERED
        call.answered_at = time.time()
        self.layer.mark_busy(call, call.callee, +1)  # Call.end takes it back
        self.answer(call, body)
        record = {
            "kind": "replaces",
            "by": call.callee,
            "transferee": call.caller_number,
            "to": call.callee,
            "call": call.id,
        }
        for involved in (takeover.leg, replaced, takeover.other):
            involved.transfer = record
        if replaced.state is not LegState.ENDED:
            self.sig.send_bye(replaced)
        old.end("ANSWERED", 200)
        log.info("call_replaced", call=call.id, replaced=old.id, by=call.callee)
