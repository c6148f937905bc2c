"""What both ways of serving the admin API share: its listening socket, bound by the
switch; uvicorn set up without its own signal handling; a second Store connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import uvicorn

from config.api import ApiSettings
from storage.base import Store

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["QuietServer", "bind_listener", "second_store", "serve_until_started", "uvicorn_config"]


class QuietServer(uvicorn.Server):
    """uvicorn's server without its signal handlers: its owner (the switch, or the API
    process's driver) stops it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: FastAPI, settings: ApiSettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
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


def bind_listener(settings: ApiSettings) -> socket.socket:
    """The API's listening socket, bound here rather than by uvicorn (which would exit the
    process when it cannot bind): the switch refuses to start instead."""
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
    return listener


async def serve_until_started(
    server: uvicorn.Server, listener: socket.socket
) -> asyncio.Task[None]:
    """Run ``server`` on ``listener`` as a task; returns once it listens."""
    serving = server.serve(sockets=[listener])
    task = asyncio.get_running_loop().create_task(serving, name="admin-api")
    while not server.started:
        if task.done():
            task.result()  # why it stopped (a certificate that does not load...)
            raise OSError("admin API stopped while starting")
        await asyncio.sleep(0.01)
    return task


def second_store(store: Store) -> Store | None:
    """Another connection to the switch's database, for the API's process; None when there
    cannot be one (an in-memory SQLite database is private to its connection)."""
    from storage.postgres import PostgresStore
    from storage.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return None if store.path == ":memory:" else SqliteStore(store.path)
    if isinstance(store, PostgresStore):
        return PostgresStore(store.dsn)
    return None
