"""The admin API in a process of its own: the switch's side (start, serve, supervise, stop).

`ApiProcess` binds the API's listening socket (so a port in use stops the switch from
starting, as before), starts ``python -m softswitch.api.child`` with it and one end of a
socket pair, sends it the configuration (`control.Setup`) and waits for `control.Ready`.
Then it answers the child's requests with `softswitch.api.live.SwitchLive` on the
switch's loop (small work: rows, not responses), runs the event `Sampler` while the child
asks for the feed, and forwards the events (and each call's end, from its CDR) in one
`control.Events` per loop turn. /metrics is made here (`SwitchMetrics`: the counters and
the per-call figures live in this process).

A child that dies is started again a second later (its clients reconnect); stopping the
switch stops it (`control.Stop`, then killed after a timeout), as the media workers are.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time

import structlog

from softswitch.api.channel import Channel
from softswitch.api.control import (
    Events,
    Feed,
    Message,
    Ready,
    Refused,
    Reply,
    Request,
    Setup,
    Stop,
)
from softswitch.api.events import Event, Sampler, call_ended
from softswitch.api.live import LiveError, SwitchLive
from softswitch.api.metrics import SwitchMetrics
from softswitch.api.serving import bind_listener
from softswitch.api.switchview import LiveSwitch
from storage.cdr import Cdr

__all__ = ["ApiProcess"]

log = structlog.get_logger(__name__)

_START_TIMEOUT = 60.0  # importing FastAPI and opening the Store, on a busy machine
_STOP_TIMEOUT = 8.0  # uvicorn lets requests in progress finish (5 s) before it exits
_RESTART_DELAY = 1.0  # a crash loop costs a start a second


class ApiProcess:
    """See the module docstring."""

    def __init__(self, switch: LiveSwitch) -> None:
        self.switch = switch
        self.metrics = SwitchMetrics(switch)
        self.live = SwitchLive(switch, self.metrics.text)
        self.sampler = Sampler(switch, switch.config.api.events_interval, self._publish)
        self.port: int | None = None
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._channel: Channel | None = None
        self._ready: asyncio.Future[int] | None = None
        self._feeding = False
        self._outbox: list[Event] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._restart: asyncio.Task[None] | None = None
        self._closing = False

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start the API process; returns once it listens (OSError when it cannot)."""
        self._closing = False
        await self._launch()
        self.switch.cdr_listeners.append(self._on_cdr)
        settings = self.switch.config.api
        scheme = "https" if settings.tls_certificate else "http"
        log.info("api.started", url=f"{scheme}://{settings.host}:{self.port}/docs", pid=self.pid)

    async def _launch(self) -> None:
        listener = bind_listener(self.switch.config.api)
        self.port = listener.getsockname()[1]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with listener, theirs:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "softswitch.api.child",
                    "--fd",
                    str(theirs.fileno()),
                    "--listen-fd",
                    str(listener.fileno()),
                ],
                pass_fds=(theirs.fileno(), listener.fileno()),
                stdin=subprocess.DEVNULL,
            )
        self._process = process
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[int] = loop.create_future()
        self._ready = ready
        _, channel = await loop.create_unix_connection(
            lambda: Channel(self._on_message, self._lost), sock=ours
        )
        self._channel = channel
        channel.send(Setup(self.switch.config))
        try:
            self.pid = await asyncio.wait_for(asyncio.shield(ready), _START_TIMEOUT)
        except TimeoutError:
            await self._end_process()
            raise OSError(f"admin API process did not start within {_START_TIMEOUT:g} s") from None
        except OSError:
            await self._end_process()
            raise

    async def stop(self) -> None:
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
        if self._on_cdr in self.switch.cdr_listeners:
            self.switch.cdr_listeners.remove(self._on_cdr)
        channel = self._channel
        if channel is not None and channel.open:
            channel.send(Stop())
        await self._end_process()
        await self.sampler.close()
        for task in list(self._tasks):
            task.cancel()
        log.info("api.stopped")

    async def _end_process(self) -> None:
        """Wait for the process to exit (it was told to); killed after a timeout."""
        process = self._process
        if process is not None:
            deadline = time.monotonic() + _STOP_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if process.poll() is None:
                log.warning("api.process_killed", pid=process.pid)
                process.kill()
                process.wait()
        if self._channel is not None:
            self._channel.close()

    def _lost(self, reason: str) -> None:
        """The channel closed: the child exited (or was killed)."""
        self._feeding = False
        self.sampler.feed(False)
        ready = self._ready
        code = self._process.poll() if self._process is not None else None
        if ready is not None and not ready.done():
            ready.set_exception(OSError(f"admin API process stopped while starting ({reason})"))
            return
        if self._closing:
            return
        log.error("api.process_lost", pid=self.pid, exit_code=code, reason=reason)
        self._restart = asyncio.get_running_loop().create_task(self._relaunch(), name="api-restart")

    async def _relaunch(self) -> None:
        while not self._closing:
            await asyncio.sleep(_RESTART_DELAY)
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
                await asyncio.to_thread(self._process.wait)
            try:
                await self._launch()
            except OSError as exc:
                log.error("api.restart_failed", error=str(exc))
                continue
            log.info("api.process_restarted", pid=self.pid)
            return

    # ---- the channel ----------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        if isinstance(message, Request):
            task = asyncio.get_running_loop().create_task(self._answer(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(message, Feed):
            self._feeding = message.on
            self.sampler.feed(message.on)
        elif isinstance(message, Ready):
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(message.pid)
        else:
            log.warning("api.unexpected_message", message=type(message).__name__)

    async def _answer(self, request: Request) -> None:
        try:
            value = await getattr(self.live, request.op)(*request.args)
            answer: Message = Reply(request.id, value)
        except LiveError as exc:
            answer = Refused(request.id, exc.code, exc.message)
        except Exception as exc:
            log.exception("api.live_failed", op=request.op)
            answer = Refused(request.id, "internal", f"{type(exc).__name__}: {exc}")
        channel = self._channel
        if channel is not None and channel.open:
            channel.send(answer)

    def _publish(self, event: Event) -> None:
        """Queue an event for the child; one message per loop turn carries them all."""
        if not self._outbox:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(event)

    def _flush(self) -> None:
        events, self._outbox = tuple(self._outbox), []
        channel = self._channel
        if events and self._feeding and channel is not None and channel.open:
            with contextlib.suppress(ConnectionError):
                channel.send(Events(events))

    def _on_cdr(self, cdr: Cdr) -> None:
        """Each finished call: counted for /metrics; its end is an event while fed."""
        self.metrics.observe_cdr(cdr)
        if self._feeding:
            self._publish(call_ended(cdr))
