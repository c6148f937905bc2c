"""Recording something by phone: after the tone until ``#``, then keep, listen or again.

Shared by the voicemail greetings (the inbox's options) and prompts recorded with the
tenant's record code: both follow the same keys (``1`` keep, ``2`` listen, ``3`` record
again), as users know them from Asterisk's greeting menu.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from media.wav import write_wav
from softswitch.apps import prompts as tones
from softswitch.apps.session import AppSession, collect_digits, flush_digits, play
from softswitch.voicemail.audio import recorded_channel

__all__ = ["BEEP", "KEY_TIMEOUT", "next_key", "pressed", "record_by_phone", "wait_key"]

log = structlog.get_logger(__name__)

BEEP = tones.tone([1000], 250)
KEY_TIMEOUT = 6.0  # seconds to wait for a menu key

Say = Callable[[str], Awaitable[object]]
"""Plays the prompt of that name to the caller."""


async def record_by_phone(
    session: AppSession,
    say: Say,
    folder: Path,
    limit: float,
    keep: Callable[[Path], Awaitable[bool]],
) -> bool:
    """Record the caller (``limit`` seconds at most) and let them review it; ``keep`` gets
    a mono 8 kHz WAV of what they said (in a scratch directory under ``folder``, gone
    afterwards) and says whether it was stored. True when the recording was kept."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        raw = Path(tmp) / "raw.wav"
        while not session.ended.is_set():
            await say("record-after-tone")
            await play(session, BEEP)
            flush_digits(session.endpoint)
            handle = session.engine.record(session.endpoint, None, raw)
            log.info("phone_recording", call=session.call_id)
            try:
                await wait_key(session, "#", limit)
            finally:
                session.engine.stop_recording(handle)
                with contextlib.suppress(Exception):
                    await handle.wait_closed()
            if session.ended.is_set():
                return False
            log.info("phone_recording_review", call=session.call_id)
            choice = ""
            while choice not in ("1", "3") and not session.ended.is_set():
                await say("vm-greeting-review")
                choice = await next_key(session, KEY_TIMEOUT) or "1"
                if choice == "2":
                    mono = Path(tmp) / "listen.wav"
                    _mono(raw, mono)
                    await play(session, str(mono), barge_in=True)
            if choice == "1":
                mono = Path(tmp) / "kept.wav"
                _mono(raw, mono)
                return await keep(mono)
    return False


def pressed(session: AppSession) -> str:
    """The first key pressed so far (consumed), or ""."""
    try:
        return session.endpoint.digits.get_nowait().digit
    except asyncio.QueueEmpty:
        return ""


async def next_key(session: AppSession, timeout: float) -> str:
    """The next key (one pressed already counts), "" after ``timeout`` or a hang-up."""
    key = pressed(session)
    if key:
        return key
    got = await collect_digits(session, 1, timeout, terminator="")
    return got[:1]


async def wait_key(session: AppSession, key: str, timeout: float) -> None:
    """Until ``key`` is pressed, the caller hangs up or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not session.ended.is_set():
        left = deadline - loop.time()
        if left <= 0:
            return
        got = await collect_digits(session, 1, left, terminator="")
        if got == key or not got:
            return


def _mono(raw: Path, target: Path) -> None:
    write_wav(target, recorded_channel(raw))
