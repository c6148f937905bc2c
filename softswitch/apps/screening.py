"""Call screening and answer confirmation: what the caller and the answerer hear.

The call layer decides when (``softswitch.calls.confirm``); this module says it, with the
tenant's prompts:

- screening, the caller's side: "Please say your name after the tone", a beep, up to
  ``NAME_SECONDS`` of recording (``#`` ends it), then the caller is connected to the ring
  node that asked for it, hearing ringback;
- the answerer's side: "You have a call from" and the caller's recorded name (or, without
  one, the caller's name or number spoken), "To accept the call, press 1. To send it on,
  press 2." (screening), or "You have a call. To accept it, press 1." (answer
  confirmation). 1 accepts; 2, another key twice, silence or hanging up does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from media.control import MediaControl
from media.endpoint import MediaError
from media.negotiation import NegotiatedLeg
from media.players import AudioSource
from media.wav import read_wav
from routing.plan import Ring
from softswitch.apps import prompts
from softswitch.apps.attendant import TenantVoice
from softswitch.apps.session import collect_digits, flush_digits, play
from softswitch.calls.apps import AppCall, Application
from softswitch.calls.confirm import SCREEN, Confirmation, Confirmations
from softswitch.prompts import PromptError, PromptLibrary

__all__ = ["ScreeningService", "record_name"]

log = structlog.get_logger(__name__)

NAME_SECONDS = 3.0
#: Seconds the answerer has to press a key after the question.
ANSWER_SECONDS = 5.0
_POLL = 0.2


class ScreeningService:
    """Registers the prompts of screening and answer confirmation with the call layer."""

    def __init__(self, confirmations: Confirmations, library: PromptLibrary) -> None:
        self.library = library
        confirmations.confirmer = self.confirm
        confirmations.screener = self.screener

    # ---------------------------------------------------------------- the caller
    def screener(self, call: Any, node: Ring) -> Application:
        """The caller records a name, then rings ``node`` (whose legs play the name)."""
        library = self.library

        async def run(session: AppCall) -> None:
            voice = TenantVoice(library, session.tenant, None)
            await play(session, await _audio(voice.prompt("screen-say-name")))
            name = await record_name(session)
            if session.ended.is_set():
                return
            result = await session.connect(node, ringback=prompts.RINGBACK, caller_voice=name)
            if not result.answered and not session.ended.is_set():
                await play(session, await _audio(voice.prompt("menu-unavailable")))

        return run

    # ---------------------------------------------------------------- the answerer
    async def confirm(self, request: Confirmation) -> bool:
        """Ask the answerer; True when they pressed 1."""
        voice = TenantVoice(self.library, request.tenant, None)
        if request.kind == SCREEN:
            name: AudioSource
            if request.caller_voice is not None and len(request.caller_voice):
                name = request.caller_voice
            else:
                name = await _audio(voice.text(request.caller_name or _spell(request)))
            parts = [await _audio(voice.prompt("screen-call-from")), name]
            question = await _audio(voice.prompt("screen-accept"))
        else:
            parts = []
            question = await _audio(voice.prompt("confirm-accept"))
        engine, endpoint, given_up = request.engine, request.endpoint, request.given_up
        flush_digits(endpoint)
        for _ in range(2):
            key = None
            for part in (*parts, question):
                key = await _say(engine, endpoint, part, given_up)
                if key is not None or given_up():
                    break
            if key is None and not given_up():
                key = await _key(endpoint, ANSWER_SECONDS, given_up)
            if given_up() or key in (None, "2"):
                return False
            if key == "1":
                return True
        return False


def _spell(request: Confirmation) -> str:
    return " ".join(request.caller_number) if request.caller_number else "an unknown caller"


async def _audio(aw: Any) -> AudioSource:
    try:
        audio: AudioSource = await aw
        return audio
    except PromptError as error:
        log.warning("screening_prompt_missing", error=str(error))
        return prompts.RECORD_NAME


async def _say(
    engine: MediaControl, endpoint: NegotiatedLeg, source: AudioSource, given_up: Callable[[], bool]
) -> str | None:
    """Play ``source`` until it ends, a key interrupts it (the key) or ``given_up``."""
    if endpoint.released:
        return None
    waiter = asyncio.ensure_future(engine.play(endpoint, source, barge_in=True).wait())
    try:
        while not waiter.done():
            await asyncio.wait({waiter}, timeout=_POLL)
            if given_up() or endpoint.released:
                if not endpoint.released:
                    engine.stop(endpoint)
                return None
    finally:
        waiter.cancel()
    return None if endpoint.digits.empty() else endpoint.digits.get_nowait().digit


async def _key(endpoint: NegotiatedLeg, seconds: float, given_up: Callable[[], bool]) -> str | None:
    waited = 0.0
    while waited < seconds:
        if given_up() or endpoint.released:
            return None
        try:
            digit = await asyncio.wait_for(endpoint.digits.get(), _POLL)
        except TimeoutError:
            waited += _POLL
            continue
        return str(digit.digit)
    return None


async def record_name(
    session: AppCall, seconds: float = NAME_SECONDS
) -> npt.NDArray[np.int16] | None:
    """Beep, record what the caller says for up to ``seconds`` (``#`` ends it)."""
    await play(session, prompts.RECORD_NAME)
    if session.ended.is_set():
        return None
    path = Path(tempfile.gettempdir()) / f"screen-name-{uuid.uuid4().hex}.wav"
    try:
        recording = session.engine.record(session.endpoint, None, path)
    except MediaError as error:
        log.warning("screening_name_not_recorded", error=str(error))
        return None
    flush_digits(session.endpoint)
    await collect_digits(session, 1, seconds)
    session.engine.stop_recording(recording)
    try:
        await recording.wait_closed()
        samples, _ = read_wav(path)
    except (OSError, ValueError, MediaError) as error:
        log.warning("screening_name_not_read", error=str(error))
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    voice = samples[:, 0].astype(np.int16)
    return voice if len(voice) else None
