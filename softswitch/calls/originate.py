"""Calls the switch itself is a party to: calls it places (``originate``: a conference
dialling out, a supervisor's phone rung for monitoring) and calls it answers with an
application (a routing plan's conference destination, a feature code). Either way the
application runs on the party's anchored endpoint until one side hangs up.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from config.models import Tenant
from routing.plan import Target
from softswitch.calls.admission import Admission
from softswitch.calls.apps import AppCall, Application, CallRefused, run_application
from softswitch.calls.call import Call, CallLayer, CallState, Leg, MediaPath
from softswitch.calls.caller import CallerSide
from softswitch.calls.connect import Handoff, Handoffs
from softswitch.calls.leg import LegState, response_sdp
from softswitch.calls.planning import CallPlanner
from softswitch.calls.registry import ApplicationRegistry
from softswitch.calls.signalling import CallSignalling
from softswitch.calls.transfer import Transfer, Transfers
from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, SipResponse, new_call_id, new_tag

__all__ = ["Originator"]

log = structlog.get_logger(__name__)


class Originator:
    """Places calls for applications and answers calls with them."""

    def __init__(
        self,
        signalling: CallSignalling,
        *,
        layer: CallLayer,
        caller: CallerSide,
        admission: Admission,
        planner: CallPlanner,
        media_path: MediaPath,
        tenants: dict[str, Tenant],
        calls: dict[str, Call],
        counters: dict[str, int],
    ) -> None:
        self.sig = signalling
        self.layer = layer
        self.caller = caller
        self.admission = admission
        self.planner = planner
        self.media_path = media_path
        self.tenants = tenants
        self.calls = calls
        self.counters = counters
        # Applications that run a routing plan's final destination of their kind
        # (TargetKind value), registered by softswitch.calls.services.
        # A callflow's application nodes run the module registered for their kind
        # (softswitch.calls.registry).
        self.applications: ApplicationRegistry[Call] = ApplicationRegistry()
        self.handoffs: Handoffs | None = None  # set by the manager
        self.transfers: Transfers | None = None  # set by the manager

    # ---------------------------------------------------------------- answering with an app
    def run_final(self, call: Call, target: Target) -> None:
        """A callflow's application node (conference, voicemail...): the application its
        kind's module gives, or the module's refusal (480 while there is no module)."""
        try:
            app = self.applications.application(call, target)
        except CallRefused as refused:
            call.fail(refused.status, refused.reason)
            return
        self.start_application(call, app, f"{target.kind.value} {target.ref}".strip())

    def start_application(self, call: Call, app: Application, destination: str) -> None:
        """Answer the caller ourselves and run ``app`` on the call (anchored media only)."""
        inbound = call.inbound
        local = call.media_path.application_media(inbound)
        if local is None or call.media is None:
            call.fail(480, "Temporarily Unavailable")
            return
        call.state = CallState.ANSWERED
        call.answered_at = time.time()
        call.destination = destination
        tenant = self.tenants.get(call.tenant)
        user = (
            tenant.user_by_extension(call.caller_number) if tenant and not call.from_trunk else None
        )
        session = AppCall(self.layer, call, *local, user.extension if user is not None else None)
        call.app = session
        handoff = call.transfer
        if isinstance(handoff, Handoff) and self.handoffs is not None:
            self.handoffs.taken_by_application(handoff)  # the caller is answered already
        elif isinstance(handoff, Transfer) and self.transfers is not None:
            # Blind-transferred to an application (a park orbit): the transferee is
            # answered already; the transferor is told and released.
            self.transfers.taken_by_application(handoff)
        else:
            self.caller.answer(call, local[1].local_sdp)
        session.task = asyncio.get_running_loop().create_task(
            run_application(app, session), name=f"app-{call.id}"
        )
        log.info("application_started", call=call.id, destination=destination)

    def hang_up_application(self, call: Call) -> None:
        """The application ended the call."""
        if call.state is CallState.ANSWERED:
            self.sig.hang_up(call, "ANSWERED", 200)

    # ---------------------------------------------------------------- placing calls
    def originate(
        self,
        tenant_name: str,
        dialled: str,
        app: Application,
        *,
        caller_number: str,
        caller_name: str = "",
    ) -> Call | None:
        """Place a call from the switch to ``dialled`` (routed like a call from
        ``caller_number``) and run ``app`` on it once answered; None when refused (no
        such tenant, media not anchored, over a limit). Call it through ``schedule``."""
        tenant = self.tenants.get(tenant_name)
        if tenant is None or not self.media_path.anchored or not self.admission.has_room(tenant):
            return None
        self.admission.count(tenant.name)
        call = Call(
            self.layer,
            new_call_id(),
            tenant.name,
            tenant.domain,
            caller_number,
            caller_name,
            dialled,
            self.media_path,
        )
        call.originated = app
        # The switch's side of the call: a leg that never sends or receives anything.
        local = SipRequest(
            "INVITE",
            f"sip:{dialled}@{tenant.domain}",
            [
                ("From", f"<sip:{caller_number}@{tenant.domain}>;tag={new_tag()}"),
                ("To", f"<sip:{dialled}@{tenant.domain}>"),
                ("Call-ID", new_call_id()),
                ("CSeq", "1 INVITE"),
            ],
        )
        leg = Leg(call, True, local, Address("UDP", "127.0.0.1", 0), new_tag(), call.started_at)
        leg.label = caller_number
        call.inbound = leg
        self.calls[call.id] = call
        self.counters["calls"] += 1
        self.counters["originated"] = self.counters.get("originated", 0) + 1
        plan = self.planner.plan(call, tenant, caller_number)
        if plan is None:
            return call
        log.info("originate", call=call.id, tenant=tenant.name, dialled=dialled)
        call.execute(plan.root)
        return call

    def answered(self, call: Call, leg: Leg, response: SipResponse) -> None:
        """A call the switch placed was answered: its application runs on that leg."""
        assert call.originated is not None
        local = call.media_path.originated_answered(call, leg, response_sdp(response))
        if local is None:
            self.sig.hang_up(call, "FAILED", 488)
            return
        tenant = self.tenants.get(call.tenant)
        user = tenant.user_by_extension(leg.label) if tenant is not None else None
        session = AppCall(self.layer, call, *local, user.extension if user is not None else None)
        call.app = session
        session.task = asyncio.get_running_loop().create_task(
            run_application(call.originated, session), name=f"app-{call.id}"
        )

    def failed(self, call: Call, status: int) -> None:
        """Nobody answered a call the switch placed."""
        call.inbound.state = LegState.ENDED
        log.info("originate_failed", call=call.id, status=status)
