"""Serving the admin API from the switch process, off the signalling loop.

uvicorn runs on its own thread with its own event loop and its own Store connection, so
parsing requests, reading the database and encoding (large) responses never delays the
loop that handles SIP and media: with the API on the switch's loop, 50 requests/s raised
the p99 INVITE delay tenfold. What reads or drives the live switch runs on the switch's
loop (`softswitch.api.loops`, `softswitch.api.app.ON_SWITCH_LOOP`); events from the switch
reach the API's loop with ``call_soon_threadsafe``. An in-memory SQLite Store cannot be
opened twice, so with one the API serves on the switch's loop as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog
import uvicorn

from softswitch.api import loops
from softswitch.api.app import create_app
from softswitch.api.context import ApiContext
from softswitch.api.events import EventBus, call_ended
from softswitch.api.metrics import SwitchMetrics
from storage.base import Store
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
        self._thread: threading.Thread | None = None
        self._thread_done: asyncio.Future[None] | None = None
        self.port: int | None = None

    def _own_thread(self) -> bool:
        """Whether the API can have its own loop: it needs a Store connection of its own,
        which an in-memory database cannot give."""
        return _second_store(self.switch.store) is not None

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
        if self._own_thread():
            await self._start_thread(server, listener)
        else:
            await self._start_here(server, listener)
        listeners = getattr(self.switch, "cdr_listeners", None)
        if isinstance(listeners, list):
            listeners.append(self._on_cdr)
        scheme = "https" if settings.tls_certificate else "http"
        log.info("api.started", url=f"{scheme}://{settings.host}:{self.port}/docs")

    async def _start_thread(self, server: uvicorn.Server, listener: socket.socket) -> None:
        switch_loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = switch_loop.create_future()
        done: asyncio.Future[None] = switch_loop.create_future()

        def report(future: asyncio.Future[None], exc: BaseException | None) -> None:
            if future.done():
                return
            if exc is None:
                future.set_result(None)
            else:
                future.set_exception(exc)

        def tell(future: asyncio.Future[None], exc: BaseException | None = None) -> None:
            if not switch_loop.is_closed():
                switch_loop.call_soon_threadsafe(report, future, exc)

        async def serve() -> None:
            store = _second_store(self.switch.store)
            if store is None:
                raise OSError("admin API has no database connection of its own")
            await store.open()
            loop = asyncio.get_running_loop()
            self.ctx.api_loop, self.ctx.api_store = loop, store
            self.events.bind(loop, switch_loop)
            loops.serve_for(loop, switch_loop)
            try:
                task = loop.create_task(server.serve(sockets=[listener]), name="admin-api")
                while not server.started:
                    if task.done():
                        task.result()  # why it stopped (a certificate that does not load...)
                        raise OSError("admin API stopped while starting")
                    await asyncio.sleep(0.01)
                tell(started)
                await task
            finally:
                loops.forget(loop)
                await self.events.close()
                self.ctx.api_store = None
                await store.close()

        def run() -> None:
            error: BaseException | None = None
            try:
                asyncio.run(serve())
            except BaseException as exc:  # reported to the switch's loop, then re-raised
                error = exc
                tell(started, exc)
                raise
            finally:
                listener.close()
                tell(started, error or OSError("admin API stopped while starting"))
                tell(done)

        self._thread_done = done
        self._thread = threading.Thread(target=run, name="admin-api", daemon=True)
        self._thread.start()
        try:
            await started
        except BaseException:
            self._server = None
            self._thread = self._thread_done = None
            raise

    async def _start_here(self, server: uvicorn.Server, listener: socket.socket) -> None:
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

    def _on_cdr(self, cdr: Cdr) -> None:
        """Each finished call: counted for /metrics, announced on the event stream."""
        self.metrics.observe_cdr(cdr)
        self.events.publish(call_ended(cdr))

    async def stop(self) -> None:
        if self._thread_done is not None:
            await self._stop_thread()
        else:
            await self._stop_here()
        listeners = getattr(self.switch, "cdr_listeners", None)
        if isinstance(listeners, list) and self._on_cdr in listeners:
            listeners.remove(self._on_cdr)
        log.info("api.stopped")

    async def _stop_thread(self) -> None:
        server, done = self._server, self._thread_done
        self._server = self._thread = self._thread_done = None
        if server is None or done is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(done), timeout=5)
        except TimeoutError:
            server.force_exit = True  # open connections that would not finish
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, timeout=5)

    async def _stop_here(self) -> None:
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


def _second_store(store: Store) -> Store | None:
    """Another connection to the switch's database, for the API's loop; None when there
    cannot be one (an in-memory SQLite database is private to its connection)."""
    from storage.postgres import PostgresStore
    from storage.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return None if store.path == ":memory:" else SqliteStore(store.path)
    if isinstance(store, PostgresStore):
        return PostgresStore(store.dsn)
    return None


async def start_api(switch: SwitchView) -> ApiServer | None:
    """Start the admin API when ``[api] enabled``; None otherwise."""
    if not switch.config.api.enabled:
        return None
    server = ApiServer(switch)
    await server.start()
    return server
