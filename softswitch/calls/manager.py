"""The call manager: where the switch hands INVITEs, in-dialog requests, ACKs, CANCELs and
the responses and failures of the calls' transactions. It wires the call layer's parts
together and is the ``CallLayer`` every ``Call`` (and the plan executor) talks down to:

- ``admission``: who may call (authentication, trunks, limits, loop guard);
- ``planning``: the routing plan of a call and the busy table;
- ``legs``: ringing users and trunks, failover, CANCEL;
- ``relay``: in-dialog requests and responses relayed, the ACK of our 2xx, dialogs ending;
- ``caller``: what the caller hears; ``transfer``: REFER; ``originate``: calls the switch
  places or answers with an application;
- ``mediapath``: anchored or pass-through media, chosen once per call.

The dialogs themselves (matching, CSeq, 481, 2xx retransmission, ACKs, session timers,
CANCEL) are the SIP stack's dialog layer, which the manager drives and whose events
(``on_invite``, ``on_dialog_event``) it is handed. Timers are loop timer handles
(``schedule``), never tasks; the host drains the SIP layers after each callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from config.models import Tenant
from config.routing import TenantRouting
from routing.plan import Ring, Target
from softswitch.calls.admission import Admission
from softswitch.calls.anchor import MediaAnchor, MediaRefused
from softswitch.calls.apps import Application
from softswitch.calls.call import Call, CallState, Leg, MediaPath
from softswitch.calls.caller import CallerSide
from softswitch.calls.confirm import Confirmations
from softswitch.calls.connect import Handoff, Handoffs
from softswitch.calls.leg import LegState
from softswitch.calls.legs import LegStarter
from softswitch.calls.loops import LoopGuard
from softswitch.calls.mediapath import AnchoredMedia, PassThroughMedia, sdp_body
from softswitch.calls.observers import CallObservers
from softswitch.calls.originate import Originator
from softswitch.calls.planning import CallPlanner
from softswitch.calls.relay import DialogRelay, RelayedRequest
from softswitch.calls.replaces import JoinReinvite, Takeover
from softswitch.calls.signalling import CallSignalling, Scheduler
from softswitch.calls.transfer import Transfer, TransferReinvite, Transfers
from softswitch.calls.verstat import verification_failed
from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.security.guard import SecurityGuard
from softswitch.security.tollfraud import TollFraudGuard
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.dialog_layer import DialogLayer
from softswitch.sip.message import SipRequest, SipResponse, new_call_id, new_tag
from softswitch.sip.session import (
    AckReceived,
    DialogEnded,
    DialogEvent,
    InDialogRequest,
    InDialogResponse,
    InviteSession,
    LegAnswered,
    LegFailed,
    LegProgress,
)
from softswitch.sip.transaction import ClientTransaction, ServerTransaction, Transaction
from storage.cdr import Cdr

__all__ = ["CallManager", "Scheduler"]


def _configured_routing(tenant: Tenant) -> TenantRouting:
    return tenant.routing


class CallManager:
    """Every call of the switch; see the module docstring."""

    def __init__(
        self,
        dialogs: DialogLayer,
        *,
        directory: Directory,
        location: LocationService,
        authenticator: DigestAuthenticator,
        clock: Callable[[], float],
        schedule: Scheduler,
        local: Callable[[Address], tuple[str, int]],
        on_cdr: Callable[[Cdr], None],
        allow: str,
        server_header: str,
        tenants: Sequence[Tenant] = (),
        local_hosts: frozenset[str] = frozenset(),
        routing_for: Callable[[Tenant], TenantRouting] | None = None,
        anchor: MediaAnchor | None = None,
        guard: SecurityGuard | None = None,
        tollfraud: TollFraudGuard | None = None,
    ) -> None:
        self.dialogs = dialogs
        self.anchor = anchor  # None: SDP passes through and phones exchange RTP directly
        self.on_cdr = on_cdr
        self.tenants = {t.name: t for t in tenants}
        self.calls: dict[str, Call] = {}
        self.calls_in_setup = 0  # calls neither answered nor ended (kept by Call.state)
        self.counters: dict[str, int] = {
            "calls": 0,
            "answered": 0,
            "challenged": 0,
            "rejected": 0,
            "over_limit": 0,
            "loops": 0,
        }
        self.media_path: MediaPath = (
            PassThroughMedia() if anchor is None else AnchoredMedia(anchor, self.tenants)
        )
        # Told when users' legs ring, answer and end (busy lamps: softswitch.notify).
        self.observers = CallObservers(self.calls)
        self.sig = CallSignalling(
            dialogs,
            clock=clock,
            schedule=schedule,
            local=local,
            allow=allow,
            server_header=server_header,
        )
        self.admission = Admission(
            self.sig,
            directory=directory,
            authenticator=authenticator,
            tenants=self.tenants,
            local_hosts=local_hosts,
            counters=self.counters,
            guard=guard,
            tollfraud=tollfraud,
        )
        self.auth = authenticator
        self.planner = CallPlanner(
            location, routing_for if routing_for is not None else _configured_routing
        )
        self.relay = DialogRelay(self.sig)
        self.legs = LegStarter(
            self.sig,
            location=location,
            tenants=self.tenants,
            loops=self.admission.loops,
            counters=self.counters,
            tollfraud=tollfraud,
        )
        self.caller = CallerSide(self.sig, self.counters)
        self.transfers = Transfers(
            self.sig,
            layer=self,
            admission=self.admission,
            planner=self.planner,
            tenants=self.tenants,
            calls=self.calls,
            counters=self.counters,
            answer=self.caller.answer,
        )
        self.originator = Originator(
            self.sig,
            layer=self,
            caller=self.caller,
            admission=self.admission,
            planner=self.planner,
            media_path=self.media_path,
            tenants=self.tenants,
            calls=self.calls,
            counters=self.counters,
        )
        # Applications that run a routing plan's final destination of their kind.
        self.applications = self.originator.applications
        self.handoffs = Handoffs(
            layer=self,
            admission=self.admission,
            planner=self.planner,
            tenants=self.tenants,
            calls=self.calls,
            counters=self.counters,
        )
        self.originator.handoffs = self.handoffs
        self.originator.transfers = self.transfers
        # Legs answered by someone who must press 1 first; their prompts are registered by
        # softswitch.apps.screening (confirmer, screener).
        self.confirmations = Confirmations(self, anchor)

    def __len__(self) -> int:
        return len(self.calls)

    def replace_tenants(self, tenants: Sequence[Tenant]) -> None:
        """The provisioning new calls see (softswitch.provisioning swaps it live); calls in
        progress go on."""
        # One dict shared by the call layer's parts (admission, legs, media...): changed in
        # place so each sees the new tenants at once.
        self.tenants.clear()
        self.tenants.update((t.name, t) for t in tenants)
        self.admission.tenants_changed()

    @property
    def loops(self) -> LoopGuard:
        """The loop guard of incoming INVITEs and outgoing trunk legs."""
        return self.admission.loops

    @loops.setter
    def loops(self, guard: LoopGuard) -> None:
        self.admission.loops = self.legs.loops = guard

    @property
    def dialog_count(self) -> int:
        """Dialogs the dialog layer keeps (for leak checks)."""
        return len(self.dialogs)

    # ================================================================= entry points
    def on_invite(self, request: SipRequest, source: Address, tx: ServerTransaction) -> None:
        """A new INVITE (no To tag) that passed the switch's checks."""
        admitted = self.admission.admit(request, source, tx)
        if admitted is None:
            return
        tenant, caller, trunk = admitted.tenant, admitted.caller, admitted.trunk
        if request.get("Replaces") is not None and self.transfers.attended.on_invite(
            request, source, tx, tenant.name, caller.number
        ):
            return  # a phone takes over a call (RFC 3891): softswitch.calls.replaces
        call = Call(
            self,
            new_call_id(),
            tenant.name,
            tenant.domain,
            caller.number,
            caller.name,
            admitted.dialled,
            self.media_path,
        )
        call.caller = caller
        if trunk is not None:
            call.direction = "inbound"
            call.trunk = trunk.name
            call.from_trunk = True
        leg = Leg(call, True, request, source, new_tag(), call.started_at)
        leg.invite_tx = tx
        leg.label = caller.number
        tx.app_data = leg
        call.inbound = leg
        self.calls[call.id] = call
        self.counters["calls"] += 1
        self.observers.started(leg)
        if not call.from_trunk:
            self.planner.mark_busy(call.tenant, caller.number, +1)
        try:
            call.media_path.caller_offer(leg, sdp_body(request))
        except MediaRefused as refused:
            call.fail(refused.status, refused.reason)
            return
        plan = self.planner.plan(
            call,
            tenant,
            "anonymous" if caller.private else caller.number,
            from_trunk=call.from_trunk,
            spam=call.from_trunk and verification_failed(request),
        )
        if plan is None:
            return
        if plan.caller_id_prefix:
            call.caller_name = plan.caller_id_prefix + call.caller_name
            call.caller = replace(caller, name=call.caller_name)
        call.execute(plan.root)

    def emergency(self, request: SipRequest, source: Address) -> bool:
        """Whether a new INVITE is a user's emergency call: the overload guard lets it in."""
        return self.admission.emergency(request, source)

    def on_dialog_event(self, event: DialogEvent) -> None:
        """What the dialog layer reports on the calls' dialogs (``InviteReceived`` goes to
        ``on_invite``)."""
        if isinstance(event, InDialogRequest):
            self._in_dialog_request(event.session.app_data, event.request, event.transaction)
        elif isinstance(event, AckReceived):
            leg = event.session.app_data
            if isinstance(leg, Leg):
                self.relay.on_ack(leg, event.request)
        elif isinstance(event, LegProgress):
            leg = event.invite.app_data
            if isinstance(leg, Leg) and leg.active:
                leg.call.leg_provisional(leg, event.response)
                if event.response.status > 100 and leg.active:
                    self.observers.started(leg)
        elif isinstance(event, LegAnswered):
            self._leg_answered(event.invite.app_data, event.session, event.response)
        elif isinstance(event, LegFailed):
            leg = event.invite.app_data
            if isinstance(leg, Leg) and leg.active and leg.answered_at is None:
                reason = event.reason
                if event.response is None and event.status == 503:
                    reason = "Unreachable"
                leg.call.leg_failed(leg, event.status, reason)
                self.observers.ended(leg)
        elif isinstance(event, InDialogResponse):
            app = event.app_data
            if isinstance(app, RelayedRequest):
                if event.response is None:
                    self.relay.relay_failed(app, event.status)
                else:
                    self.relay.relay_response(app, event.response)
            elif isinstance(app, TransferReinvite):
                if event.response is None:
                    self.transfers.reinvite_failed(app)
                else:
                    self.transfers.reinvite_response(app, event.response)
            elif isinstance(app, Takeover):
                if event.response is None:
                    self.transfers.attended.takeover_failed(app)
                else:
                    self.transfers.attended.takeover_response(app, event.response)
            elif isinstance(app, JoinReinvite):
                if event.response is None:
                    self.transfers.attended.reinvite_failed(app)
                else:
                    self.transfers.attended.reinvite_response(app, event.response)
        elif isinstance(event, DialogEnded):
            leg = event.session.app_data
            if not isinstance(leg, Leg) or leg.state is LegState.ENDED:
                return
            if event.reason == "bye":
                self.relay.on_bye(leg)
            else:
                self.relay.on_ended(leg, event.reason, event.status)

    def _in_dialog_request(self, leg: object, request: SipRequest, tx: ServerTransaction) -> None:
        if not isinstance(leg, Leg) or leg.call.state is CallState.ENDED:
            self.sig.respond(tx, 481, "Call/Transaction Does Not Exist")
            return
        method = request.method
        if method in ("INVITE", "UPDATE", "INFO"):
            self.relay.relay_request(leg, request, tx)
        elif method == "REFER":
            self.transfers.on_refer(leg, request, tx)
        else:
            self.sig.respond(tx, 405, "Method Not Allowed", allow=True)

    def _leg_answered(self, leg: object, session: InviteSession, response: SipResponse) -> None:
        """A 2xx confirmed a dialog of an outbound leg's INVITE."""
        if not isinstance(leg, Leg):
            return
        if leg.session is not None and leg.session is not session:
            # A second fork of the same INVITE answered: ACK it and end it at once.
            now = self.sig.clock()
            self.dialogs.ack(session, now)
            self.dialogs.bye(session, now)
            return
        leg.session = session
        leg.call.leg_answered(leg, response)
        if leg.call.winner is leg:
            self.observers.answered(leg)
            self.observers.answered(leg.call.inbound)

    def on_response(self, response: SipResponse, ctx: ClientTransaction) -> bool:
        """A response to a transaction nobody owns: the calls send every request through
        the dialog layer, which owns them, so it is none of ours."""
        return False

    def on_cancel(self, invite_tx: ServerTransaction) -> bool:
        """The caller's CANCEL matched an INVITE of ours (the layer already said 200)."""
        leg = invite_tx.app_data
        if not isinstance(leg, Leg):
            return False
        leg.call.caller_cancelled()
        return True

    def on_transaction_failed(self, tx: Transaction, timeout: bool) -> bool:
        """The caller's INVITE got no final answer in time (the proceeding guard sent 408);
        False if the transaction is none of ours."""
        leg = tx.app_data
        if not isinstance(leg, Leg) or not isinstance(tx, ServerTransaction):
            return False
        call = leg.call
        if call.state is CallState.ROUTING:
            for other in call.outbound:
                if other.active:
                    self.cancel_leg(other)
            call.end("FAILED", 408)
        return True

    def shutdown(self) -> None:
        """End every call before the switch stops: answered calls get BYE on both legs,
        ringing ones are cancelled and the caller gets 503; each leaves its CDR."""
        for call in list(self.calls.values()):
            if call.state is CallState.ANSWERED:
                self.sig.hang_up(call, "ANSWERED", 200)
            else:
                call.fail(503, "Service Unavailable")

    def originate(
        self,
        tenant_name: str,
        dialled: str,
        app: Application,
        *,
        caller_number: str,
        caller_name: str = "",
    ) -> Call | None:
        """Place a call from the switch (see ``Originator.originate``)."""
        return self.originator.originate(
            tenant_name, dialled, app, caller_number=caller_number, caller_name=caller_name
        )

    # ================================================================= the CallLayer
    # What calls, the plan executor and applications' sessions ask of the layer below.
    def schedule(self, delay: float, callback: Callable[..., None], *args: Any) -> Any:
        return self.sig.schedule(delay, callback, *args)

    def ring_user(self, call: Call, target: Target) -> list[Leg]:
        return self.legs.ring_user(call, target)

    def ring_external(self, call: Call, target: Target) -> list[Leg]:
        return self.legs.ring_external(call, target)

    def cancel_leg(self, leg: Leg, *, elsewhere: bool = False) -> None:
        self.legs.cancel_leg(leg, elsewhere=elsewhere)

    def run_final(self, call: Call, target: Target) -> None:
        self.originator.run_final(call, target)

    def failover(self, leg: Leg) -> bool:
        return self.legs.failover(leg)

    def send_cancel(self, leg: Leg) -> None:
        self.legs.send_cancel(leg)

    def send_ack(self, leg: Leg, body: bytes = b"", content_type: str | None = None) -> None:
        self.sig.send_ack(leg, body, content_type)

    def ack_and_bye(self, leg: Leg) -> None:
        self.sig.ack_and_bye(leg)

    def contact_for(self, dest: Address) -> str:
        return self.sig.contact_for(dest)

    def relay_provisional(self, call: Call, status: int, reason: str, sdp: bytes, leg: Leg) -> None:
        if call.originated is not None:
            return  # nobody to tell: the switch is the caller
        if isinstance(call.transfer, Transfer):
            self.transfers.ringing(call.transfer)
            return
        if isinstance(call.transfer, Handoff):
            self.handoffs.ringing(call.transfer, leg, sdp)
            return
        self.caller.provisional(call, status, reason, sdp, leg)

    def answer_caller(self, call: Call, leg: Leg, response: SipResponse) -> None:
        if call.originated is not None:
            self.originator.answered(call, leg, response)
        elif isinstance(call.transfer, Transfer):
            self.transfers.answered(call.transfer, leg, response)
        elif isinstance(call.transfer, Handoff):
            self.handoffs.answered(call.transfer, leg, response)
        else:
            self.caller.bridge(call, leg, response)

    def reject_caller(self, call: Call, status: int, reason: str | None) -> None:
        if call.originated is not None:
            self.originator.failed(call, status)
        elif isinstance(call.transfer, Transfer):
            self.transfers.failed(call.transfer, status, reason)
        elif isinstance(call.transfer, Handoff):
            self.handoffs.failed(call.transfer, status, reason)
        else:
            self.caller.reject(call, status, reason)

    def mark_busy(self, call: Call, extension: str, delta: int) -> None:
        self.planner.mark_busy(call.tenant, extension, delta)

    def setup_count(self, delta: int) -> None:
        self.calls_in_setup += delta

    def hang_up_application(self, call: Call) -> None:
        self.originator.hang_up_application(call)

    def confirm_leg(self, call: Call, leg: Leg, response: SipResponse) -> bool:
        return self.confirmations.hold(call, leg, response)

    def screen(self, call: Call, node: Ring) -> bool:
        return self.confirmations.screen(call, node)

    def hand_off(self, call: Call, destination: Any, *args: Any) -> None:
        """An application hands its caller on (``AppCall.connect``, see ``Handoffs.start``)."""
        self.handoffs.start(call, destination, *args)

    def call_ended(self, call: Call, cdr: Cdr) -> None:
        """Forget the call's dialogs and hand its CDR to the writer."""
        if call.app is not None:
            call.app.ended.set()
        if not call.from_trunk:
            self.planner.mark_busy(call.tenant, call.caller_number, -1)
        self.admission.call_ended(call, cdr)
        for leg in (call.inbound, *call.outbound):
            self.observers.ended(leg)
        self.calls.pop(call.id, None)
        self.on_cdr(cdr)
        call.release()
