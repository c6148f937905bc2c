"""The call applications a switch offers, registered for their callflow node kinds:
conference bridges (routing's CONFERENCE nodes) and live-call monitoring (MONITOR nodes,
which routing makes of the tenant's monitor codes followed by the agent's extension; for
users with ``can_monitor``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from config.conference import ConferenceBridge
from media.mixer import MonitorMode
from media.negotiation import NegotiatedLeg
from routing.plan import Target, TargetKind
from softswitch.apps.conference import ConferenceRegistry, Role, conference_app
from softswitch.apps.monitor import MonitorDenied, MonitorRegistry, check_monitor, monitor_app
from softswitch.calls.apps import AppCall, Application, CallRefused
from softswitch.calls.call import Call, CallState
from softswitch.calls.pickup import PickupService

if TYPE_CHECKING:
    from softswitch.calls.call import Leg
    from softswitch.calls.manager import CallManager

__all__ = ["CallServices"]

log = structlog.get_logger(__name__)


class CallServices:
    """Conference bridges and monitoring of one switch (also what the admin API drives)."""

    def __init__(self, mgr: CallManager) -> None:
        self.mgr = mgr
        self.conferences = ConferenceRegistry(dial_out=self._dial_out)
        self.monitors = MonitorRegistry()
        mgr.applications[TargetKind.CONFERENCE] = self._conference
        mgr.applications[TargetKind.MONITOR] = self._monitor
        self.pickup = PickupService(mgr)  # call pickup (PICKUP nodes)

    def _conference(self, call: Call, target: Target) -> Application | None:
        tenant = self.mgr.tenants.get(call.tenant)
        bridge = tenant.conference_by_extension(target.ref) if tenant is not None else None
        if bridge is None:
            return None

        async def run(session: AppCall) -> None:
            await conference_app(session, bridge, self.conferences)

        return run

    def _monitor(self, call: Call, target: Target) -> Application | None:
        """A supervisor dialling e.g. *51 + extension listens to that extension's call."""
        tenant = self.mgr.tenants.get(call.tenant)
        if tenant is None or call.from_trunk:
            raise CallRefused(403, "Forbidden")
        mode, agent = target.mode, target.ref
        try:
            check_monitor(tenant, call.caller_number, agent)
        except MonitorDenied as denied:
            log.info(
                "monitor_denied",
                call=call.id,
                supervisor=call.caller_number,
                agent=agent,
                reason=str(denied),
            )
            raise CallRefused(403, "Forbidden") from None
        found = self.agent_call(call.tenant, agent)
        if found is None:
            raise CallRefused(480, "No Call To Monitor")
        monitored, caller, agent_leg = found
        caller_ep, agent_ep = self._local(caller), self._local(agent_leg)

        async def run(session: AppCall) -> None:
            await monitor_app(session, self.monitors, monitored.id, caller_ep, agent_ep, mode)

        return run

    async def _dial_out(self, tenant: str, bridge: ConferenceBridge, number: str) -> None:
        """Invite ``number`` into ``bridge``: the switch calls it; once answered it joins as
        a participant without a PIN."""

        async def join(session: AppCall) -> None:
            await conference_app(session, bridge, self.conferences, role=Role.PARTICIPANT)

        self.mgr.schedule(0, self._place, tenant, number, join, bridge.extension, bridge.name)

    def monitor(self, call_id: str, supervisor: str, mode: MonitorMode | str = "listen") -> None:
        """Admin side: ring the supervisor's phones; once answered, the supervisor monitors
        call ``call_id`` (its on-net party is the agent). Raises MonitorDenied or KeyError
        (no such answered, anchored call); the supervisor's keys 1/2/3 change the mode."""
        call = self.mgr.calls.get(call_id)
        if (
            call is None
            or call.state is not CallState.ANSWERED
            or call.winner is None
            or call.inbound.media is None
            or call.winner.media is None
        ):
            raise KeyError(f"no answered call {call_id!r} with anchored media")
        tenant = self.mgr.tenants[call.tenant]
        callee_is_user = tenant.user_by_extension(call.callee) is not None
        agent, other = (
            (call.winner, call.inbound) if callee_is_user else (call.inbound, call.winner)
        )
        check_monitor(tenant, supervisor, agent.label)
        caller_ep, agent_ep = self._local(other), self._local(agent)

        async def run(session: AppCall) -> None:
            await monitor_app(session, self.monitors, call_id, caller_ep, agent_ep, mode)

        self.mgr.schedule(
            0, self._place, call.tenant, supervisor, run, f"monitor-{agent.label}", "Monitor"
        )

    def _place(
        self, tenant: str, number: str, app: Application, caller_number: str, caller_name: str
    ) -> None:
        if (
            self.mgr.originate(
                tenant, number, app, caller_number=caller_number, caller_name=caller_name
            )
            is None
        ):
            log.warning("originate_refused", tenant=tenant, number=number)

    def _local(self, leg: Leg) -> NegotiatedLeg:
        anchor = self.mgr.anchor
        local = anchor.local_media(leg) if anchor is not None else None
        if local is None:
            raise CallRefused(480, "No Media To Monitor")
        return local[1]

    def agent_call(self, tenant: str, extension: str) -> tuple[Call, Leg, Leg] | None:
        """An answered, anchored two-party call of ``extension``: (call, the other party's
        leg, the agent's leg)."""
        for call in self.mgr.calls.values():
            winner = call.winner
            if (
                call.tenant != tenant
                or call.state is not CallState.ANSWERED
                or winner is None
                or call.inbound.media is None
                or winner.media is None
            ):
                continue
            if call.callee == extension:
                return call, call.inbound, winner
            if call.caller_number == extension and not call.from_trunk:
                return call, winner, call.inbound
        return None
