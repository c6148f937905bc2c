"""What a call application sees of its call, and helpers to prompt and read keys.

The calls side implements :class:`AppSession` for an answered call whose media is
anchored; applications (conference, monitor) only use this interface and the media
control interface (:mod:`media.control`), so they run the same on the in-process engine
and on media worker processes, and tests drive them with a fake session over either.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import numpy as np

from media.control import MediaControl
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, load_source
from media.sources import SOURCES

__all__ = ["AppSession", "collect_digits", "flush_digits", "play"]


class AppSession(Protocol):
    """An answered call handed to an application."""

    call_id: str
    tenant: str  # the tenant's name
    caller_number: str
    caller_name: str
    dialed: str
    user: str | None  # the caller's extension when the caller is a local user
    engine: MediaControl  # the in-process engine or the media-worker pool
    endpoint: NegotiatedLeg  # anchored and answered before the application runs
    ended: asyncio.Event  # set when the caller hangs up

    async def hangup(self) -> None:
        """End the call from our side (sets ``ended``)."""


async def _until(session: AppSession, aw: asyncio.Future[Any], timeout: float) -> bool:
    """Wait for ``aw`` at most ``timeout`` seconds or until the caller hangs up.

    True when ``aw`` completed; it is cancelled otherwise."""
    ended = asyncio.ensure_future(session.ended.wait())
    try:
        done, _ = await asyncio.wait(
            {aw, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        ended.cancel()
    if aw not in done:
        aw.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await aw
        return False
    return True


async def collect_digits(
    session: AppSession, count: int, timeout: float, terminator: str = "#"
) -> str:
    """Read up to ``count`` keys from the caller; ``timeout`` seconds allowed per key.

    Stops early on ``terminator`` (not included), a timeout or the caller hanging up;
    returns what was entered so far.
    """
    if count < 1 or timeout <= 0:
        raise ValueError("count >= 1 and timeout > 0 required")
    digits = ""
    for _ in range(count + 1):  # the terminator may follow the last digit
        getter = asyncio.ensure_future(session.endpoint.digits.get())
        if not await _until(session, getter, timeout):
            break
        key = getter.result().digit
        if key == terminator:
            break
        digits += key
        if len(digits) >= count:
            break
    return digits


def flush_digits(endpoint: NegotiatedLeg) -> None:
    """Forget keys pressed earlier (before a prompt that expects fresh input)."""
    for _ in range(endpoint.digits.qsize()):
        endpoint.digits.get_nowait()


async def play(
    session: AppSession, source: AudioSource, *, barge_in: bool = False, limit: float = 120.0
) -> str:
    """Play ``source`` to the caller and wait until it ends (or the caller hangs up, or
    ``limit`` seconds pass); the reason it ended."""
    if session.ended.is_set() or session.endpoint.released:
        return "hangup"
    if not isinstance(source, np.ndarray) and SOURCES.cached(source) is None:
        # decoded in a thread first: the play (and an in-process engine's tick loop, which
        # is this loop) then finds it in the process's cache instead of reading the file
        await asyncio.to_thread(load_source, source)
        if session.ended.is_set() or session.endpoint.released:
            return "hangup"
    playback = session.engine.play(session.endpoint, source, barge_in=barge_in)
    waiter = asyncio.ensure_future(playback.wait())
    if await _until(session, waiter, limit):
        return waiter.result()
    if not session.endpoint.released:
        session.engine.stop(session.endpoint)
    return "hangup" if session.ended.is_set() else "timeout"
