"""Commands applied between frame ticks, so a burst of them never holds a tick up.

A media worker receives its commands in bursts: 200 calls set up or hung up at once are 200
``Open`` or ``Release`` commands in one read of the channel, and applied in one go they hold
the loop past the next tick's deadline, which every caller hears. The inbox applies commands
in order until the next tick is near, and the rest right after that tick.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

Command = TypeVar("Command")

TICK_MARGIN = 0.002  # seconds before a tick from which commands wait for it


class TickPacedInbox(Generic[Command]):
    """Applies commands in order with ``apply``, none starting within ``TICK_MARGIN`` of
    the tick ``next_tick()`` names (``time.monotonic()``; None: no clock, apply at once)."""

    def __init__(
        self, apply: Callable[[Command], None], next_tick: Callable[[], float | None]
    ) -> None:
        self._apply = apply
        self._next_tick = next_tick
        self._waiting: deque[Command] = deque()
        self._scheduled = False

    def put(self, command: Command) -> None:
        """Queue a command; it is applied from the loop, after those queued before it."""
        self._waiting.append(command)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def flush(self) -> None:
        """Apply every waiting command now (the worker is stopping)."""
        while self._waiting:
            self._apply(self._waiting.popleft())

    def _drain(self) -> None:
        self._scheduled = False
        while self._waiting:
            due = self._next_tick()
            if due is not None:
                wait = due - time.monotonic()
                if wait < TICK_MARGIN:
                    self._scheduled = True
                    loop = asyncio.get_running_loop()
                    if wait > 0:  # just after the tick, whose timer was set first
                        loop.call_later(wait, self._drain)
                    else:  # the tick is due: a callback set now runs after it
                        loop.call_soon(self._drain)
                    return
            self._apply(self._waiting.popleft())
