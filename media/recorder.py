"""Call recordings: two channels (caller, callee) of 8 kHz 16-bit PCM in a WAV file.

The engine appends one frame per channel per tick; frames are buffered and written (and
handed to the operating system) every 200 ms, so a recording costs five writes a second,
not one per packet, and a switch killed outright (SIGKILL) loses at most the last 200 ms:
what was written is in the kernel's page cache, which outlives the process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from media.endpoint import Endpoint
from media.wav import RecordingWriter

_FLUSH_FRAMES = 10  # frames buffered before a write (200 ms)


@dataclass(eq=False)
class Recording:
    """A 2-channel WAV being written: channel 0 the caller, channel 1 the callee.

    With a single endpoint, channel 0 is what it sends and channel 1 what it hears.
    """

    path: str
    caller: Endpoint
    callee: Endpoint | None
    writer: RecordingWriter
    frames: int = 0
    active: bool = True
    _left: list[npt.NDArray[np.int16]] = field(default_factory=list)
    _right: list[npt.NDArray[np.int16]] = field(default_factory=list)

    def append(self, left: npt.NDArray[np.int16], right: npt.NDArray[np.int16]) -> None:
        """Add one frame per channel."""
        self._left.append(left)
        self._right.append(right)
        self.frames += 1
        if len(self._left) >= _FLUSH_FRAMES:
            self.flush()

    async def wait_closed(self) -> int:
        """Frames written (the engine completes the WAV when the recording stops)."""
        return self.frames

    def flush(self) -> None:
        """Write the buffered frames to the file."""
        if self._left:
            self.writer.write(np.concatenate(self._left), np.concatenate(self._right))
            self._left.clear()
            self._right.clear()
