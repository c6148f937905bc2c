"""What a call application sees of its call, and helpers to prompt and read keys.

The calls side implements :class:`AppSession` for an answered call whose media is
anchored; applications (conference, monitor) only use this interface and the media
control interface (:mod:`media.control`), so they run the same on the in-process engine
and on media worker processes, and tests drive them with a fake session over either.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol

import numpy as np

from media.control import MediaControl
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, load_source
from media.sources import SOURCES

__all__ = [
    "AppSession",
    "collect_digits",
    "flush_digits",
    "key_pressed",
    "play",
    "play_when_ready",
]


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


async def _race(
    session: AppSession, aw: asyncio.Future[Any], timeout: float, *, keys: bool = False
) -> str:
    """Wait for ``aw`` at most ``timeout`` seconds, until the caller hangs up or (``keys``)
    presses a key, which stays queued for whoever reads keys next.

    ``done`` when ``aw`` completed, else ``key``, ``hangup`` or ``timeout`` and ``aw`` is
    cancelled."""
    ended = asyncio.ensure_future(session.ended.wait())
    waiters: set[asyncio.Future[Any]] = {aw, ended}
    key = asyncio.ensure_future(key_pressed(session.endpoint)) if keys else None
    if key is not None:
        waiters.add(key)
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        if key is not None:
            key.cancel()  # Queue.get is cancel-safe: a key it had not returned stays queued
    if aw.done():
        return "done"
    aw.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await aw
    if session.ended.is_set():
        return "hangup"
    return "key" if key is not None and not session.endpoint.digits.empty() else "timeout"


async def _until(session: AppSession, aw: asyncio.Future[Any], timeout: float) -> bool:
    """Wait for ``aw`` at most ``timeout`` seconds or until the caller hangs up.

    True when ``aw`` completed; it is cancelled otherwise."""
    return await _race(session, aw, timeout) == "done"


async def key_pressed(endpoint: NegotiatedLeg) -> None:
    """Return once a key waits in ``endpoint.digits``, leaving it there (still first).

    A prompt being prepared or played with barge-in watches for a key this way without
    taking it: the menu that reads keys next acts on it, and on the keys after it in the
    order they were pressed."""
    queue = endpoint.digits
    if not queue.empty():
        return
    first = await queue.get()
    # Keys that arrived since go back behind it; nothing awaits in between, so no other
    # reader or writer can interleave.
    later = [queue.get_nowait() for _ in range(queue.qsize())]
    queue.put_nowait(first)
    for digit in later:
        queue.put_nowait(digit)


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


# how play() reports a wait that ended before the audio did
_ENDED = {"key": "barge-in", "hangup": "hangup", "timeout": "timeout"}


async def play(
    session: AppSession, source: AudioSource, *, barge_in: bool = False, limit: float = 120.0
) -> str:
    """Play ``source`` to the caller and wait until it ends (or the caller hangs up, or
    ``limit`` seconds pass); the reason it ended.

    With ``barge_in`` a key ends it (``barge-in``) and stays queued for the menu that
    reads keys next: one pressed during the playback, and one pressed before it started
    (typed ahead, as FreeSWITCH and Asterisk take it), which skips the prompt."""
    if session.ended.is_set() or session.endpoint.released:
        return "hangup"
    if barge_in and not session.endpoint.digits.empty():
        return "barge-in"
    if not isinstance(source, np.ndarray) and SOURCES.cached(source) is None:
        # decoded in a thread first: the play (and an in-process engine's tick loop, which
        # is this loop) then finds it in the process's cache instead of reading the file
        decoding = asyncio.ensure_future(asyncio.to_thread(load_source, source))
        got = await _race(session, decoding, limit, keys=barge_in)
        if got != "done":
            return _ENDED[got]
        decoding.result()  # a file that cannot be read raises here, as the play would
        if session.ended.is_set() or session.endpoint.released:
            return "hangup"
    playback = session.engine.play(session.endpoint, source, barge_in=barge_in)
    waiter = asyncio.ensure_future(playback.wait())
    got = await _race(session, waiter, limit, keys=barge_in)
    if got == "done":
        return str(waiter.result())
    if not session.endpoint.released:
        # a key the engine saw first has ended the playback already: stopping is a no-op
        session.engine.stop(session.endpoint)
    return _ENDED[got]


async def play_when_ready(
    session: AppSession,
    audio: Awaitable[AudioSource],
    *,
    barge_in: bool = False,
    limit: float = 120.0,
) -> str:
    """Play audio still being prepared (a prompt being synthesised) as :func:`play` does.

    With ``barge_in`` a key pressed while it is prepared ends the wait at once
    (``barge-in``; the key stays queued): the caller need not sit out the synthesis to be
    heard. The preparation carries on in the background all the same, so whatever caches
    its result (the text-to-speech cache) has it for the next time."""
    task = asyncio.ensure_future(audio)
    _PREPARING.add(task)
    task.add_done_callback(_prepared)
    got = await _race(session, asyncio.shield(task), limit, keys=barge_in)
    if got != "done":
        return _ENDED[got]
    return await play(session, task.result(), barge_in=barge_in, limit=limit)


# Preparations a caller stopped waiting for, held until they finish (the loop keeps only
# weak references to tasks).
_PREPARING: set[asyncio.Future[AudioSource]] = set()


def _prepared(task: asyncio.Future[AudioSource]) -> None:
    _PREPARING.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: whoever waited has it; one nobody waited for is dropped
