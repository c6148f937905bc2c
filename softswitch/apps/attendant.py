"""The auto attendant application: a tenant's main number answered by a menu.

Routing sends a DID, an extension or a forward to an ``auto_attendant`` application node;
this module registers that kind. The attendant answers, picks its menu by the tenant's
time frames (``choose_menu``), plays the greeting and the menu (text to speech or an
uploaded prompt from the tenant's library) and follows the caller's keys through the
sans-I/O ``MenuMachine`` (``softswitch.apps.attendant_menu``). Destinations are reached
with ``AppCall.connect``: a user rings with their answering rules, a conference, mailbox or
another attendant runs its application, an outside number goes out through the trunks;
when the destination does not take the call the caller is back in the menu.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from config.attendant import AttendantAction, AutoAttendant, KeyAction, MenuPrompt
from config.models import Tenant
from media.players import AudioSource
from routing.plan import Application as AppNode
from routing.plan import Target, TargetKind
from softswitch.apps import prompts
from softswitch.apps.attendant_menu import (
    Connect,
    HangUp,
    MenuMachine,
    Play,
    Say,
    Step,
    Wait,
    choose_menu,
    frames_active,
)
from softswitch.apps.directory import DialByName, dial_by_name
from softswitch.apps.session import collect_digits, play
from softswitch.calls.apps import AppCall, Application, Connected
from softswitch.calls.connect import Destination
from softswitch.calls.registry import ApplicationRegistry
from softswitch.prompts import PromptError, PromptLibrary

__all__ = ["AttendantService", "TenantVoice", "run_attendant"]

log = structlog.get_logger(__name__)


class TenantVoice:
    """Prompts of one tenant (and language) as audio for the media engine."""

    def __init__(self, library: PromptLibrary, tenant: str, language: str | None) -> None:
        self.library = library
        self.tenant = tenant
        self.language = language

    async def prompt(self, name: str) -> AudioSource:
        path = await self.library.audio_file(name, tenant=self.tenant, language=self.language)
        return str(path)

    async def text(self, text: str) -> AudioSource:
        return str(await self.library.speak(text, tenant=self.tenant, language=self.language))

    async def menu_prompt(self, prompt: MenuPrompt) -> AudioSource:
        if prompt.prompt is not None:
            return await self.prompt(prompt.prompt)
        assert prompt.text is not None
        return await self.text(prompt.text)


def dialable(tenant: Tenant) -> frozenset[str]:
    """What a caller may dial by extension from a menu: users and the tenant's services."""
    routing = tenant.routing
    return frozenset(
        {u.extension for u in tenant.users}
        | routing.conferences
        | routing.auto_attendants
        | routing.queues
        | routing.mailboxes
    )


class AttendantService:
    """Registers the auto attendant for ``auto_attendant`` application nodes."""

    def __init__(
        self,
        registry: ApplicationRegistry[Any],
        tenants: Mapping[str, Tenant],
        library: PromptLibrary,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tenants = tenants  # the call layer's, changed in place by provisioning
        self.library = library
        self.clock = clock
        registry.register(TargetKind.AUTO_ATTENDANT, self.application)

    def application(self, call: Any, target: Target) -> Application | None:
        """The attendant of extension ``target.ref`` for ``call`` (None: no such attendant,
        the caller hears 480)."""
        tenant = self.tenants.get(call.tenant)
        attendant = tenant.attendant_by_extension(target.ref) if tenant is not None else None
        if tenant is None or attendant is None:
            log.info("attendant_unknown", call=call.id, extension=target.ref)
            return None
        voice = TenantVoice(self.library, tenant.name, attendant.language)
        clock = self.clock

        async def run(session: AppCall) -> None:
            await run_attendant(session, tenant, attendant, voice, frames_active(tenant, clock()))

        return run


async def run_attendant(
    session: AppCall,
    tenant: Tenant,
    attendant: AutoAttendant,
    voice: TenantVoice,
    active: Callable[[str], bool],
) -> None:
    """Run ``attendant``'s menus on an answered call until the caller is put through,
    hangs up, or the menu hangs up."""
    name, menu = choose_menu(attendant, active)
    log.info("attendant_answered", call=session.call_id, attendant=attendant.name, menu=name)
    machine = MenuMachine(menu, dialable(tenant), attendant.greeting)
    steps: list[Step] = machine.start()
    while steps and not session.ended.is_set():
        step = steps.pop(0)
        if isinstance(step, Play | Say):
            key = _pending(session)
            if key is None:
                try:
                    audio = await (
                        voice.menu_prompt(step.prompt)
                        if isinstance(step, Play)
                        else voice.prompt(step.name)
                    )
                except PromptError as error:
                    log.warning("attendant_prompt_missing", call=session.call_id, error=str(error))
                    audio = prompts.REFUSED
                await play(session, audio, barge_in=step.barge_in)
                key = _pending(session) if step.barge_in else None
            if key is not None:
                steps = _keyed(machine, session, key)
            elif not steps:
                steps = machine.played()
        elif isinstance(step, Wait):
            key = await _next_key(session, step.seconds)
            if key is not None:
                steps = _keyed(machine, session, key)
            elif not session.ended.is_set():
                steps = machine.timeout()
        elif isinstance(step, Connect):
            result = await _carry_out(session, tenant, attendant, voice, step.action)
            if result is not None and result.answered:
                return
            if session.ended.is_set():
                return
            if result is not None:
                await play(session, await voice.prompt("menu-unavailable"))
            steps = machine.returned()
        elif isinstance(step, HangUp):
            break
    if not session.ended.is_set():
        await session.hangup()


def _keyed(machine: MenuMachine, session: AppCall, key: str) -> list[Step]:
    log.info("attendant_key", call=session.call_id, key=key)
    return machine.key(key)


def _pending(session: AppCall) -> str | None:
    queue = session.endpoint.digits
    return queue.get_nowait().digit if not queue.empty() else None


async def _next_key(session: AppCall, seconds: float) -> str | None:
    keys = await collect_digits(session, 1, seconds, terminator="")
    return keys or None


async def _carry_out(
    session: AppCall,
    tenant: Tenant,
    attendant: AutoAttendant,
    voice: TenantVoice,
    action: AttendantAction,
) -> Connected | None:
    """Put the caller through to ``action``'s destination; None when the caller chose
    nobody (the directory found no one or was left)."""
    kind, target = action.action, action.target or ""
    destination: Destination
    if kind is KeyAction.DIRECTORY:
        chosen = await dial_by_name(
            session, DialByName(tenant.users, attendant.directory_by), voice
        )
        if chosen is None:
            return None
        destination = chosen
    elif kind is KeyAction.QUEUE:
        destination = AppNode(Target(TargetKind.QUEUE, target))
    elif kind is KeyAction.VOICEMAIL:
        destination = AppNode(Target(TargetKind.VOICEMAIL, target))
    elif kind is KeyAction.VOICEMAIL_LOGIN:
        # The inbox that asks for the mailbox and the PIN (like the *98 code).
        destination = AppNode(Target(TargetKind.VOICEMAIL_INBOX, ""))
    elif kind is KeyAction.EXTERNAL:
        destination = Target(TargetKind.EXTERNAL, target)
    else:  # a user (with their answering rules), a ring group, a conference, an attendant:
        destination = target  # dialled, so routing rings it as if called directly
    log.info("attendant_connect", call=session.call_id, to=str(destination)[:80])
    result = await session.connect(destination, ringback=prompts.RINGBACK)
    log.info(
        "attendant_connected",
        call=session.call_id,
        outcome=result.outcome.value,
        status=result.status,
    )
    return result
