"""Recording a prompt by phone: the tenant's record code (``*95``) from an authorised phone.

A user listed in ``[tenants.prompts] recorders`` dials the record code and enters the
prompt's number and ``#`` (or dials the code followed at once by a slot number, ``*951``);
after the tone they speak, ``#`` ends, then ``1`` keeps, ``2`` plays it back, ``3`` records
again. The recording, its silence trimmed, enters the tenant's prompt library under the
slot's name (or the number itself) through :meth:`PromptLibrary.add_file`, so an auto
attendant naming that prompt plays it on its next call. Anyone else is refused with 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from config.models import Tenant
from config.prompts import TenantPrompts
from media.wav import write_wav
from routing.plan import Target, TargetKind
from softswitch.apps.recording import record_by_phone
from softswitch.apps.session import AppSession, collect_digits, play
from softswitch.calls.apps import Application, CallRefused
from softswitch.calls.registry import ApplicationRegistry
from softswitch.prompts import Phrase, PromptError, PromptLibrary
from softswitch.voicemail.audio import said

__all__ = ["PromptRecorder"]

log = structlog.get_logger(__name__)

DIGIT_TIMEOUT = 5.0  # seconds between the digits of a prompt number
ATTEMPTS = 3  # prompt numbers asked for before giving up


class PromptRecorder:
    """Registers the record-a-prompt application for ``prompt_record`` feature codes."""

    def __init__(
        self,
        registry: ApplicationRegistry[Any],
        tenants: Mapping[str, Tenant],
        library: PromptLibrary,
    ) -> None:
        self.tenants = tenants  # the call layer's, changed in place by provisioning
        self.library = library
        registry.register(TargetKind.PROMPT_RECORD, self.application)

    def application(self, call: Any, target: Target) -> Application | None:
        """The recorder for ``call`` (``target.ref``: the prompt's name, empty: asked for);
        CallRefused 403 unless the caller is one of the tenant's recorders."""
        tenant = self.tenants.get(call.tenant)
        if tenant is None or call.from_trunk or call.caller_number not in tenant.prompts.recorders:
            log.info("prompt_record_denied", call=call.id, caller=call.caller_number)
            raise CallRefused(403, "Forbidden")
        settings = tenant.prompts

        async def run(session: Any) -> None:
            await self.record(session, settings, target.ref or None)

        return run

    async def record(self, session: AppSession, settings: TenantPrompts, name: str | None) -> None:
        """Ask for the prompt (unless ``name``), record it and store it in the library."""

        async def say(prompt: str) -> object:
            phrase = Phrase(self.library.language_of(session.tenant)).prompt(prompt)
            try:
                audio = await self.library.render(phrase, tenant=session.tenant)
            except PromptError as exc:
                log.warning("prompt_record_prompt_failed", call=session.call_id, error=str(exc))
                return "failed"
            return await play(session, audio, barge_in=True)

        for _ in range(ATTEMPTS):
            if name is not None or session.ended.is_set():
                break
            await say("prompt-enter-number")
            number = await collect_digits(session, 4, DIGIT_TIMEOUT)
            name = settings.prompt_name(number) if number else None
        if name is None:
            if not session.ended.is_set():
                await say("vm-goodbye")
            return
        chosen = name

        async def keep(mono: Path) -> bool:
            trimmed = mono.with_name("trimmed.wav")
            speech = said(mono)
            if not len(speech):
                log.info("prompt_record_silent", call=session.call_id, prompt=chosen)
                return False
            await asyncio.to_thread(write_wav, trimmed, speech)
            try:
                await asyncio.to_thread(
                    self.library.add_file, trimmed, chosen, tenant=session.tenant
                )
            except PromptError as exc:
                log.warning("prompt_record_failed", call=session.call_id, error=str(exc))
                return False
            log.info(
                "prompt_recorded",
                call=session.call_id,
                tenant=session.tenant,
                prompt=chosen,
                by=session.user,
                seconds=round(len(speech) / 8000, 2),
            )
            return True

        scratch = self.library.root / "tenants" / session.tenant / ".recording"
        limit = settings.max_record_seconds
        if await record_by_phone(session, say, scratch, limit, keep):
            await say("record-saved")
        elif not session.ended.is_set():
            await say("vm-goodbye")
