"""Media engines in worker processes behind the in-process engine's synchronous interface.

:class:`MediaWorkerPool` starts N ``python -m media.worker`` processes, each running a
:class:`~media.engine.MediaEngine` on its own event loop and its own slice of the RTP port
range, and offers signalling the same calls as ``MediaEngine`` (allocate, bridge, play,
record, release, ...), none of which waits for a worker:

- SDP offer/answer is pure, so it runs here, on :class:`WorkerEndpoint` (a
  :class:`~media.negotiation.NegotiatedLeg`), with the port the pool picked: each worker's
  port slice is tracked here, and a pair is probed (bound and closed) before it is offered
  so ports held by other programs are skipped; the worker then binds exactly that pair.
- Commands are pipelined to the worker in order over a Unix socket pair
  (:mod:`media.workerproto`); what comes back arrives as events: DTMF digits, playbacks
  ending, statistics pushed every ``stats_interval`` seconds (each leg's in every fifth
  push; :meth:`MediaWorkerPool.refresh` asks for all of them now), and failures (a bind that
  lost a race, a worker gone), which mark the endpoint and make its next call raise
  :class:`MediaError`.
- ``release`` returns the latest statistics the worker pushed; ``await
  endpoint.final_stats()`` gives the exact figures at release, for the CDR.

New endpoints go to the least loaded worker; the second leg of a call must be allocated
with ``near=first_leg`` so the two can be bridged (bridging endpoints of different workers
raises MediaError).  When a worker dies its endpoints fail with an error naming it,
``on_lost`` tells signalling which endpoints were lost (an endpoint whose port pair was
taken between the probe and the worker's bind is lost the same way, alone), and a new
worker takes the dead one's place and port slice a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import structlog

from media.dtmf import Digit
from media.endpoint import EndpointStats, MediaError
from media.engine import EngineSettings, EngineStats, bind_rtp_pair, rtp_ports
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, Playback, load_source
from media.quality import mos
from media.sdp import NegotiatedStream
from media.workerproto import (
    Bridge,
    Channel,
    Close,
    Command,
    DtmfDetected,
    Failed,
    HoldMusic,
    Message,
    Negotiated,
    Open,
    Play,
    PlaybackEnded,
    Ready,
    Record,
    RecordingClosed,
    Release,
    Released,
    Report,
    Source,
    Start,
    Statistics,
    StopPlay,
    StopRecording,
    Unbridge,
)

__all__ = ["MediaWorkerPool", "WorkerEndpoint", "WorkerRecording", "split_ports"]

log = structlog.get_logger(__name__)

WorkerDtmfCallback = Callable[["WorkerEndpoint", Digit], None]

_START_TIMEOUT = 20.0  # seconds for a worker to import numpy and report ready
_STOP_TIMEOUT = 5.0  # seconds for a worker to close its engine before it is killed
_RESTART_DELAY = 1.0  # seconds between a worker's death and its replacement


class WorkerEndpoint(NegotiatedLeg):
    """Signalling's handle on an endpoint that lives in a media worker."""

    def __init__(
        self,
        pool: MediaWorkerPool,
        worker: _Worker,
        endpoint_id: int,
        port: int,
        on_dtmf: WorkerDtmfCallback | None,
        inband_dtmf: bool | None,
    ) -> None:
        super().__init__(endpoint_id, pool.advertised, port, on_dtmf)
        self.address = pool.settings.address
        self.worker = worker
        self.inband_setting = inband_dtmf
        self.error: str | None = None  # why the endpoint no longer works
        self.opened = False  # the Open command was sent
        self._snapshot: EndpointStats | None = None
        self._final: asyncio.Future[EndpointStats] = asyncio.get_running_loop().create_future()

    def _check(self) -> None:
        super()._check()
        if self.error is not None:
            raise MediaError(f"endpoint {self.id}: {self.error}")

    def apply_stream(self, stream: NegotiatedStream) -> None:
        """Keep the stream and send it to the worker (once the endpoint is open there)."""
        self.stream = stream
        if self.opened:
            self.worker.send(Negotiated(self.id, stream))

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
class _Worker:
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


