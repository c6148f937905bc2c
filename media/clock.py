"""The engine's 20 ms frame clock on an asyncio loop.

Deadlines are absolute (start + k * period on ``time.monotonic``) so scheduling error never
accumulates.  A tick that starts more than ``late_after`` seconds after its deadline is
counted as late.  When the process falls more than ``max_backlog`` frames behind (a stall,
a suspended VM) the clock resynchronises instead of firing a burst of catch-up ticks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

FRAME_SECONDS = 0.020


@dataclass(slots=True)
class ClockStats:
    """Counters of one frame clock."""

    ticks: int = 0
    late_ticks: int = 0  # started more than late_after behind the deadline
    resyncs: int = 0  # fell max_backlog frames behind and skipped ahead
    errors: int = 0  # tick callbacks that raised
    max_lateness: float = 0.0  # seconds
    max_duration: float = 0.0  # seconds spent in the longest tick callback
    busy: float = 0.0  # total seconds spent in tick callbacks


class FrameClock:
    """Calls ``on_tick(now)`` every ``period`` seconds until :meth:`stop`."""

    def __init__(
        self,
        on_tick: Callable[[float], None],
        *,
        period: float = FRAME_SECONDS,
        late_after: float = 0.005,
        max_backlog: int = 5,
    ) -> None:
        if period <= 0 or late_after < 0 or max_backlog < 1:
            raise ValueError("period > 0, late_after >= 0 and max_backlog >= 1 required")
        self._on_tick = on_tick
        self.period = period
        self.late_after = late_after
        self.max_backlog = max_backlog
        self.stats = ClockStats()
        self._handle: asyncio.TimerHandle | asyncio.Handle | None = None
        self._deadline = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        """Whether the clock is ticking."""
        return self._loop is not None

    @property
    def next_tick(self) -> float:
        """When the next tick is due (``time.monotonic()``)."""
        return self._deadline

    def start(self) -> None:
        """Start ticking on the running loop; the first tick is one period from now."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._deadline = time.monotonic() + self.period
        self._schedule()

    def stop(self) -> None:
        """Stop ticking (idempotent)."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._loop = None

    def _schedule(self) -> None:
        assert self._loop is not None
        delay = self._deadline - time.monotonic()
        if delay <= 0:
            self._handle = self._loop.call_soon(self._fire)
        else:
            self._handle = self._loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        if self._loop is None:
            return
        start = time.monotonic()
        lateness = start - self._deadline
        stats = self.stats
        stats.ticks += 1
        if lateness > self.late_after:
            stats.late_ticks += 1
        stats.max_lateness = max(stats.max_lateness, lateness)
        try:
            self._on_tick(start)
        except Exception:
            # one bad tick must not stop the media of every call
            stats.errors += 1
            log.exception("media_tick_failed")
        duration = time.monotonic() - start
        stats.busy += duration
        stats.max_duration = max(stats.max_duration, duration)
        self._deadline += self.period
        behind = time.monotonic() - self._deadline
        if behind > self.max_backlog * self.period:
            stats.resyncs += 1
            self._deadline = time.monotonic() + self.period
        if self._loop is not None:
            self._schedule()
