"""Write-behind: changes queue in memory and a background task writes them to the store."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

from mypy_extensions import mypyc_attr


# Compiled with mypyc (setup.py); the CDR writer subclasses it as ordinary Python.
@mypyc_attr(allow_interpreted_subclasses=True)
class WriteBehind(ABC):
    """A writer task that calls ``flush`` every ``flush_interval`` seconds, or at once when
    ``batch_size`` changes wait (``_queued`` tells it). ``stop`` asks the task to finish
    rather than cancelling it (a cancel inside a store transaction would leave that
    transaction open) and then flushes what is left, so a graceful shutdown loses nothing.
    A failed flush keeps its changes queued; the task retries a second later.
    """

    def __init__(self, *, name: str, flush_interval: float, batch_size: int):
        self._name = name
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.failed_writes = 0

    @abstractmethod
    async def flush(self) -> None:
        """Write every queued change (raise to keep them queued)."""

    def _queued(self, pending: int) -> None:
        """Tell the writer how many changes wait: a full batch is written at once."""
        if pending >= self._batch_size:
            self._wakeup.set()

    def _start_writer(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._writer(), name=self._name)

    async def stop(self) -> None:
        """Stop the writer after flushing every pending change."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _writer(self) -> None:
        while not self._closing:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._flush_interval)
            self._wakeup.clear()
            if self._closing:
                return
            try:
                await self.flush()
            except Exception:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), 1.0)
