"""What the admin API reads and drives in the running switch, as one narrow interface.

`Live` is everything the API needs of the switch's live state: registrations, calls in
progress and their hang-up and monitoring, conferences and their participants, the
extensions registered now, disaster-plan and provisioning refreshes, the /metrics text.
Its answers are plain frozen dataclasses, so it works the same whether the API runs on the
switch's loop (`SwitchLive`, called directly) or in a process of its own (the same
`SwitchLive` served over `softswitch.api.control`, `softswitch.api.remote.RemoteLive` on
the API's side). Refusals are `LiveError` (a code and a message) either way.

Whatever is done here runs on the switch's loop: it stays small (a page of registrations,
one tenant's calls as rows); making responses of them is the API's work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from config.models import Tenant
from softswitch.api.registrations import RegistrationIndex, RegistrationRows
from softswitch.apps.conference import ConferenceError, ConferenceInfo, ConferenceReport
from softswitch.apps.monitor import MonitorDenied

if TYPE_CHECKING:
    from softswitch.api.switchview import LiveSwitch

__all__ = ["CallRow", "LegRow", "Live", "LiveError", "SwitchLive"]


class LiveError(Exception):
    """The switch refused an action: ``code`` for the API's error body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[LiveError], tuple[str, str]]:
        return (LiveError, (self.code, self.message))


@dataclass(frozen=True, slots=True)
class LegRow:
    target: str
    contact: str
    state: str
    status: int
    started: float
    answered: bool


@dataclass(frozen=True, slots=True)
class CallRow:
    """A call in progress as the API lists it."""

    id: str
    tenant: str
    state: str  # routing, answered, ended
    direction: str
    caller_number: str
    caller_name: str
    dialled: str
    destination: str
    callee: str
    trunk: str
    started_at: float
    answered_at: float | None
    legs: tuple[LegRow, ...]


