"""What the API works on: the running switch (a narrow view of it) and its own parts.

The API may run on its own thread and event loop (see `softswitch.api.server`): then it
has its own Store connection for what only needs the database (logins, audit, call
history), and whatever reads or drives the live switch runs on the switch's loop through
`ApiContext.on_switch`, so the switch's objects are only ever touched from their own loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from config.api import ApiSettings
from config.models import Tenant
from softswitch.api.events import EventBus
from softswitch.api.switchview import SwitchView
from storage.base import Store

__all__ = ["ApiContext", "SwitchView"]

T = TypeVar("T")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass
class ApiContext:
    """Shared by every request of one API server (``request.app.state.ctx``)."""

    switch: SwitchView
    settings: ApiSettings
    events: EventBus
    started: float = field(default_factory=time.time)
    # Set while the API runs on its own thread: its loop, its Store, the switch's loop.
    api_loop: asyncio.AbstractEventLoop | None = None
    api_store: Store | None = None
    switch_loop: asyncio.AbstractEventLoop | None = None

    @property
    def store(self) -> Store:
        """The Store connection of the loop the caller runs on (a connection belongs to
        the loop that opened it)."""
        if self.api_store is not None and _running_loop() is self.api_loop:
            return self.api_store
        return self.switch.store

    async def on_switch(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work()`` on the switch's loop and wait for it without blocking either loop;
        cancelling the caller cancels the work."""
        switch_loop = self.switch_loop
        if switch_loop is None or _running_loop() is switch_loop:
            return await work()

        async def run() -> T:
            return await work()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), switch_loop))

    def call_on_switch(self, work: Callable[[], T]) -> T:
        """Run the plain function ``work()`` on the switch's loop from a worker thread."""
        switch_loop = self.switch_loop
        if switch_loop is None:
            return work()

        async def run() -> T:
            return work()

        return asyncio.run_coroutine_threadsafe(run(), switch_loop).result()

    def tenants(self) -> dict[str, Tenant]:
        """The tenants as the switch runs them now (provisioning may replace the list)."""
        return {t.name: t for t in self.switch.config.tenants}

    def tenant(self, name: str) -> Tenant | None:
        return next((t for t in self.switch.config.tenants if t.name == name), None)
