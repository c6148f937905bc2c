"""Serving the admin API: in a process of its own, or on the switch's loop.

`start_api` starts the API in a child process (`softswitch.api.process.ApiProcess`)
whenever the switch's Store can be opened a second time (a SQLite file, PostgreSQL): then
parsing requests, reading the database and encoding (large) responses never compete with
the switch's signalling for its loop or its interpreter lock (a thread of the switch, the
previous arrangement, still took the lock from it: 320 calls/s fell to 15-80 with 50 API
requests/s alongside). An in-memory Store cannot be opened twice, so with one the API
serves on the switch's loop (`ApiServer`, also what the tests' in-process switches use).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Protocol

import structlog
import uvicorn

from softswitch.api.app import create_app
from softswitch.api.context import ApiContext
from softswitch.api.events import EventBus, Sampler, call_ended
from softswitch.api.live import SwitchLive
from softswitch.api.metrics import SwitchMetrics
from softswitch.api.serving import (
    QuietServer,
    bind_listener,
    second_store,
    serve_until_started,
    uvicorn_config,
)
from storage.cdr import Cdr

if TYPE_CHECKING:
    from fastapi import FastAPI

    from softswitch.api.switchview import LiveSwitch

__all__ = ["ApiServer", "RunningApi", "start_api"]

log = structlog.get_logger(__name__)


class RunningApi(Protocol):
    """An admin API started by `start_api`."""

    port: int | None

    async def stop(self) -> None: ...


class ApiServer:
    """The admin API on the switch's own loop: the app, its event bus and metrics."""

    def __init__(self, switch: LiveSwitch) -> None:
        self.switch = switch
        settings = switch.config.api
        self.metrics = SwitchMetrics(switch)
        self.live = SwitchLive(switch, self.metrics.text)
        self.events = EventBus(lambda: switch.config, lambda on: self.sampler.feed(on))
        self.sampler = Sampler(switch, settings.events_interval, self.events.publish)
        self.ctx = ApiContext(switch, settings, self.events, self.live)
        self.app: FastAPI = create_app(self.ctx)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Listen where ``[api]`` says (TLS with a certificate); returns once listening."""
        settings = self.switch.config.api
        listener = bind_listener(settings)
        self.port = listener.getsockname()[1]
        server = QuietServer(uvicorn_config(self.app, settings))
        try:
            self._task = await serve_until_started(server, listener)
        except BaseException:
            listener.close()
            raise
        self._server = server
        self.switch.cdr_listeners.append(self._on_cdr)
        scheme = "https" if settings.tls_certificate else "http"
        log.info("api.started", url=f"{scheme}://{settings.host}:{self.port}/docs")

    def _on_cdr(self, cdr: Cdr) -> None:
        """Each finished call: counted for /metrics, announced on the event stream."""
        self.metrics.observe_cdr(cdr)
        self.events.publish(call_ended(cdr))

    async def stop(self) -> None:
        await self.events.close()
        await self.sampler.close()
        if self._on_cdr in self.switch.cdr_listeners:
            self.switch.cdr_listeners.remove(self._on_cdr)
        server, task = self._server, self._task
        self._server = self._task = None
        if server is not None and task is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await asyncio.wait_for(task, timeout=5)
                except TimeoutError:
                    task.cancel()
        log.info("api.stopped")


async def start_api(switch: LiveSwitch) -> RunningApi | None:
    """Start the admin API when ``[api] enabled`` (None otherwise): in its own process
    when the Store can be opened twice, else on the switch's loop."""
    if not switch.config.api.enabled:
        return None
    if second_store(switch.store) is not None:
        from softswitch.api.process import ApiProcess

        process = ApiProcess(switch)
        await process.start()
        return process
    server = ApiServer(switch)
    await server.start()
    return server
