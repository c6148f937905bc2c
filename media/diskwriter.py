"""The thread that writes call recordings, so a slow disk never holds a media tick up.

The engine buffers each recording's frames and hands a block to this thread every 200 ms;
the thread interleaves the channels, writes and hands the bytes to the operating system,
and closes a file (patching its WAV header) after its last block, in the order asked.
With hundreds of recordings, a tick used to write a few dozen files itself, and a disk
that stalled (page-cache write-back on a busy machine) stalled every call's audio.  One
thread per engine, started with it; :meth:`DiskWriter.drain` stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import structlog

from media.wav import RecordingWriter

__all__ = ["DiskWriter"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Block:
    writer: RecordingWriter
    left: list[npt.NDArray[np.int16]]
    right: list[npt.NDArray[np.int16]]
    done: Callable[[str | None], None] | None  # set on the last block: the file is closed


class DiskWriter:
    """Writes recordings' blocks and closes their files on one thread, in order."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Block | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failed: set[int] = set()  # id() of writers whose file failed (logged once)
        self.blocks = 0  # blocks handed over so far (the tick trace counts them)

    def write(
        self,
        writer: RecordingWriter,
        left: list[npt.NDArray[np.int16]],
        right: list[npt.NDArray[np.int16]],
    ) -> None:
        """Append frames (one list per channel; the lists are handed over, not copied)."""
        self._put(_Block(writer, left, right, None))

    def close(
        self,
        writer: RecordingWriter,
        left: list[npt.NDArray[np.int16]],
        right: list[npt.NDArray[np.int16]],
        done: Callable[[str | None], None],
    ) -> None:
        """Write the last frames and close the file; ``done(error)`` is called on the
        writer thread afterwards (error None, or what went wrong with the file)."""
        self._put(_Block(writer, left, right, done))

    def start(self) -> None:
        """Start the thread now (``Thread.start`` waits until it runs: on a busy machine,
        not something to do in the middle of a burst of calls); idempotent."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
            self._thread.start()

    def _put(self, block: _Block) -> None:
        self.start()
        self.blocks += 1
        self._queue.put(block)

    async def drain(self) -> None:
        """Finish what was asked and stop the thread (a later write starts it again)."""
        thread = self._thread
        if thread is None:
            return
        self._thread = None
        self._queue.put(None)
        await asyncio.to_thread(thread.join)

    def _run(self) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            error: str | None = None
            writer = block.writer
            try:
                if block.left:
                    writer.write(np.concatenate(block.left), np.concatenate(block.right))
                if block.done is not None:
                    writer.close()
            except (OSError, ValueError) as exc:
                error = str(exc)
                if id(writer) not in self._failed:
                    self._failed.add(id(writer))
                    log.warning("recording_write_failed", path=writer.path, error=error)
                if block.done is not None:
                    with contextlib.suppress(OSError, ValueError):
                        writer.close()
            if block.done is not None:
                self._failed.discard(id(writer))
                with contextlib.suppress(RuntimeError):  # its loop is gone (closed at exit)
                    block.done(error)
