"""Serving the admin API from the switch process: uvicorn's Server on the running loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
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
        # Bound here rather than by uvicorn, which would exit the process when it cannot bind.
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((settings.host, settings.port))
        except OSError as exc:
            listener.close()
            raise OSError(
                f"admin API could not listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from None
        self.port = listener.getsockname()[1]
        server = _Server(config)
        self._server = server
        task = asyncio.get_running_loop().create_task(
            server.serve(sockets=[listener]), name="admin-api"
        )
        self._task = task
        while not server.started:
            if task.done():
                listener.close()
                self._server = self._task = None
                task.result()  # why it stopped (a certificate that does not load...)
                raise OSError("admin API stopped while starting")
            await asyncio.sleep(0.01)
        listeners = getattr(self.switch, "cdr_listeners", None)
        if isinstance(listeners, list):
            listeners.append(self._on_cdr)
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
