"""Call recordings: two channels (caller, callee) of 8 kHz 16-bit PCM in a WAV file.

The engine appends one frame per channel per tick; frames are buffered and handed every
200 ms to the engine's :class:`~media.diskwriter.DiskWriter` thread, which writes them (and
hands them to the operating system), so a recording costs five writes a second, not one
per packet, none of them on the tick, and a switch killed outright (SIGKILL) loses at most
the last 200 ms: what was written is in the kernel's page cache, which outlives the process.
Stopping a recording queues its last frames and the close; :meth:`Recording.wait_closed`
returns once the WAV is complete.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from media.diskwriter import DiskWriter
from media.endpoint import Endpoint
from media.wav import RecordingWriter

FLUSH_FRAMES = 10  # frames buffered before a write (200 ms)


@dataclass(eq=False)
class Recording:
    """A 2-channel WAV being written: channel 0 the caller, channel 1 the callee.

    With a single endpoint, channel 0 is what it sends and channel 1 what it hears.
    """

    path: str
    caller: Endpoint
    callee: Endpoint | None
    writer: RecordingWriter
    disk: DiskWriter
    closed: asyncio.Future[int]  # resolved (frames) once the WAV is complete
    frames: int = 0
    active: bool = True
    error: str | None = None  # what went wrong with the file, if anything
    # the first block is this many frames shorter, so recordings started in one tick (a
    # burst of callers) hand their blocks over in different ticks, not all in one
    phase: int = 0
    _left: list[npt.NDArray[np.int16]] = field(default_factory=list)
    _right: list[npt.NDArray[np.int16]] = field(default_factory=list)

    def append(self, left: npt.NDArray[np.int16], right: npt.NDArray[np.int16]) -> None:
        """Add one frame per channel."""
        self._left.append(left)
        self._right.append(right)
        self.frames += 1
        if len(self._left) >= FLUSH_FRAMES - self.phase:
            self.phase = 0
            self.flush()

    async def wait_closed(self) -> int:
        """Frames recorded, once the WAV is complete (after the engine stopped it)."""
        return await asyncio.shield(self.closed)

    def flush(self) -> None:
        """Hand the buffered frames to the writer thread."""
        if self._left:
            self.disk.write(self.writer, self._left, self._right)
            self._left = []
            self._right = []

    def finish(self) -> None:
        """Queue the last frames and the close; :attr:`closed` resolves afterwards."""
        self.disk.close(self.writer, self._left, self._right, self._closed_on_disk)
        self._left = []
        self._right = []

    def _closed_on_disk(self, error: str | None) -> None:
        # on the writer thread (a bound method, not a closure: no cycle per recording)
        self.closed.get_loop().call_soon_threadsafe(self._finished, error)

    def _finished(self, error: str | None) -> None:
        self.error = error
        if not self.closed.done():
            self.closed.set_result(self.frames)
