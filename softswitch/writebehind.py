"""Write-behind: changes queue in memory and a background task writes them to the store."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

from mypy_extensions import mypyc_attr


# Compiled with mypyc (setup.py); the CDR writer subclasses it as ordinary Python.
@mypyc_attr(allow_interpreted_subclasses=True)
class WriteBehind(ABC):
    """A writer task that calls ``flush`` ``flush_interval`` seconds after the first change
    queued since the last flush, or at once when ``batch_size`` changes wait (``_queued``
    tells it). With nothing queued the task sleeps: an idle switch does not wake it, and
    the changes of one interval go to the store in one transaction. ``stop`` asks the task
    to finish rather than cancelling it (a cancel inside a store transaction would leave
    that transaction open) and then flushes what is left, so a graceful shutdown loses
    nothing. A failed flush keeps its changes queued; the task retries a second later.
    """

    def __init__(self, *, name: str, flush_interval: float, batch_size: int):
        self._name = name
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._changed = asyncio.Event()  # something waits to be written
        self._wakeup = asyncio.Event()  # write now: a full batch, or stopping
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failed_writes = 0

    @abstractmethod
    async def flush(self) -> None:
        """Write every queued change (raise to keep them queued)."""

    def _queued(self, pending: int) -> None:
        """Tell the writer how many changes wait: the first arms the flush interval, a full
        batch is written at once."""
        if pending > 0:
            self._changed.set()
        if pending >= self._batch_size:
            self._wakeup.set()

    def _start_writer(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._writer(), name=self._name)

    async def stop(self) -> None:
        """Stop the writer after flushing every pending change."""
        self._closing = True
        self._changed.set()
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _writer(self) -> None:
        while not self._closing:
            await self._changed.wait()
            if not self._wakeup.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._flush_interval)
            # Cleared before the flush: a change queued while it runs arms the next one.
            self._changed.clear()
            self._wakeup.clear()
            if self._closing:
                return
            try:
                await self.flush()
            except Exception:
                self._changed.set()  # still queued: retry
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), 1.0)