def split_ports(port_min: int, port_max: int, workers: int) -> list[tuple[int, int]]:
    """Each worker's slice of an RTP port range: (first even port, number of pairs).

    Raises ValueError when there are no workers or fewer pairs than workers.
    """
    if workers < 1:
        raise ValueError(f"a media-worker pool needs at least one worker, not {workers}")
    first, pairs = rtp_ports(port_min, port_max)
    if pairs < workers:
        raise ValueError(
            f"RTP port range {port_min}-{port_max} has {pairs} port pairs, "
            f"fewer than the {workers} media workers"
        )
    bounds = [pairs * i // workers for i in range(workers + 1)]
    return [(first + 2 * bounds[i], bounds[i + 1] - bounds[i]) for i in range(workers)]


class MediaWorkerPool:
    """N media-worker processes behind :class:`~media.engine.MediaEngine`'s interface.

    ``settings`` is split: each worker gets an equal slice of the RTP port range; the
    address, jitter depth, hold music and socket-reading settings apply to all.
    """

    def __init__(
        self,
        settings: EngineSettings | None = None,
        workers: int = 2,
        *,
        stats_interval: float = 1.0,
        on_lost: Callable[[list[WorkerEndpoint], str], None] | None = None,
    ) -> None:
        self.settings = settings or EngineSettings()
        if stats_interval <= 0:
            raise ValueError(f"stats_interval must be positive, not {stats_interval}")
        self._slices = split_ports(self.settings.port_min, self.settings.port_max, workers)
        self.advertised = self.settings.advertised_address or self.settings.address
        self.stats_interval = stats_interval
        self.on_lost = on_lost
        self._workers: list[_Worker] = []
        self._next_id = 1
        self._playbacks: dict[int, tuple[_Worker, Playback]] = {}
        self._recordings: dict[int, WorkerRecording] = {}
        self._restarts: set[asyncio.Task[None]] = set()
        self._closing = False

    # ---- lifecycle ------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers, in worker order."""
        return [w.pid for w in self._workers]

    async def start(self) -> None:
        """Start every worker and wait until each has its engine running."""
        if self._workers:
            return
        self._closing = False
        for index in range(len(self._slices)):
            await self._launch(index)
        try:
            for worker in self._workers:
                await self._wait_ready(worker)
        except MediaError as exc:
            await self.close()
            raise MediaError(f"media workers did not start: {exc}") from None
        log.info("media_workers_started", pids=self.pids)

    async def _launch(self, index: int) -> _Worker:
        """Start worker ``index`` (replacing a dead one); Ready comes later."""
        first_port, pairs = self._slices[index]
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "media.worker", "--fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        loop = asyncio.get_running_loop()
        worker = _Worker(index, first_port, pairs, process, ready=loop.create_future())
        if index < len(self._workers):
            self._workers[index] = worker
        else:
            self._workers.append(worker)
        _, worker.channel = await loop.create_unix_connection(
            functools.partial(self._channel, worker), sock=ours
        )
        settings = replace(self.settings, port_min=first_port, port_max=first_port + 2 * pairs - 1)
        # commands sent before Ready queue behind Start: a starting worker takes calls
        worker.send(Start(index, settings, self.stats_interval))
        return worker

    async def _wait_ready(self, worker: _Worker) -> None:
        assert worker.ready is not None
        try:
            await asyncio.wait_for(asyncio.shield(worker.ready), _START_TIMEOUT)
        except TimeoutError:
            worker.process.kill()  # hung: its channel closes and it counts as lost
            raise MediaError(
                f"media worker {worker.index} (pid {worker.pid}) was not ready within "
                f"{_START_TIMEOUT:g} s"
            ) from None

    async def _restart(self, index: int) -> None:
        """Replace a dead worker, after a pause so a crash loop costs a start a second."""
        await asyncio.sleep(_RESTART_DELAY)
        if self._closing:
            return
        worker = await self._launch(index)
        try:
            await self._wait_ready(worker)
        except MediaError as exc:
            log.error("media_worker_restart_failed", index=index, error=str(exc))
            return  # lost again: that schedules the next attempt
        log.info("media_worker_restarted", index=index, pid=worker.pid)

    def _channel(self, worker: _Worker) -> Channel:
        return Channel(lambda m: self._on_event(worker, m), lambda r: self._lost(worker, r))

    async def close(self) -> None:
        """Close every worker's engine and stop the processes (killed after a timeout)."""
        self._closing = True
        for task in list(self._restarts):
            task.cancel()
        await asyncio.gather(*self._restarts, return_exceptions=True)
        for worker in self._workers:
            if worker.alive and worker.channel is not None and worker.channel.open:
                worker.channel.send(Close())
        deadline = time.monotonic() + _STOP_TIMEOUT
        for worker in self._workers:
            while worker.process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if worker.process.poll() is None:
                log.warning("media_worker_killed", index=worker.index, pid=worker.pid)
                worker.process.kill()
                worker.process.wait()
            if worker.channel is not None:
                worker.channel.close()
            self._fail(worker, "the media-worker pool was closed", "released")
        self._workers = []

    async def __aenter__(self) -> MediaWorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- endpoints ------------------------------------------------------------------

    def allocate(
        self,
        offer_sdp: bytes | str | None = None,
        *,
        direction: str = "sendrecv",
        on_dtmf: WorkerDtmfCallback | None = None,
        inband_dtmf: bool | None = None,
        near: WorkerEndpoint | None = None,
    ) -> WorkerEndpoint:
        """A new endpoint: answered at once with ``offer_sdp``, else ``local_sdp`` is our
        offer (as :meth:`MediaEngine.allocate`).  ``near``: on that endpoint's worker (the
        other leg of the same call), else on the least loaded worker.

        Raises MediaError when no worker runs or no port pair is free,
        SdpError/NegotiationError on a bad offer (nothing is left allocated).
        """
        if near is not None:
            worker = self._own(near).worker
        else:
            alive = [w for w in self._workers if w.alive]
            if not alive:
                raise MediaError("no media worker is running")
            worker = min(alive, key=lambda w: len(w.endpoints))
        port = self._reserve_port(worker)
        ep = WorkerEndpoint(self, worker, self._next_id, port, on_dtmf, inband_dtmf)
        try:
            if offer_sdp is None:
                ep.offer(direction=direction)
            else:
                ep.answer(offer_sdp, direction=direction)
            worker.send(Open(ep.id, port, inband_dtmf, ep.stream))
        except Exception:
            worker.ports.discard(port)
            raise
        self._next_id += 1
        ep.opened = True
        worker.endpoints[ep.id] = ep
        return ep

    def _reserve_port(self, worker: _Worker) -> int:
        address = self.settings.address
        for _ in range(worker.pairs):
            port = worker.first_port + 2 * (worker.cursor % worker.pairs)
            worker.cursor += 1
            if port in worker.ports:
                continue
            try:  # skip pairs another program holds (the worker binds after us)
                for sock in bind_rtp_pair(address, port):
                    sock.close()
            except OSError:
                continue
            worker.ports.add(port)
            return port
        last = worker.first_port + 2 * worker.pairs - 1
        raise MediaError(
            f"no free RTP/RTCP port pair in {worker.first_port}-{last} (media worker "
            f"{worker.index})"
        )

    def _own(self, ep: WorkerEndpoint) -> WorkerEndpoint:
        if not isinstance(ep, WorkerEndpoint) or ep.worker.endpoints.get(ep.id) is not ep:
            raise MediaError(f"endpoint {ep.id} is not allocated in this media-worker pool")
        ep._check()
        return ep

    def release(self, endpoint: WorkerEndpoint) -> EndpointStats:
        """Close an endpoint; the latest pushed statistics (``await
        endpoint.final_stats()`` for the figures at release).  Never fails for an endpoint
        whose worker died: hang-up handling must always be able to clean up."""
        if endpoint.worker.endpoints.get(endpoint.id) is not endpoint:
            raise MediaError(f"endpoint {endpoint.id} is not allocated in this media-worker pool")
        worker = endpoint.worker
        del worker.endpoints[endpoint.id]
        worker.ports.discard(endpoint.port)
        endpoint.released = True
        if worker.alive:
            worker.released[endpoint.id] = endpoint
            worker.send(Release(endpoint.id))
        else:
            endpoint._finish(None)
        return endpoint.stats()

    def _same_worker(self, a: WorkerEndpoint, b: WorkerEndpoint) -> _Worker:
        self._own(a)
        self._own(b)
        if a.worker is not b.worker:
            raise MediaError(
                f"endpoints {a.id} and {b.id} are on different media workers "
                f"({a.worker.index} and {b.worker.index}): allocate the second leg of a call "
                f"with near=<first leg>"
            )
        return a.worker

    def bridge(self, a: WorkerEndpoint, b: WorkerEndpoint) -> None:
        """Connect two endpoints of the same worker so each hears the other."""
        if a is b:
            raise MediaError("cannot bridge an endpoint to itself")
        self._same_worker(a, b).send(Bridge(a.id, b.id))

    def unbridge(self, endpoint: WorkerEndpoint) -> None:
        """Disconnect an endpoint from its peer (no-op if not bridged)."""
        self._own(endpoint).worker.send(Unbridge(endpoint.id))

    # ---- players and recordings -----------------------------------------------------

    @staticmethod
    def _source(source: AudioSource) -> Source:
        """Check a source here (a clear ValueError for signalling) and say it compactly:
        a file by its path (the worker loads and caches it), samples as they are."""
        samples = load_source(source)
        if isinstance(source, np.ndarray):
            return samples
        return os.fspath(source)

    def play(
        self,
        endpoint: WorkerEndpoint,
        source: AudioSource,
        *,
        loop: bool = False,
        barge_in: bool = False,
    ) -> Playback:
        """Play samples or a WAV file to an endpoint (as :meth:`MediaEngine.play`); the
        playback also ends with ``failed`` when the worker could not play it."""
        worker = self._own(endpoint).worker
        wire = self._source(source)
        playback = Playback(endpoint.id, asyncio.get_running_loop().create_future())
        play_id = self._next_id
        self._next_id += 1
        worker.send(Play(endpoint.id, play_id, wire, loop, barge_in))
        self._playbacks[play_id] = (worker, playback)
        return playback

    def stop(self, endpoint: WorkerEndpoint) -> None:
        """Stop the playback on an endpoint (no-op if none)."""
        self._own(endpoint).worker.send(StopPlay(endpoint.id))

    def set_hold_music(
        self, source: AudioSource | None, endpoint: WorkerEndpoint | None = None
    ) -> None:
        """What a held party hears: pool-wide (every worker), or for one endpoint."""
        wire = None if source is None else self._source(source)
        if endpoint is not None:
            self._own(endpoint).worker.send(HoldMusic(endpoint.id, wire))
            return
        for worker in self._workers:
            if worker.alive:
                worker.send(HoldMusic(None, wire))

    def record(
        self,
        caller: WorkerEndpoint,
        callee: WorkerEndpoint | None,
        path: str | os.PathLike[str],
    ) -> WorkerRecording:
        """Record to a 2-channel WAV (caller, callee) until :meth:`stop_recording`.

        The file is created here so a bad path fails at once (MediaError naming it).
        """
        worker = self._same_worker(caller, callee) if callee else self._own(caller).worker
        name = os.fspath(path)
        try:
            open(name, "wb").close()  # the worker writes it
        except OSError as exc:
            raise MediaError(f"{name}: cannot create recording ({exc.strerror})") from None
        rec = WorkerRecording(
            self._next_id, name, caller, callee, asyncio.get_running_loop().create_future()
        )
        self._next_id += 1
        worker.send(Record(rec.id, caller.id, None if callee is None else callee.id, name))
        self._recordings[rec.id] = rec
        return rec

    def stop_recording(self, recording: WorkerRecording) -> None:
        """Finish a recording (idempotent); ``await recording.wait_closed()`` for the WAV
        to be complete."""
        if not recording.active:
            return
        recording.active = False
        worker = recording.caller.worker
        if worker.alive:
            worker.send(StopRecording(recording.id))

    # ---- statistics -----------------------------------------------------------------

    def stats(self) -> EngineStats:
        """Engine-wide counters summed over the workers (as last pushed)."""
        pushed = [w.engine for w in self._workers if w.engine is not None]
        return EngineStats(
            endpoints=sum(len(w.endpoints) for w in self._workers),
            relayed_directions=sum(s.relayed_directions for s in pushed),
            decoded_legs=sum(s.decoded_legs for s in pushed),
            ticks=sum(s.ticks for s in pushed),
            late_ticks=sum(s.late_ticks for s in pushed),
            resyncs=sum(s.resyncs for s in pushed),
            tick_errors=sum(s.tick_errors for s in pushed),
            max_tick_ms=max((s.max_tick_ms for s in pushed), default=0.0),
            busy_seconds=sum(s.busy_seconds for s in pushed),
        )

    def worker_stats(self) -> list[tuple[int, EngineStats | None, float]]:
        """Per worker: pid, its engine counters and the CPU seconds it has used."""
        return [(w.pid, w.engine, w.cpu_seconds) for w in self._workers]

    async def refresh(self, timeout: float = 5.0) -> EngineStats:
        """Ask every live worker for its statistics now and wait for them."""
        loop = asyncio.get_running_loop()
        waits = []
        for worker in self._workers:
            if worker.alive:
                future: asyncio.Future[None] = loop.create_future()
                request = self._next_id
                self._next_id += 1
                worker.reports[request] = future
                worker.send(Report(request))
                waits.append(future)
        if waits:
            await asyncio.wait_for(asyncio.gather(*waits), timeout)
        return self.stats()

    # ---- events ---------------------------------------------------------------------

    def _on_event(self, worker: _Worker, message: Message) -> None:
        match message:
            case DtmfDetected(ep_id, digit):
                ep = worker.endpoints.get(ep_id)
                if ep is not None:
                    ep.hand_up(digit)
            case PlaybackEnded(play_id, reason):
                entry = self._playbacks.pop(play_id, None)
                if entry is not None and not entry[1].future.done():
                    entry[1].future.set_result(reason)
            case Statistics(figures, engine, cpu, answers):
                for ep_id, stats in figures.items():
                    ep = worker.endpoints.get(ep_id)
                    if ep is not None:
                        ep._snapshot = stats
                worker.cpu_seconds = cpu
                if engine is not None:
                    worker.engine = engine
                if answers is not None:  # and every earlier request: answered in order
                    for request in [r for r in worker.reports if r <= answers]:
                        future = worker.reports.pop(request)
                        if not future.done():
                            future.set_result(None)
            case Released(ep_id, stats):
                ep = worker.released.pop(ep_id, None)
                if ep is not None:
                    ep._finish(stats)
            case RecordingClosed(rec_id, frames, error):
                rec = self._recordings.pop(rec_id, None)
                if rec is not None:
                    rec.active = False
                    rec.frames, rec.error = frames, error
                    if error is not None:
                        log.warning("media_recording_failed", path=rec.path, error=error)
                    if not rec.closed.done():
                        rec.closed.set_result(frames)
            case Failed(ep_id, command, text):
                log.warning(
                    "media_worker_command_failed",
                    worker=worker.index,
                    command=command,
                    endpoint=ep_id,
                    error=text,
                )
                ep = worker.endpoints.get(ep_id) if ep_id is not None else None
                if command == "Open" and ep is not None and ep.error is None:
                    ep.error = f"media worker {worker.index}: {text}"
                    self._report_lost([ep], ep.error)
            case Ready(pid):
                if worker.ready is not None and not worker.ready.done():
                    worker.ready.set_result(pid)
            case _:
                log.warning("media_worker_unexpected_event", event=type(message).__name__)

    def _lost(self, worker: _Worker, reason: str) -> None:
        if self._closing:
            return
        try:  # the exit status, when the process is already gone (it usually is)
            status = f"exited with status {worker.process.wait(0.05)}"
        except subprocess.TimeoutExpired:
            status = f"{reason} (killed)"  # a broken channel: the process is of no use
            worker.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.process.wait(0.05)
        message = f"media worker {worker.index} (pid {worker.pid}) is gone: {status}"
        log.error("media_worker_lost", index=worker.index, pid=worker.pid, reason=status)
        lost = list(worker.endpoints.values())
        self._fail(worker, message, "failed")
        if self._workers[worker.index] is worker:
            task = asyncio.ensure_future(self._restart(worker.index))
            self._restarts.add(task)
            task.add_done_callback(self._restarts.discard)
        if worker.ready is not None and not worker.ready.done():
            worker.ready.set_exception(MediaError(message))
        self._report_lost(lost, message)

    def _report_lost(self, endpoints: list[WorkerEndpoint], reason: str) -> None:
        if self.on_lost is not None and endpoints:
            try:
                self.on_lost(endpoints, reason)
            except Exception:
                log.exception("media_lost_callback_failed")

    def _fail(self, worker: _Worker, message: str, playback_reason: str) -> None:
        """Mark a worker and everything on it as gone; complete whatever waits on it."""
        worker.error = worker.error or message
        for ep in worker.endpoints.values():
            ep.error = ep.error or message
            ep._finish(None)
        for ep in worker.released.values():
            ep._finish(None)
        worker.released.clear()
        for play_id, (owner, playback) in list(self._playbacks.items()):
            if owner is worker:
                del self._playbacks[play_id]
                if not playback.future.done():
                    playback.future.set_result(playback_reason)
        for rec_id, rec in list(self._recordings.items()):
            if rec.caller.worker is worker:
                del self._recordings[rec_id]
                rec.active = False
                rec.error = rec.error or message
                if not rec.closed.done():
                    rec.closed.set_result(rec.frames)
        for future in worker.reports.values():
            if not future.done():
                future.set_result(None)
        worker.reports.clear()