class Live(Protocol):
    """See the module docstring."""

    async def registrations(
        self,
        tenant: str,
        now: float,
        allowed: frozenset[str] | None,
        extension: str | None,
        reachable: bool | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> RegistrationRows: ...

    async def registered(self, tenant: str) -> dict[str, int]: ...

    async def calls(self, tenant: str, allowed: frozenset[str] | None) -> list[CallRow]: ...

    async def hang_up(self, call_id: str) -> None: ...

    async def monitor(self, call_id: str, supervisor: str, mode: str) -> None: ...

    async def conferences(self, tenant: str) -> list[ConferenceInfo] | None: ...

    async def conference_history(self, tenant: str) -> list[ConferenceReport]: ...

    async def invite(self, tenant: str, bridge: str, number: str) -> None: ...

    async def mute(self, tenant: str, conference: str, participant: str, muted: bool) -> None: ...

    async def kick(self, tenant: str, conference: str, participant: str) -> None: ...

    async def refresh_disaster_plans(self) -> None: ...

    async def apply_provisioning(self) -> None: ...

    async def metrics(self) -> bytes: ...


class SwitchLive:
    """`Live` on the switch itself: called on the switch's loop only."""

    def __init__(self, switch: LiveSwitch, metrics_text: Callable[[], bytes]) -> None:
        self.switch = switch
        self._metrics_text = metrics_text
        # The tenants' AORs in extension order for the registrations list.
        self._registrations = RegistrationIndex()

    async def registrations(
        self,
        tenant: str,
        now: float,
        allowed: frozenset[str] | None,
        extension: str | None,
        reachable: bool | None,
        after: tuple[str, str] | None,
        limit: int,
    ) -> RegistrationRows:
        found = _tenant(self.switch, tenant)
        if found is None:
            return RegistrationRows(0, [], None)
        return self._registrations.page(
            self.switch.location,
            found,
            now,
            sees=None if allowed is None else allowed.__contains__,
            extension=extension,
            reachable=reachable,
            after=after,
            limit=limit,
        )

    async def registered(self, tenant: str) -> dict[str, int]:
        """How many contacts each extension of ``tenant`` has registered now."""
        found = _tenant(self.switch, tenant)
        out: dict[str, int] = {}
        if found is None:
            return out
        suffix = "@" + found.domain.lower()
        for b in self.switch.location.all_bindings():
            if b.aor.lower().endswith(suffix):
                user = b.aor.removeprefix("sip:")[: -len(suffix)]
                user_found = found.user_by_extension(user) or found.user_by_username(user)
                if user_found is not None:
                    out[user_found.extension] = out.get(user_found.extension, 0) + 1
        return out

    async def calls(self, tenant: str, allowed: frozenset[str] | None) -> list[CallRow]:
        mgr = self.switch.calls
        if mgr is None:
            return []
        return [
            _row(call)
            for call in mgr.calls.values()
            if call.tenant == tenant
            and (
                allowed is None
                or call.caller_number in allowed
                or call.dialled in allowed
                or call.callee in allowed
            )
        ]

    async def hang_up(self, call_id: str) -> None:
        """An answered call gets BYE on both sides; a call still ringing is ended as if the
        caller had cancelled (487 to the caller, its legs cancelled)."""
        mgr = self.switch.calls
        call = mgr.calls.get(call_id) if mgr is not None else None
        if mgr is None or call is None:
            raise LiveError("not_found", f"call {call_id!r} not found")
        mgr.schedule(0, _end_call, mgr, call)

    async def monitor(self, call_id: str, supervisor: str, mode: str) -> None:
        services = self.switch.services
        if services is None:
            raise LiveError("not_anchored", "monitoring needs media anchored in the switch")
        try:
            services.monitor(call_id, supervisor, mode)
        except MonitorDenied as denied:
            raise LiveError("monitor_denied", str(denied)) from None
        except KeyError:
            raise LiveError(
                "not_answered", "the call is not answered with anchored media"
            ) from None

    async def conferences(self, tenant: str) -> list[ConferenceInfo] | None:
        """The tenant's active conferences; None when the switch anchors no media."""
        services = self.switch.services
        return None if services is None else services.conferences.active(tenant)

    async def conference_history(self, tenant: str) -> list[ConferenceReport]:
        services = self.switch.services
        return services.conferences.history(tenant) if services is not None else []

    async def invite(self, tenant: str, bridge: str, number: str) -> None:
        services = self.switch.services
        if services is None:
            raise LiveError("not_anchored", "conferences need media anchored in the switch")
        found = _tenant(self.switch, tenant)
        conf = next((b for b in found.conferences if b.name == bridge), None) if found else None
        if conf is None:
            raise LiveError("not_found", f"conference {bridge!r} not found")
        try:
            await services.conferences.invite(tenant, conf, number)
        except ConferenceError as exc:
            raise LiveError("conference_error", str(exc)) from None

    async def mute(self, tenant: str, conference: str, participant: str, muted: bool) -> None:
        services = self.switch.services
        if services is None:
            raise LiveError("not_anchored", "conferences need media anchored in the switch")
        try:
            services.conferences.mute(tenant, conference, participant, muted)
        except ConferenceError as exc:
            raise LiveError("conference_error", str(exc)) from None

    async def kick(self, tenant: str, conference: str, participant: str) -> None:
        services = self.switch.services
        if services is None:
            raise LiveError("not_anchored", "conferences need media anchored in the switch")
        try:
            services.conferences.kick(tenant, conference, participant)
        except ConferenceError as exc:
            raise LiveError("conference_error", str(exc)) from None

    async def refresh_disaster_plans(self) -> None:
        await self.switch.disaster_state.refresh()

    async def apply_provisioning(self) -> None:
        """Run a change just stored before the API answers (the follow loop would within
        its poll interval)."""
        await self.switch.provisioning.refresh()

    async def metrics(self) -> bytes:
        return self._metrics_text()


def _tenant(switch: LiveSwitch, name: str) -> Tenant | None:
    return next((t for t in switch.config.tenants if t.name == name), None)


def _row(call: Any) -> CallRow:
    legs = [call.inbound, *call.outbound] if call.inbound is not None else list(call.outbound)
    return CallRow(
        id=call.id,
        tenant=call.tenant,
        state=call.state.value,
        direction=call.direction,
        caller_number=call.caller_number,
        caller_name=call.caller_name,
        dialled=call.dialled,
        destination=call.destination,
        callee=call.callee,
        trunk=call.trunk,
        started_at=call.started_at,
        answered_at=call.answered_at,
        legs=tuple(
            LegRow(
                target=leg.target or ("caller" if leg.inbound else ""),
                contact=leg.contact,
                state=leg.state.value,
                status=leg.status,
                started=leg.started_at,
                answered=leg.answered_at is not None,
            )
            for leg in legs
        ),
    )


def _end_call(mgr: Any, call: Any) -> None:
    from softswitch.calls.call import CallState

    if call.state is CallState.ANSWERED:
        mgr.hang_up_application(call)  # BYE to both sides
    elif call.state is CallState.ROUTING:
        call.caller_cancelled()  # as if the caller had sent CANCEL: 487, legs cancelled
