"""The media-worker pool's side of a worker process and of the legs it holds.

:class:`WorkerProcess` is the pool's view of one ``python -m media.worker`` (its channel,
port slice and endpoints); :class:`WorkerEndpoint` is signalling's handle on a leg that
lives in one, and :class:`WorkerRecording` on a recording it writes.  Used by
:mod:`media.pool` and :mod:`media.poolrooms`.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from media.control import EngineStats
from media.dtmf import Digit
from media.endpoint import EndpointStats, MediaError
from media.negotiation import NegotiatedLeg
from media.quality import mos
from media.sdp import NegotiatedStream
from media.srtp import SrtpKeys
from media.workerproto import Channel, Command, Negotiated

__all__ = ["WorkerDtmfCallback", "WorkerEndpoint", "WorkerProcess", "WorkerRecording"]

WorkerDtmfCallback = Callable[["WorkerEndpoint", Digit], None]


class WorkerEndpoint(NegotiatedLeg):
    """Signalling's handle on an endpoint that lives in a media worker."""

    def __init__(
        self,
        worker: WorkerProcess,
        endpoint_id: int,
        address: str,
        advertised: str,
        port: int,
        on_dtmf: WorkerDtmfCallback | None,
        inband_dtmf: bool | None,
    ) -> None:
        super().__init__(endpoint_id, advertised, port, on_dtmf)
        self.address = address
        self.worker = worker
        self.inband_setting = inband_dtmf
        self.error: str | None = None  # why the endpoint no longer works
        self.opened = False  # the Open command was sent
        self.keys: SrtpKeys | None = None  # the stream's SRTP keys, for the Open command
        self._snapshot: EndpointStats | None = None
        self._final: asyncio.Future[EndpointStats] = asyncio.get_running_loop().create_future()

    def _check(self) -> None:
        super()._check()
        if self.error is not None:
            raise MediaError(f"endpoint {self.id}: {self.error}")

    def apply_stream(self, stream: NegotiatedStream) -> None:
        """Keep the stream; :meth:`apply_keys`, which always follows, sends it."""
        self.stream = stream

    def apply_keys(self, keys: SrtpKeys | None) -> None:
        """Keep the SRTP keys and send them with the stream to the worker (once the
        endpoint is open there): the keys travel with the leg's set-up."""
        self.keys = keys
        if self.opened and self.stream is not None:
            self.worker.send(Negotiated(self.id, self.stream, keys))

    def stats(self) -> EndpointStats:
        """The latest statistics the worker pushed (zeros before the first push)."""
        if self._snapshot is not None:
            return self._snapshot
        codec = self.stream.codec.name if self.stream and self.stream.codec else None
        return EndpointStats(
            0, 0, 0, 0.0, 0.0, 0, 0, None, round(mos(0.0, 0.0, 0.0), 2), 0, 0, 0, None, codec
        )

    async def final_stats(self) -> EndpointStats:
        """The statistics at release (the last pushed ones if the worker died first)."""
        return await asyncio.shield(self._final)

    def _finish(self, stats: EndpointStats | None) -> None:
        if stats is not None:
            self._snapshot = stats
        if not self._final.done():
            self._final.set_result(self.stats())

    def __repr__(self) -> str:
        return f"<WorkerEndpoint {self.id} {self.address}:{self.port} worker {self.worker.index}>"


@dataclass(eq=False)
class WorkerRecording:
    """A recording made by a worker: channel 0 the caller, channel 1 the callee."""

    id: int
    path: str
    caller: WorkerEndpoint
    callee: WorkerEndpoint | None
    closed: asyncio.Future[int]
    active: bool = True
    frames: int = 0
    error: str | None = None

    async def wait_closed(self) -> int:
        """Frames written once the WAV is complete; MediaError if it could not be."""
        frames = await asyncio.shield(self.closed)
        if self.error is not None:
            raise MediaError(self.error)
        return frames


@dataclass(eq=False)
class WorkerProcess:
    """The pool's view of one worker process."""

    index: int
    first_port: int
    pairs: int
    process: subprocess.Popen[bytes]
    channel: Channel | None = None
    ready: asyncio.Future[int] | None = None
    endpoints: dict[int, WorkerEndpoint] = field(default_factory=dict)
    released: dict[int, WorkerEndpoint] = field(default_factory=dict)  # awaiting Released
    ports: set[int] = field(default_factory=set)
    cursor: int = 0
    error: str | None = None  # set when the worker is gone
    engine: EngineStats | None = None
    cpu_seconds: float = 0.0
    reports: dict[int, asyncio.Future[None]] = field(default_factory=dict)  # by request

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.error is None

    def send(self, command: Command) -> None:
        if self.error is not None or self.channel is None:
            raise MediaError(self.error or f"media worker {self.index} is not started")
        try:
            self.channel.send(command)
        except ConnectionError:
            raise MediaError(f"media worker {self.index} (pid {self.pid}) is gone") from None
