"""Blind transfer (REFER, RFC 3515): one party of an answered call asks the switch to
connect the other party (the transferee) to the number in Refer-To.

The transferee moves to a new call that is routed like any other and rings the target;
the transferor hears how it goes in NOTIFYs (message/sipfrag) and is released once the
target answers. Pass-through, the target's 200 carries the offer (the transfer INVITE has
no SDP, RFC 3725) and a re-INVITE gives it to the transferee; anchored, the endpoints are
simply bridged. If the target cannot be reached the transferee goes back to the transferor.
A Refer-To with an embedded Replaces is an attended transfer (``softswitch.calls.replaces``).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.models import Tenant
from softswitch.calls.admission import Admission
from softswitch.calls.call import Call, CallLayer, CallState, Leg
from softswitch.calls.identity import CallerIdentity
from softswitch.calls.leg import LegState, response_sdp
from softswitch.calls.media import leg_sdp
from softswitch.calls.planning import CallPlanner
from softswitch.calls.replaces import Answerer, AttendedTransfers
from softswitch.calls.signalling import CallSignalling
from softswitch.sip.headers import parse_name_addr
from softswitch.sip.message import (
    REASON_PHRASES,
    SipParseError,
    SipRequest,
    SipResponse,
    new_call_id,
)
from softswitch.sip.replaces import refer_to_replaces
from softswitch.sip.transaction import ServerTransaction

__all__ = ["Transfer", "TransferReinvite", "Transfers"]


@dataclass(slots=True)
class Transfer:
    """A blind transfer: ``transferor`` sent REFER; ``transferee`` moves from ``old`` to
    ``call``, which rings the target named in Refer-To."""

    old: Call
    transferor: Leg
    transferee: Leg
    call: Call
    notified_ringing: bool = False


@dataclass(slots=True)
class TransferReinvite:
    """The re-INVITE that gives the transferee the transfer target's SDP offer."""

    transfer: Transfer
    target: Leg


