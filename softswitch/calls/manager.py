"""The call manager: where the switch hands INVITEs, in-dialog requests, ACKs, CANCELs and
the responses and failures of the calls' transactions. It wires the call layer's parts
together and is the ``CallLayer`` every ``Call`` (and the plan executor) talks down to:

- ``admission``: who may call (authentication, trunks, limits, loop guard);
- ``planning``: the routing plan of a call and the busy table;
- ``legs``: ringing users and trunks, failover, CANCEL;
- ``relay``: in-dialog requests and responses, ACK, 2xx retransmission, session timers;
- ``caller``: what the caller hears; ``transfer``: REFER; ``originate``: calls the switch
  places or answers with an application;
- ``mediapath``: anchored or pass-through media, chosen once per call.

Timers are loop timer handles (``schedule``), never tasks; the host drains the transaction
layer after each callback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from config.models import Tenant
from config.routing import TenantRouting
from routing.plan import Target
from softswitch.calls.admission import Admission
from softswitch.calls.anchor import MediaAnchor, MediaRefused
from softswitch.calls.apps import Application, CallRefused
from softswitch.calls.call import Call, CallState, Leg, MediaPath
from softswitch.calls.caller import CallerSide
from softswitch.calls.legs import LegStarter
from softswitch.calls.loops import LoopGuard
from softswitch.calls.mediapath import AnchoredMedia, PassThroughMedia, sdp_body
from softswitch.calls.originate import Originator
from softswitch.calls.planning import CallPlanner
from softswitch.calls.relay import DialogRelay, RelayedRequest
from softswitch.calls.signalling import CallSignalling, Scheduler
from softswitch.calls.transfer import Transfer, TransferReinvite, Transfers
from softswitch.directory import Directory
from softswitch.location import LocationService
from softswitch.security.guard import SecurityGuard
from softswitch.sip.address import Address
from softswitch.sip.auth import DigestAuthenticator
from softswitch.sip.message import SipRequest, SipResponse, new_call_id, new_tag
from softswitch.sip.timers import TimerSettings
from softswitch.sip.transaction import (
    ClientTransaction,
    ServerTransaction,
    Transaction,
    TransactionLayer,
)
from storage.cdr import Cdr

__all__ = ["CallManager", "Scheduler"]


def _configured_routing(tenant: Tenant) -> TenantRouting:
    return tenant.routing


class CallManager:
    """Every call of the switch; see the module docstring."""

    def __init__(
        self,
        transactions: TransactionLayer,
        *,
        directory: Directory,
        location: LocationService,
        authenticator: DigestAuthenticator,
        timers: TimerSettings,
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
    ) -> None:
        self.tx = transactions
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
        # Applications (conference bridges, monitoring...) may claim a call by what was
        # dialled before routing (feature codes).
        self.services: list[Callable[[Call], Application | None]] = []
        self.sig = CallSignalling(
            transactions,
            timers=timers,
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
            dialogs=self.relay.dialogs,
        )
        self.caller = CallerSide(self.sig, self.relay, self.counters)
        self.transfers = Transfers(
            self.sig,
            layer=self,
            admission=self.admission,
            planner=self.planner,
            tenants=self.tenants,
            calls=self.calls,
            counters=self.counters,
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

    def __len__(self) -> int:
        return len(self.calls)

    @property
    def loops(self) -> LoopGuard:
        """The loop guard of incoming INVITEs and outgoing trunk legs."""
        return self.admission.loops

    @loops.setter
    def loops(self, guard: LoopGuard) -> None:
        self.admission.loops = self.legs.loops = guard

    @property
    def dialog_count(self) -> int:
        """Legs findable by in-dialog requests (for leak checks)."""
        return len(self.relay.dialogs)

    # ================================================================= entry points
    def on_invite(self, request: SipRequest, source: Address, tx: ServerTransaction) -> None:
        """A new INVITE (no To tag) that passed the switch's checks."""
        admitted = self.admission.admit(request, source, tx)
        if admitted is None:
            return
        tenant, caller, trunk = admitted.tenant, admitted.caller, admitted.trunk
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
        call.session_interval = admitted.session_interval
        leg = Leg(call, True, request, source, new_tag(), call.started_at)
        leg.invite_tx = tx
        leg.label = caller.number
        tx.app_data = leg
        call.inbound = leg
        self.calls[call.id] = call
        self.relay.add(leg)
        self.counters["calls"] += 1
        if not call.from_trunk:
            self.planner.mark_busy(call.tenant, caller.number, +1)
        try:
            call.media_path.caller_offer(leg, sdp_body(request))
        except MediaRefused as refused:
            call.fail(refused.status, refused.reason)
            return
        for service in self.services:
            try:
                app = service(call)
            except CallRefused as refused:
                call.fail(refused.status, refused.reason)
                return
            if app is not None:
                self.originator.start_application(call, app, call.dialled)
                return
        plan = self.planner.plan(
            call,
            tenant,
            "anonymous" if caller.private else caller.number,
            from_trunk=call.from_trunk,
        )
        if plan is None:
            return
        if plan.caller_id_prefix:
            call.caller_name = plan.caller_id_prefix + call.caller_name
            call.caller = replace(caller, name=call.caller_name)
        call.execute(plan.root)

    def on_in_dialog(self, request: SipRequest, source: Address, tx: ServerTransaction) -> bool:
        """A request with a To tag; False when no call knows the dialog."""
        leg = self.relay.find(request)
        if leg is None:
            return False
        if not self.relay.accept(leg, request, tx):
            return True
        method = request.method
        if method == "BYE":
            self.relay.on_bye(leg, tx)
        elif method in ("INVITE", "UPDATE", "INFO"):
            self.relay.relay_request(leg, request, tx)
        elif method == "REFER":
            self.transfers.on_refer(leg, request, tx)
        else:
            self.sig.respond(tx, 405, "Method Not Allowed", allow=True)
        return True

    def on_ack(self, request: SipRequest) -> None:
        """An ACK for a 2xx (no transaction)."""
        self.relay.on_ack(request)

    def on_response(self, response: SipResponse, ctx: ClientTransaction) -> bool:
        """A response to a request a call sent; False if it is none of ours."""
        app = ctx.app_data
        if isinstance(app, Leg):
            if ctx.method != "INVITE":
                return True
            leg = app
            status = response.status
            if status < 200:
                if leg.active:
                    leg.call.leg_provisional(leg, response)
            elif status < 300:
                if leg.dialog is not None:
                    self.sig.resend_ack(leg)  # a retransmitted 2xx (none yet if deferred)
                else:
                    leg.call.leg_answered(leg, response)
            elif leg.active:
                leg.call.leg_failed(leg, status, response.reason)
            return True
        if isinstance(app, RelayedRequest):
            self.relay.relay_response(app, response)
            return True
        if isinstance(app, TransferReinvite):
            self.transfers.reinvite_response(app, response)
            return True
        return False

    def on_cancel(self, invite_tx: ServerTransaction) -> bool:
        """The caller's CANCEL matched an INVITE of ours (the layer already said 200)."""
        leg = invite_tx.app_data
        if not isinstance(leg, Leg):
            return False
        leg.call.caller_cancelled()
        return True

    def on_transaction_failed(self, tx: Transaction, timeout: bool) -> bool:
        """Timer B/F/H, the proceeding guard, or a transport failure on one of our
        transactions; False if it is none of ours."""
        app = tx.app_data
        if isinstance(app, Leg):
            leg = app
            if isinstance(tx, ServerTransaction):
                # The caller's INVITE: no final answer in time (the layer sent 408).
                call = leg.call
                if call.state is CallState.ROUTING:
                    for other in call.outbound:
                        if other.active:
                            self.cancel_leg(other)
                    call.end("FAILED", 408)
            elif leg.active and leg.answered_at is None:
                leg.call.leg_failed(
                    leg, 408 if timeout else 503, "Request Timeout" if timeout else "Unreachable"
                )
            return True
        if isinstance(app, RelayedRequest):
            self.relay.relay_failed(app, timeout)
            return True
        if isinstance(app, TransferReinvite):
            self.transfers.reinvite_failed(app)
            return True
        return False

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
        self.caller.provisional(call, status, reason, sdp, leg)

    def answer_caller(self, call: Call, leg: Leg, response: SipResponse) -> None:
        if call.originated is not None:
            self.originator.answered(call, leg, response)
        elif isinstance(call.transfer, Transfer):
            self.transfers.answered(call.transfer, leg, response)
        else:
            self.caller.bridge(call, leg, response)

    def reject_caller(self, call: Call, status: int, reason: str | None) -> None:
        if call.originated is not None:
            self.originator.failed(call, status)
        elif isinstance(call.transfer, Transfer):
            self.transfers.failed(call.transfer, status, reason)
        else:
            self.caller.reject(call, status, reason)

    def mark_busy(self, call: Call, extension: str, delta: int) -> None:
        self.planner.mark_busy(call.tenant, extension, delta)

    def setup_count(self, delta: int) -> None:
        self.calls_in_setup += delta

    def hang_up_application(self, call: Call) -> None:
        self.originator.hang_up_application(call)

    def call_ended(self, call: Call, cdr: Cdr) -> None:
        """Forget the call's dialogs and hand its CDR to the writer."""
        if call.app is not None:
            call.app.ended.set()
        if not call.from_trunk:
            self.planner.mark_busy(call.tenant, call.caller_number, -1)
        self.admission.call_ended(call)
        self.relay.forget(call)
        self.calls.pop(call.id, None)
        self.on_cdr(cdr)
        call.release()
