"""Call pickup: a user takes a call that is ringing someone else (``config.pickup``).

Directed pickup (``**101``) takes the call ringing extension 101; group pickup (``*8``)
the call that has rung longest at a member of the picker's pickup groups. Either way
the picker's call is answered by the switch (anchored media, like every application),
the ringing legs are cancelled with "call completed elsewhere" (RFC 3326: the phones log
no missed call), the ringing call's caller is answered with its own endpoint and the two
endpoints are bridged until either side hangs up. The CDR of the picked-up call names the
picker as its destination, and each cancelled leg records ``{"kind": "pickup", ...}``.

A phone may also pick up the dialog-package way: its busy-lamp key on a ringing lamp sends
an INVITE with Replaces naming the ringing dialog (the Call-ID and tag the lamp showed,
RFC 4235 / RFC 3891 ``early-only``); ``softswitch.calls.replaces`` hands that to
`PickupService.replaces`, a directed pickup of that very call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from config.pickup import GROUP_PICKUP
from routing.plan import Target, TargetKind
from softswitch.calls.anchor import MediaRefused
from softswitch.calls.apps import AppCall, Application, CallRefused
from softswitch.calls.call import Call, CallState, Leg
from softswitch.calls.mediapath import sdp_body
from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest, new_call_id, new_tag
from softswitch.sip.transaction import ServerTransaction

if TYPE_CHECKING:
    from softswitch.calls.manager import CallManager

__all__ = ["Pickup", "PickupService", "ringing_call"]

log = structlog.get_logger(__name__)


def ringing_call(
    calls: dict[str, Call], tenant: str, extensions: frozenset[str], picker: str
) -> Call | None:
    """The call of ``tenant`` that has rung longest at one of ``extensions`` and is still
    ringing there (not answered, not the picker's own call, not placed by the switch)."""
    found: Call | None = None
    for call in calls.values():
        if (
            call.tenant != tenant
            or call.state is not CallState.ROUTING
            or call.originated is not None
            or call.caller_number == picker
            or call.inbound is None
        ):
            continue
        if not any(
            leg.active and not leg.cancel_pending and leg.label in extensions
            for leg in call.outbound
        ):
            continue
        if found is None or call.started_at < found.started_at:
            found = call
    return found


@dataclass(slots=True)
class Pickup:
    """One pickup under way: ``caller`` gets the picked-up call's session once it is
    answered (None: nothing was left to pick up); ``over`` is set when the talk ends."""

    picker: AppCall
    caller: asyncio.Future[AppCall | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    over: asyncio.Event = field(default_factory=asyncio.Event)


class PickupService:
    """Runs PICKUP nodes (see the module docstring)."""

    def __init__(self, mgr: CallManager) -> None:
        self.mgr = mgr
        self.counters = mgr.counters
        mgr.applications.register(TargetKind.PICKUP, self.application)
        mgr.transfers.attended.early_pickup = self.replaces

    def wanted(self, call: Call, target: Target) -> frozenset[str]:
        """The extensions whose ringing calls ``call``'s caller may take with ``target``."""
        tenant = self.mgr.tenants.get(call.tenant)
        settings = tenant.pickup if tenant is not None else None
        if settings is None or call.from_trunk:
            return frozenset()
        if target.ref == GROUP_PICKUP:
            return settings.colleagues(call.caller_number)
        return frozenset({target.ref}) - {call.caller_number}

    def application(self, call: Call, target: Target) -> Application | None:
        """The picker's application, or 480 when nothing is ringing there now."""
        wanted = self.wanted(call, target)
        if (
            not wanted
            or ringing_call(self.mgr.calls, call.tenant, wanted, call.caller_number) is None
        ):
            raise CallRefused(480, "No Call To Pick Up")
        picker = call.caller_number
        tenant = call.tenant
        return self._picker(lambda: ringing_call(self.mgr.calls, tenant, wanted, picker))

    def replaces(
        self, request: SipRequest, source: Address, tx: ServerTransaction, caller: str, leg: Leg
    ) -> None:
        """An INVITE whose Replaces names ``leg``, ringing (a busy-lamp key's pickup, the
        dialog-package way): a directed pickup of ``leg``'s call by ``caller``."""
        ringing = leg.call
        tenant = self.mgr.tenants.get(ringing.tenant)
        if tenant is None or tenant.pickup is None:
            self.mgr.sig.respond(tx, 403, "Pickup Not Enabled")
            return
        call = Call(
            self.mgr,
            new_call_id(),
            tenant.name,
            tenant.domain,
            caller,
            "",
            f"pickup {leg.label}",
            self.mgr.media_path,
        )
        inbound = Leg(call, True, request, source, new_tag(), call.started_at)
        inbound.invite_tx = tx
        inbound.label = caller
        tx.app_data = inbound
        call.inbound = inbound
        self.mgr.calls[call.id] = call
        self.counters["calls"] += 1
        self.mgr.observers.started(inbound)
        self.mgr.mark_busy(call, caller, +1)  # call_ended takes it back
        try:
            call.media_path.caller_offer(inbound, sdp_body(request))
        except MediaRefused as refused:
            call.fail(refused.status, refused.reason)
            return

        def find() -> Call | None:
            still = ringing.state is CallState.ROUTING and leg.active and not leg.cancel_pending
            return ringing if still else None

        self.mgr.originator.start_application(call, self._picker(find), call.dialled)

    def _picker(self, find: Callable[[], Call | None]) -> Application:
        """The picker's application: takes the call ``find`` gives when it starts."""

        async def run(session: AppCall) -> None:
            pickup = Pickup(session)
            self.mgr.schedule(0, self._take, find, pickup)
            try:
                caller = await pickup.caller
                if caller is None:
                    return  # answered or gone in the meantime: the picker is hung up
                await pickup.over.wait()
            finally:
                if not pickup.caller.done():
                    pickup.caller.set_result(None)

        return run

    def _take(self, find: Callable[[], Call | None], pickup: Pickup) -> None:
        """On the switch's loop: cancel the ringing legs and answer the caller with an
        application that bridges it to the picker."""
        ringing = find()
        picker = pickup.picker
        if ringing is None or picker.ended.is_set() or pickup.caller.done():
            if not pickup.caller.done():
                pickup.caller.set_result(None)
            return
        record = {"kind": "pickup", "by": picker.caller_number, "call": picker.call_id}
        for leg in ringing.outbound:
            if leg.active and leg.answered_at is None:
                leg.transfer = record
                self.mgr.cancel_leg(leg, elsewhere=True)
                if self.mgr.anchor is not None:
                    self.mgr.anchor.release(leg)  # its endpoint has no one to talk to now
        self.mgr.originator.start_application(ringing, self._bridge(pickup), "pickup")
        if ringing.state is not CallState.ANSWERED:
            pickup.caller.set_result(None)  # refused (start_application failed the call)
            return
        ringing.callee = ringing.destination = picker.caller_number
        self.mgr.mark_busy(ringing, picker.caller_number, +1)  # Call.end takes it back
        self.counters["pickups"] = self.counters.get("pickups", 0) + 1
        log.info(
            "call_picked_up",
            call=ringing.id,
            by=picker.caller_number,
            picker_call=picker.call_id,
            rang=sorted({leg.label for leg in ringing.outbound if leg.transfer is record}),
        )

    def _bridge(self, pickup: Pickup) -> Application:
        async def run(caller: AppCall) -> None:
            picker = pickup.picker
            if pickup.caller.done():
                return  # the picker gave up before we were answered
            pickup.caller.set_result(caller)
            try:
                await talk(caller, picker)
            finally:
                pickup.over.set()

        return run


async def talk(first: AppCall, second: AppCall) -> None:
    """``first`` and ``second`` (two answered application calls) hear each other until
    either hangs up."""
    engine = first.engine
    for session in (first, second):
        if not session.endpoint.released:
            session.engine.stop(session.endpoint)
    if first.endpoint.released or second.endpoint.released:
        return
    engine.bridge(first.endpoint, second.endpoint)
    waits: list[asyncio.Future[Any]] = [
        asyncio.ensure_future(first.ended.wait()),
        asyncio.ensure_future(second.ended.wait()),
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        if not first.endpoint.released:
            engine.unbridge(first.endpoint)