class Transfers:
    """Carries out blind transfers (see the module docstring)."""

    def __init__(
        self,
        signalling: CallSignalling,
        *,
        layer: CallLayer,
        admission: Admission,
        planner: CallPlanner,
        tenants: dict[str, Tenant],
        calls: dict[str, Call],
        counters: dict[str, int],
        answer: Answerer,
    ) -> None:
        self.sig = signalling
        self.layer = layer  # what the transfer's new call talks down to
        self.admission = admission
        self.planner = planner
        self.tenants = tenants
        self.calls = calls
        self.counters = counters
        self.attended = AttendedTransfers(
            signalling,
            layer=layer,
            admission=admission,
            planner=planner,
            calls=calls,
            counters=counters,
            notify=self.notify,
            answer=answer,
        )

    def on_refer(self, leg: Leg, request: SipRequest, tx: ServerTransaction) -> None:
        """REFER from one party: the other party is transferred to Refer-To."""
        call = leg.call
        other = call.other(leg)
        if call.state is not CallState.ANSWERED or other is None or other.session is None:
            self.sig.respond(tx, 481, "Call/Transaction Does Not Exist")
            return
        if call.transferring is not None or other.pending is not None:
            self.sig.respond(tx, 491, "Request Pending")
            return
        try:
            refer_to = parse_name_addr(request.get("Refer-To") or "")
            uri = refer_to.uri
        except (SipParseError, ValueError):
            self.sig.respond(tx, 400, "Bad Refer-To")
            return
        try:
            replaces = refer_to_replaces(uri)
        except SipParseError as error:
            self.sig.respond(tx, 400, error.reason)
            return
        if replaces is not None:  # attended transfer: softswitch.calls.replaces
            self.attended.on_refer(leg, request, tx, replaces)
            return
        if not uri.user:
            self.sig.respond(tx, 400, "Bad Refer-To")
            return
        tenant = self.tenants.get(call.tenant)
        if tenant is None:
            self.sig.respond(tx, 403, "Forbidden")
            return
        accepted = self.sig.response(request, 202, "Accepted")
        if leg.session is not None:
            accepted.add("Contact", leg.session.dialog.local_contact)
        self.sig.send_response(tx, accepted)
        self.notify(leg, "SIP/2.0 100 Trying", final=False)
        if other is call.inbound:
            number, name = call.caller_number, call.caller_name
        else:
            number, name = call.callee, ""
        # The transferee keeps its endpoint (anchored): the new call has the same path.
        new = Call(
            self.layer,
            new_call_id(),
            call.tenant,
            call.domain,
            number,
            name,
            uri.user,
            call.media_path,
        )
        new.caller = call.caller if other is call.inbound else CallerIdentity(number, name, True)
        new.direction = call.direction
        transfer = Transfer(call, leg, other, new)
        new.transfer = transfer
        call.transferring = transfer
        other.call = new
        new.inbound = other
        self.calls[new.id] = new
        self.admission.count(call.tenant)
        self.planner.mark_busy(new.tenant, number, +1)
        self.counters["calls"] += 1
        plan = self.planner.plan(new, tenant, number)
        if plan is not None:
            new.execute(plan.root)

    def notify(self, leg: Leg, fragment: str, *, final: bool) -> None:
        """Tell the transferor how the transfer goes (RFC 3515 2.4.5, message/sipfrag)."""
        if leg.session is None or leg.state is LegState.ENDED:
            return
        state = "terminated;reason=noresource" if final else "active;expires=60"
        self.sig.request(
            leg,
            "NOTIFY",
            None,  # its answer changes nothing
            body=f"{fragment}\r\n".encode(),
            content_type="message/sipfrag;version=2.0",
            headers=[("Event", "refer"), ("Subscription-State", state)],
        )

    def ringing(self, transfer: Transfer) -> None:
        """The target rings: the transferor hears so once."""
        if not transfer.notified_ringing:
            transfer.notified_ringing = True
            self.notify(transfer.transferor, "SIP/2.0 180 Ringing", final=False)

    def answered(self, transfer: Transfer, target: Leg, response: SipResponse) -> None:
        """The target answered: its media reaches the transferee (bridged, or offered in
        a re-INVITE), and the transferor is released."""
        transferee = transfer.transferee
        sdp = response_sdp(response)
        if transfer.call.media_path.transfer_answered(transfer.call, transferee, target, sdp):
            self._release_transferor(transfer)
            return
        reinvite = transferee.pending = TransferReinvite(transfer, target)
        self.sig.request(
            transferee,
            "INVITE",
            reinvite,
            body=leg_sdp(sdp, target.peer.host) if sdp else b"",
            content_type="application/sdp" if sdp else None,
        )
        self._release_transferor(transfer)

    def taken_by_application(self, transfer: Transfer) -> None:
        """An application (a park orbit...) took the transferee: the transfer is done."""
        self._release_transferor(transfer)

    def _release_transferor(self, transfer: Transfer) -> None:
        self.notify(transfer.transferor, "SIP/2.0 200 OK", final=True)
        old = transfer.old
        old.transferring = None
        if transfer.transferor.state is not LegState.ENDED:
            self.sig.send_bye(transfer.transferor)
        old.end("ANSWERED", 200)
        self.counters["transfers"] = self.counters.get("transfers", 0) + 1

    def reinvite_response(self, reinvite: TransferReinvite, response: SipResponse) -> None:
        """The transferee's answer to the target's offer completes the target's INVITE."""
        status = response.status
        transfer = reinvite.transfer
        transferee = transfer.transferee
        call = transfer.call
        if 200 <= status < 300:
            self.sig.send_ack(transferee)  # the layer resends it if the 2xx comes again
            transferee.pending = None
            # The transferee's answer completes the target's offer: the deferred ACK.
            call.ack_deferred = False
            body = response_sdp(response)
            self.sig.send_ack(
                reinvite.target,
                leg_sdp(body, transferee.peer.host) if body else b"",
                "application/sdp" if body else None,
            )
            return
        transferee.pending = None
        self.sig.send_ack(reinvite.target)
        self.sig.hang_up(call, "FAILED", status)

    def reinvite_failed(self, reinvite: TransferReinvite) -> None:
        """The transferee never answered the re-INVITE: the new call is hung up."""
        reinvite.transfer.transferee.pending = None
        self.sig.hang_up(reinvite.transfer.call, "FAILED", 408)

    def failed(self, transfer: Transfer, status: int, reason: str | None) -> None:
        """The target could not be reached: the transferor hears why; the transferee goes
        back to the transferor, or is hung up if the transferor has left."""
        self.notify(
            transfer.transferor,
            f"SIP/2.0 {status} {reason or REASON_PHRASES.get(status, 'Failed')}",
            final=True,
        )
        old = transfer.old
        old.transferring = None
        transferee = transfer.transferee
        if old.state is CallState.ANSWERED and transferee.state is not LegState.ENDED:
            transferee.call = old
        else:
            if transferee.state is not LegState.ENDED:
                self.sig.send_bye(transferee)
            if old.state is not CallState.ENDED:
                if transfer.transferor.state is not LegState.ENDED:
                    self.sig.send_bye(transfer.transferor)
                old.end("ANSWERED", 200)
