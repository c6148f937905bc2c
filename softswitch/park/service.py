"""The park application: PARK nodes (an orbit's extension, or the park code).

Like Asterisk's res_parking and FreeSWITCH's valet_park:

* a call reaching an empty orbit (blind-transferred there by a phone, or dialled) is
  parked: it hears music on hold and the orbit's lamp lights;
* the park code parks in the first free orbit and speaks its number to the parked party
  (a blind transfer has released the parker by then; the parker's lamp keys show the orbit);
* a call dialling an occupied orbit retrieves the parked call: the two are bridged;
* nobody retrieving it within ``timeout``, the call rings the parker back for
  ``ring_back`` seconds, then goes to the tenant's ``fallback`` (or is hung up).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from config.models import Tenant
from config.park import FIRST_FREE, ParkSettings
from media.control import HoldSource
from media.moh import load_hold_music
from routing.plan import Target, TargetKind
from softswitch.apps import prompts
from softswitch.apps.attendant import TenantVoice
from softswitch.apps.session import play
from softswitch.calls.apps import AppCall, Application, CallRefused
from softswitch.calls.registry import ApplicationRegistry
from softswitch.calls.transfer import Transfer
from softswitch.park.lot import OrbitTaken, ParkedCall, ParkingLot
from softswitch.prompts import PromptError, PromptLibrary

__all__ = ["ParkService", "parker_of"]

log = structlog.get_logger(__name__)


def parker_of(call: Any) -> str:
    """The extension that blind-transferred ``call`` here ("" if it was dialled)."""
    transfer = call.transfer
    if not isinstance(transfer, Transfer):
        return ""
    old = transfer.old
    if transfer.transferor is old.inbound:
        return "" if old.from_trunk else str(old.caller_number)
    return str(old.callee)


class ParkService:
    """Runs PARK nodes for every tenant (see the module docstring)."""

    def __init__(
        self,
        registry: ApplicationRegistry[Any],
        tenants: dict[str, Tenant],
        lot: ParkingLot,
        library: PromptLibrary | None = None,
    ) -> None:
        self.tenants = tenants
        self.lot = lot
        self.library = library
        registry.register(TargetKind.PARK, self.application)
        self.configure()

    def configure(self) -> None:
        """Follow the tenants' park settings (their orbits' lamps)."""
        for tenant in self.tenants.values():
            self.lot.configure(tenant.name, tenant.park, tenant.domain)

    def application(self, call: Any, target: Target) -> Application | None:
        """Park in, or retrieve from, the orbit of ``target.ref`` (``FIRST_FREE``, the park
        code: the first free orbit). None (480): the tenant has no park or no such orbit."""
        tenant = self.tenants.get(call.tenant)
        settings = tenant.park if tenant is not None else None
        if tenant is None or settings is None:
            return None
        self.lot.configure(tenant.name, settings, tenant.domain)
        orbit = target.ref
        if orbit == FIRST_FREE:
            found = self.lot.free_orbit(tenant.name, settings)
            if found is None:
                raise CallRefused(486, "All Orbits Busy")
            return self._parking(tenant, settings, found, parker_of(call), announce=True)
        if orbit not in settings.orbit_extensions():
            return None
        parked = self.lot.take(tenant.name, orbit)
        if parked is not None:
            return self._retrieving(parked)
        return self._parking(tenant, settings, orbit, parker_of(call), announce=False)

    def _parking(
        self, tenant: Tenant, settings: ParkSettings, orbit: str, parker: str, *, announce: bool
    ) -> Application:
        music = self._music(tenant)
        voice = (
            TenantVoice(self.library, tenant.name, None)
            if self.library is not None and announce and settings.announce
            else None
        )

        async def run(session: AppCall) -> None:
            remote = f"sip:{session.caller_number}@{tenant.domain}" if session.caller_number else ""
            parked = ParkedCall(tenant.name, orbit, session.call_id, remote, parker)
            try:
                self.lot.park(parked)
            except OrbitTaken:
                return  # taken since the plan was made: the caller is hung up
            log.info("call_parked", tenant=tenant.name, orbit=orbit, call=session.call_id)
            try:
                if voice is not None:
                    await self._announce(session, voice, orbit)
                await _wait_parked(session, parked, music, settings, tenant.name, self.lot)
            finally:
                if self.lot.parked(tenant.name, orbit) is parked:
                    self.lot.take(tenant.name, orbit)
                if not parked.retrieved.done():
                    parked.retrieved.cancel()

        return run

    def _retrieving(self, parked: ParkedCall) -> Application:
        async def run(session: AppCall) -> None:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if parked.retrieved.done():
                return  # the parked call left in the meantime
            parked.retrieved.set_result((session, done))
            log.info("call_retrieved", tenant=parked.tenant, orbit=parked.orbit)
            ended = asyncio.ensure_future(session.ended.wait())
            try:
                waits: list[asyncio.Future[Any]] = [done, ended]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()

        return run

    async def _announce(self, session: AppCall, voice: TenantVoice, orbit: str) -> None:
        try:
            speech = await voice.text(f"Parked at {' '.join(orbit)}.")
        except PromptError as error:
            log.warning("park_announcement_failed", orbit=orbit, error=str(error))
            return
        await play(session, speech, limit=30)

    def _music(self, tenant: Tenant) -> HoldSource:
        if tenant.moh is not None:
            try:
                return load_hold_music(tenant.moh)
            except (OSError, ValueError) as error:
                log.warning("park_music_unavailable", tenant=tenant.name, error=str(error))
        return prompts.HOLD_MUSIC


async def _wait_parked(
    session: AppCall,
    parked: ParkedCall,
    music: HoldSource,
    settings: ParkSettings,
    tenant: str,
    lot: ParkingLot,
) -> None:
    """Music until retrieved (then bridged until either side hangs up), the caller hangs
    up, or the timeout (then ring-back and fallback)."""
    if session.ended.is_set():
        return
    session.engine.play(session.endpoint, music, loop=True)
    ended = asyncio.ensure_future(session.ended.wait())
    try:
        waits: list[asyncio.Future[Any]] = [parked.retrieved, ended]
        await asyncio.wait(waits, timeout=settings.timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    if session.ended.is_set():
        return
    if parked.retrieved.done() and not parked.retrieved.cancelled():
        retriever, done = parked.retrieved.result()
        await _talk(session, retriever, done)
        return
    lot.take(tenant, parked.orbit)  # rung back: no longer retrievable
    log.info("park_timeout", tenant=tenant, orbit=parked.orbit, parker=parked.parker)
    if parked.parker:
        result = await session.connect(
            parked.parker, timeout=settings.ring_back, ringback=prompts.RINGBACK
        )
        if result.answered or session.ended.is_set():
            return
    if settings.fallback:
        await session.connect(settings.fallback)


async def _talk(session: AppCall, retriever: AppCall, done: asyncio.Future[None]) -> None:
    """The parked caller and the retriever talk until either hangs up."""
    engine = session.engine
    engine.stop(session.endpoint)
    if session.endpoint.released or retriever.endpoint.released:
        done.set_result(None)
        return
    engine.bridge(session.endpoint, retriever.endpoint)
    ours = asyncio.ensure_future(session.ended.wait())
    theirs = asyncio.ensure_future(retriever.ended.wait())
    try:
        await asyncio.wait({ours, theirs}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ours.cancel()
        theirs.cancel()
        if not session.endpoint.released:
            engine.unbridge(session.endpoint)
        if not done.done():
            done.set_result(None)
