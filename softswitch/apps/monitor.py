"""Live-call monitoring: a supervisor listens to, whispers into or barges into a call.

Modes (as hosted-PBX portals call them): *listen only* -- the supervisor hears both
parties and nobody hears the supervisor; *whisper* -- the agent (the on-net party) hears
the supervisor, the caller does not; *barge* (join call) -- all three hear each other.
Monitoring starts in listen-only; modes switch in any order.

Two ways in, both ending in :func:`monitor_app` on the supervisor's answered call:

* from a phone: the supervisor dials a feature code and the agent's extension
  (``tenant.monitor_codes.parse(dialed)``), the calls side checks
  :func:`check_monitor`, finds the agent's call and runs the app;
* from the admin side (``monitor(call_id, supervisor, mode)``): the calls side checks
  :func:`check_monitor`, calls the supervisor's phone and runs the app once answered.

On the supervisor's phone: ``1`` listen, ``2`` whisper, ``3`` barge, ``#`` stop.
The admin side switches modes with :meth:`MonitorRegistry.set_mode`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from config.models import Tenant
from media.control import MediaControl, MonitorSession
from media.mixer import MonitorMode
from media.negotiation import NegotiatedLeg
from softswitch.apps.session import AppSession

__all__ = [
    "MONITOR_KEYS",
    "MonitorDenied",
    "MonitorInfo",
    "MonitorMode",
    "MonitorRegistry",
    "check_monitor",
    "monitor_app",
]

log = structlog.get_logger(__name__)

MONITOR_KEYS = {"1": MonitorMode.LISTEN, "2": MonitorMode.WHISPER, "3": MonitorMode.BARGE}


class MonitorDenied(Exception):
    """The supervisor may not monitor this call; the message says why."""


def check_monitor(tenant: Tenant, supervisor: str, agent: str | None = None) -> None:
    """Raise MonitorDenied unless user ``supervisor`` may monitor ``agent``'s call.

    Pure: only the tenant's configuration is consulted.
    """
    user = tenant.user_by_extension(supervisor)
    if user is None:
        raise MonitorDenied(f"{supervisor!r} is not a user of tenant {tenant.name!r}")
    if not user.can_monitor:
        raise MonitorDenied(f"user {supervisor!r} has no permission to monitor calls")
    if agent is not None and agent == supervisor:
        raise MonitorDenied("a supervisor cannot monitor their own call")


@dataclass(frozen=True, slots=True)
class MonitorInfo:
    """A monitored call as the admin listing shows it."""

    call_id: str
    supervisor: str
    mode: str


class MonitorRegistry:
    """Monitored calls of a switch, one supervisor per call, keyed by the call's id."""

    def __init__(self) -> None:
        self._active: dict[str, tuple[MonitorSession, str]] = {}

    def start(
        self,
        call_id: str,
        engine: MediaControl,
        caller: NegotiatedLeg,
        agent: NegotiatedLeg,
        supervisor: NegotiatedLeg,
        supervisor_name: str,
        mode: MonitorMode | str = MonitorMode.LISTEN,
    ) -> MonitorSession:
        """Mix the supervisor into the call (all endpoints on ``engine``)."""
        self._prune()
        if call_id in self._active:
            raise MonitorDenied(f"call {call_id!r} is already monitored")
        monitor = engine.monitor(caller, agent, supervisor, mode)
        self._active[call_id] = (monitor, supervisor_name)
        log.info(
            "monitor_started", call_id=call_id, supervisor=supervisor_name, mode=monitor.mode.value
        )
        return monitor

    def set_mode(self, call_id: str, mode: MonitorMode | str) -> None:
        """Switch a monitored call to listen, whisper or barge."""
        monitor = self._get(call_id)
        monitor.set_mode(mode)
        log.info("monitor_mode", call_id=call_id, mode=monitor.mode.value)

    def stop(self, call_id: str) -> None:
        """End monitoring of a call (no-op when it is not monitored)."""
        entry = self._active.pop(call_id, None)
        if entry is not None:
            entry[0].stop()
            log.info("monitor_stopped", call_id=call_id)

    def active(self) -> list[MonitorInfo]:
        """Monitored calls."""
        self._prune()
        return [MonitorInfo(cid, sup, m.mode.value) for cid, (m, sup) in self._active.items()]

    def _prune(self) -> None:
        # a monitor stops by itself when one of its calls ends (endpoint released)
        for call_id in [c for c, (m, _) in self._active.items() if m.closed]:
            del self._active[call_id]

    def _get(self, call_id: str) -> MonitorSession:
        entry = self._active.get(call_id)
        if entry is None:
            raise KeyError(f"call {call_id!r} is not monitored")
        return entry[0]


async def monitor_app(
    session: AppSession,
    registry: MonitorRegistry,
    call_id: str,
    caller: NegotiatedLeg,
    agent: NegotiatedLeg,
    mode: MonitorMode | str = MonitorMode.LISTEN,
) -> None:
    """The supervisor's call (``session``) monitors call ``call_id`` until the supervisor
    hangs up or presses ``#``, or the monitored call ends; keys switch modes."""
    supervisor = session.user or session.caller_number
    monitor = registry.start(
        call_id, session.engine, caller, agent, session.endpoint, supervisor, mode
    )
    ended = asyncio.ensure_future(session.ended.wait())
    call_over = asyncio.ensure_future(monitor.ended.wait())
    try:
        while True:
            key = asyncio.ensure_future(session.endpoint.digits.get())
            done, _ = await asyncio.wait(
                {key, ended, call_over}, return_when=asyncio.FIRST_COMPLETED
            )
            if key not in done:
                key.cancel()
                break
            digit = key.result().digit
            if digit == "#":
                break
            if digit in MONITOR_KEYS:
                registry.set_mode(call_id, MONITOR_KEYS[digit])
    finally:
        ended.cancel()
        call_over.cancel()
        registry.stop(call_id)
    if not session.ended.is_set():
        await session.hangup()
