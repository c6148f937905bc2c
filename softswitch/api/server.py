"""Serving the admin API from the switch process: uvicorn's Server on the running loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog
import uvicorn

from softswitch.api.app import create_app
from softswitch.api.context import ApiContext
from softswitch.api.events import EventBus, call_ended
from softswitch.api.metrics import SwitchMetrics
from storage.cdr import Cdr

if TYPE_CHECKING:
    from fastapi import FastAPI

    from softswitch.api.switchview import SwitchView

__all__ = ["ApiServer", "start_api"]

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: the switch owns SIGTERM/SIGINT and
    stops the API itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ApiServer:
    """The admin API of one switch: the app, its event bus and metrics, and the listener."""

    def __init__(self, switch: SwitchView) -> None:
        self.switch = switch
        settings = switch.config.api
        self.events = EventBus(switch, settings.events_interval)
        self.metrics = SwitchMetrics(switch)
        self.ctx = ApiContext(switch, settings, self.events)
        self.app: FastAPI = create_app(self.ctx, self.metrics)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Listen where ``[api]`` says (TLS with a certificate); returns once listening."""
        settings = self.switch.config.api
        listeners = getattr(self.switch, "cdr_listeners", None)
        if isinstance(listeners, list):
            listeners.append(self._on_cdr)
        config = uvicorn.Config(
            self.app,
            host=settings.host,
            port=settings.port,
            ssl_certfile=str(settings.tls_certificate) if settings.tls_certificate else None,
            ssl_keyfile=str(settings.tls_private_key) if settings.tls_private_key else None,
            log_config=None,
            log_level=logging.WARNING,
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
        )
        server = _Server(config)
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve(), name="admin-api")
        while not server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start (port in use...)
                raise OSError(f"admin API could not listen on {settings.host}:{settings.port}")
            await asyncio.sleep(0.01)
        sockets = [s for srv in server.servers for s in (srv.sockets or ())]
        self.port = sockets[0].getsockname()[1] if sockets else settings.port
        scheme = "https" if settings.tls_certificate else "http"
        log.info("api.started", url=f"{scheme}://{settings.host}:{self.port}/docs")

    def _on_cdr(self, cdr: Cdr) -> None:
        """Each finished call: counted for /metrics, announced on the event stream."""
        self.metrics.observe_cdr(cdr)
        self.events.publish(call_ended(cdr))

    async def stop(self) -> None:
        await self.events.close()
        server, task = self._server, self._task
        self._server = self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await asyncio.wait_for(task, timeout=5)
            except TimeoutError:
                task.cancel()
        listeners = getattr(self.switch, "cdr_listeners", None)
        if isinstance(listeners, list) and self._on_cdr in listeners:
            listeners.remove(self._on_cdr)
        log.info("api.stopped")


async def start_api(switch: SwitchView) -> ApiServer | None:
    """Start the admin API when ``[api] enabled``; None otherwise."""
    if not switch.config.api.enabled:
        return None
    server = ApiServer(switch)
    await server.start()
    return server
