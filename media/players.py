"""Players (prompts, music on hold) and their completion handles.

A :class:`Player` hands out one 160-sample frame per tick from an int16 8 kHz buffer;
the engine owns it and resolves its :class:`Playback` when it ends.  Sources are a numpy
array or a WAV path (decoded once per version of the file by the process's
:data:`media.sources.SOURCES`, so a greeting or music-on-hold file shared by many calls is
read once, and read again when it changes on disk).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from media.sources import SOURCES

FRAME = 160

AudioSource = npt.NDArray[np.int16] | str | os.PathLike[str]


def load_source(source: AudioSource) -> npt.NDArray[np.int16]:
    """int16 mono 8 kHz samples of ``source``; raises ValueError naming what is wrong.

    A file not yet decoded (or changed on disk) is read here: from an event loop that
    ticks media, look it up with :meth:`media.sources.SourceCache.cached` and decode a miss
    in a thread (``asyncio.to_thread(load_source, path)``).
    """
    if isinstance(source, np.ndarray):
        if source.dtype != np.int16 or source.ndim != 1:
            raise ValueError(
                f"audio samples must be 1-D int16 at 8 kHz, not {source.ndim}-D {source.dtype}"
            )
        if not len(source):
            raise ValueError("audio samples are empty")
        if not source.flags.writeable:
            return source  # already frozen (a cached decode): shared, not copied per play
        samples = source.copy()
        samples.flags.writeable = False
        return samples
    return SOURCES.load(source)


@dataclass(eq=False)
class Playback:
    """Handle of one play request: await :meth:`wait` for the reason it ended.

    Reasons: ``finished`` (the end of a non-looping source), ``stopped``, ``barge-in``
    (a DTMF digit with barge-in enabled), ``replaced`` (another play on the endpoint),
    ``released`` (the endpoint or engine went away), and with a media-worker pool
    ``failed`` (the worker could not play it, or died).
    """

    endpoint_id: int
    future: asyncio.Future[str]

    def done(self) -> bool:
        """Whether the playback has ended."""
        return self.future.done()

    async def wait(self) -> str:
        """The reason the playback ended."""
        return await asyncio.shield(self.future)


@dataclass(eq=False)
class Player:
    """Frame source over an int16 buffer, optionally looping."""

    samples: npt.NDArray[np.int16]
    loop: bool = False
    barge_in: bool = False
    playback: Playback | None = None
    position: int = field(init=False)

    def __post_init__(self) -> None:
        # Set here, not as a field default: compiled with mypyc the dataclass leaves an
        # init=False field with a plain default unset (there is no class attribute to read).
        self.position = 0

    def next_frame(self) -> npt.NDArray[np.int16] | None:
        """The next 160 samples (zero-padded at the end), or None once finished."""
        n = len(self.samples)
        if self.loop:
            # modulo indexing: no gap at the seam, and sources shorter than a frame work
            start = self.position
            self.position = (start + FRAME) % n
            if start + FRAME <= n:
                return self.samples[start : start + FRAME]
            return np.take(self.samples, np.arange(start, start + FRAME) % n)
        if self.position >= n:
            return None
        end = self.position + FRAME
        if end <= n:
            frame = self.samples[self.position : end]
        else:
            frame = np.zeros(FRAME, np.int16)
            frame[: n - self.position] = self.samples[self.position :]
        self.position = end
        return frame

    def finish(self, reason: str) -> None:
        """Resolve the playback handle (once)."""
        if self.playback is not None and not self.playback.future.done():
            self.playback.future.set_result(reason)
