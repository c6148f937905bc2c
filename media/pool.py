"""Media engines in worker processes behind the media control interface.

:class:`MediaWorkerPool` starts N ``python -m media.worker`` processes, each running a
:class:`~media.engine.MediaEngine` on its own event loop and its own slice of the RTP port
range, and offers signalling and applications the same :class:`media.control.MediaControl`
as ``MediaEngine`` (allocate, bridge, play, record, release, rooms, monitors, hold-music
playlists), none of which waits for a worker:

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

Conference rooms and monitors live on one worker each; legs of other workers are linked
into them (:mod:`media.poolrooms`, which also holds the room and monitor handles).

Over 600 lines because it is the one place where each control operation
becomes a command and each event comes back to its handle, with the worker lifecycle
(start, loss, restart) that completes every handle of a dead worker; split, those three
would reach into one another's tables.
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
from dataclasses import replace

import numpy as np
import structlog

from media.control import EngineStats, HoldSource, RecordingHandle
from media.endpoint import EndpointStats, MediaError
from media.engine import EngineSettings, bind_rtp_pair, rtp_ports
from media.mixer import MonitorMode
from media.moh import HoldMusic as Playlist
from media.negotiation import NegotiatedLeg
from media.players import AudioSource, Playback, load_source
from media.poolrooms import Link, WorkerMonitor, WorkerRoom
from media.workerlegs import WorkerDtmfCallback, WorkerEndpoint, WorkerProcess, WorkerRecording
from media.workerproto import (
    Bridge,
    Channel,
    Close,
    DtmfDetected,
    Failed,
    HoldMusic,
    Message,
    MonitorEnded,
    Open,
    Play,
    PlaybackEnded,
    Ready,
    Record,
    RecordingClosed,
    Release,
    Released,
    Report,
    RoomAnnounce,
    RoomTalking,
    Source,
    Start,
    Statistics,
    StopPlay,
    StopRecording,
    Unbridge,
)
from media.workerproto import HoldSource as WireHoldSource

__all__ = [
    "MediaWorkerPool",
    "WorkerDtmfCallback",
    "WorkerEndpoint",
    "WorkerRecording",
    "split_ports",
]

log = structlog.get_logger(__name__)

_START_TIMEOUT = 20.0  # seconds for a worker to import numpy and report ready
_STOP_TIMEOUT = 5.0  # seconds for a worker to close its engine before it is killed
_RESTART_DELAY = 1.0  # seconds between a worker's death and its replacement


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
        self._workers: list[WorkerProcess] = []
        self._next_id = 1
        self._playbacks: dict[int, tuple[WorkerProcess, Playback]] = {}
        self._recordings: dict[int, WorkerRecording] = {}
        self._rooms: dict[int, WorkerRoom] = {}
        self._monitors: dict[int, WorkerMonitor] = {}
        self._sessions: dict[int, WorkerRoom | WorkerMonitor] = {}  # by member leg
        self._hold_music: HoldSource | None = self.settings.hold_music
        # where internal links between workers send their RTP: the bind address, or the
        # loopback when bound to every interface (never the advertised, maybe public, one)
        address = self.settings.address
        self._internal = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address, address)
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

    async def _launch(self, index: int) -> WorkerProcess:
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
        worker = WorkerProcess(index, first_port, pairs, process, ready=loop.create_future())
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

    async def _wait_ready(self, worker: WorkerProcess) -> None:
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

    def _channel(self, worker: WorkerProcess) -> Channel:
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
        near: NegotiatedLeg | None = None,
        srtp: str = "off",
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
        return self._allocate_on(
            worker,
            offer_sdp,
            direction,
            on_dtmf,
            inband_dtmf,
            self.advertised,
            ("PCMU", "PCMA"),
            srtp,
        )

    def _allocate_on(
        self,
        worker: WorkerProcess,
        offer_sdp: bytes | str | None,
        direction: str,
        on_dtmf: WorkerDtmfCallback | None,
        inband_dtmf: bool | None,
        advertised: str,
        codecs: tuple[str, ...],
        srtp: str = "off",
    ) -> WorkerEndpoint:
        port = self._reserve_port(worker)
        ep = WorkerEndpoint(
            worker, self._next_id, self.settings.address, advertised, port, on_dtmf, inband_dtmf
        )
        try:
            ep.set_srtp_policy(srtp)
            if offer_sdp is None:
                ep.offer(direction=direction, codecs=codecs)
            else:
                ep.answer(offer_sdp, direction=direction)
            worker.send(Open(ep.id, port, inband_dtmf, ep.stream, ep.keys))
        except Exception:
            worker.ports.discard(port)
            raise
        self._next_id += 1
        ep.opened = True
        worker.endpoints[ep.id] = ep
        return ep

    def _reserve_port(self, worker: WorkerProcess) -> int:
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

    def _own(self, ep: NegotiatedLeg) -> WorkerEndpoint:
        if not isinstance(ep, WorkerEndpoint) or ep.worker.endpoints.get(ep.id) is not ep:
            raise MediaError(f"endpoint {ep.id} is not allocated in this media-worker pool")
        ep._check()
        return ep

    def own(self, leg: NegotiatedLeg) -> WorkerEndpoint:
        """The leg as one of the pool's live endpoints; MediaError otherwise."""
        return self._own(leg)

    def release(self, leg: NegotiatedLeg) -> EndpointStats:
        """Close an endpoint; the latest pushed statistics (``await
        endpoint.final_stats()`` for the figures at release).  Never fails for an endpoint
        whose worker died: hang-up handling must always be able to clean up.  A leg in a
        room leaves it; a leg of a monitored call ends the monitoring."""
        if not isinstance(leg, WorkerEndpoint) or leg.worker.endpoints.get(leg.id) is not leg:
            raise MediaError(f"endpoint {leg.id} is not allocated in this media-worker pool")
        endpoint = leg
        session = self._sessions.get(endpoint.id)
        if isinstance(session, WorkerRoom):
            session.leave(endpoint)
        elif session is not None:
            session.stop()
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

    def _same_worker(self, leg_a: NegotiatedLeg, leg_b: NegotiatedLeg) -> WorkerProcess:
        a = self._own(leg_a)
        b = self._own(leg_b)
        if a.worker is not b.worker:
            raise MediaError(
                f"endpoints {a.id} and {b.id} are on different media workers "
                f"({a.worker.index} and {b.worker.index}): allocate the second leg of a call "
                f"with near=<first leg>"
            )
        return a.worker

    def bridge(self, a: NegotiatedLeg, b: NegotiatedLeg) -> None:
        """Connect two endpoints of the same worker so each hears the other."""
        if a is b:
            raise MediaError("cannot bridge an endpoint to itself")
        self._same_worker(a, b).send(Bridge(a.id, b.id))

    def unbridge(self, endpoint: NegotiatedLeg) -> None:
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

    def _wire(self, source: AudioSource | Playlist) -> WireHoldSource:
        """How a source travels: a playlist loaded from files as its file names (each
        worker loads and caches it once), one built from samples as it is."""
        if isinstance(source, Playlist):
            return source if source.files is None else source.files
        return self._source(source)

    def play(
        self,
        endpoint: NegotiatedLeg,
        source: AudioSource | Playlist,
        *,
        loop: bool = False,
        barge_in: bool = False,
    ) -> Playback:
        """Play samples, a WAV file or a playlist to an endpoint (as
        :meth:`MediaEngine.play`); the playback also ends with ``failed`` when the worker
        could not play it."""
        worker = self._own(endpoint).worker
        wire = self._wire(source)
        playback = Playback(endpoint.id, asyncio.get_running_loop().create_future())
        play_id = self._next_id
        self._next_id += 1
        worker.send(Play(endpoint.id, play_id, wire, loop, barge_in))
        self._playbacks[play_id] = (worker, playback)
        return playback

    def stop(self, endpoint: NegotiatedLeg) -> None:
        """Stop the playback on an endpoint (no-op if none)."""
        self._own(endpoint).worker.send(StopPlay(endpoint.id))

    @property
    def hold_music(self) -> HoldSource | None:
        """The pool-wide music on hold as configured (``settings.hold_music``)."""
        return self._hold_music

    def set_hold_music(
        self, source: HoldSource | None, endpoint: NegotiatedLeg | None = None
    ) -> None:
        """What a held party hears: pool-wide (every worker), or for one endpoint.  A
        playlist loaded from files is sent as its file names (each worker loads and caches
        it once); one built from samples travels as it is."""
        wire = None if source is None else self._wire(source)
        if endpoint is not None:
            self._own(endpoint).worker.send(HoldMusic(endpoint.id, wire))
            return
        self._hold_music = source
        for worker in self._workers:
            if worker.alive:
                worker.send(HoldMusic(None, wire))

    def record(
        self,
        caller_leg: NegotiatedLeg,
        callee: NegotiatedLeg | None,
        path: str | os.PathLike[str],
    ) -> WorkerRecording:
        """Record to a 2-channel WAV (caller, callee) until :meth:`stop_recording`.

        The file is created here so a bad path fails at once (MediaError naming it).
        """
        caller = self._own(caller_leg)
        worker = self._same_worker(caller, callee) if callee else caller.worker
        name = os.fspath(path)
        try:
            open(name, "wb").close()  # the worker writes it
        except OSError as exc:
            raise MediaError(f"{name}: cannot create recording ({exc.strerror})") from None
        rec = WorkerRecording(
            self._next_id,
            name,
            caller,
            None if callee is None else self._own(callee),
            asyncio.get_running_loop().create_future(),
        )
        self._next_id += 1
        worker.send(Record(rec.id, caller.id, None if callee is None else callee.id, name))
        self._recordings[rec.id] = rec
        return rec

    def stop_recording(self, handle: RecordingHandle) -> None:
        """Finish a recording (idempotent); ``await recording.wait_closed()`` for the WAV
        to be complete."""
        if not isinstance(handle, WorkerRecording):
            raise MediaError(f"recording {handle.path} was not made by this media-worker pool")
        recording = handle
        if not recording.active:
            return
        recording.active = False
        worker = recording.caller.worker
        if worker.alive:
            worker.send(StopRecording(recording.id))

    # ---- rooms and monitors -----------------------------------------------------------

    def mix_room(self, near: NegotiatedLeg | None = None) -> WorkerRoom:
        """A new, empty conference room on ``near``'s worker (else the least loaded one);
        members on other workers are linked into it (:mod:`media.poolrooms`)."""
        if near is not None:
            worker = self._own(near).worker
        else:
            alive = [w for w in self._workers if w.alive]
            if not alive:
                raise MediaError("no media worker is running")
            worker = min(alive, key=lambda w: len(w.endpoints))
        room = WorkerRoom(self, self._new_id(), worker)
        self._rooms[room.id] = room
        return room

    def monitor(
        self,
        caller: NegotiatedLeg,
        agent: NegotiatedLeg,
        supervisor: NegotiatedLeg,
        mode: MonitorMode | str = MonitorMode.LISTEN,
    ) -> WorkerMonitor:
        """Let ``supervisor`` monitor the call of ``caller`` and ``agent`` (as
        :meth:`MediaEngine.monitor`), mixed on the call's worker; a supervisor on another
        worker is linked in."""
        monitor = WorkerMonitor(
            self, self._new_id(), self._own(caller), self._own(agent), self._own(supervisor), mode
        )
        self._monitors[monitor.id] = monitor
        return monitor

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def link(self, leg: WorkerEndpoint, worker: WorkerProcess) -> Link:
        """Relay ``leg`` into ``worker``: an internal leg beside it, bridged to it, and one
        on ``worker``, negotiated with each other in the leg's codec (so the relay into the
        internal leg is a header rewrite, never a transcode)."""
        codec = leg.stream.codec.name if leg.stream and leg.stream.codec else "PCMU"
        codecs = (codec, *(c for c in ("PCMU", "PCMA") if c != codec))
        address = self._internal
        near = self._allocate_on(leg.worker, None, "sendrecv", None, False, address, codecs)
        try:
            far = self._allocate_on(worker, near.local_sdp, "sendrecv", None, False, address, ())
            try:
                near.set_remote(far.local_sdp)
                leg.worker.send(Bridge(leg.id, near.id))
            except Exception:
                self.release(far)
                raise
        except Exception:
            self.release(near)
            raise
        return Link(leg, near, far)

    def unlink(self, link: Link) -> None:
        """Undo :meth:`link` (never fails: used on hang-up and when a worker died)."""
        leg = link.leg
        # a worker going away (the pool closing, a crash) must not stop the clean-up
        with contextlib.suppress(MediaError):
            if not leg.released and leg.error is None and leg.worker.alive:
                leg.worker.send(Unbridge(leg.id))
        for ep in (link.near, link.far):
            if not ep.released:
                with contextlib.suppress(MediaError):
                    self.release(ep)

    def bind(self, leg: WorkerEndpoint, session: WorkerRoom | WorkerMonitor) -> None:
        """Note that ``leg`` is in a room or monitor (one at a time, as in the engine)."""
        if leg.id in self._sessions:
            raise MediaError(f"endpoint {leg.id} is already in a mixing session")
        self._sessions[leg.id] = session

    def unbind(self, leg: WorkerEndpoint) -> None:
        """``leg`` left its room or monitor."""
        self._sessions.pop(leg.id, None)

    def announce(self, worker: WorkerProcess, room: int, source: AudioSource) -> Playback:
        """Play ``source`` into room ``room`` of ``worker``."""
        wire = self._source(source)
        playback = Playback(0, asyncio.get_running_loop().create_future())
        play_id = self._new_id()
        worker.send(RoomAnnounce(room, play_id, wire))
        self._playbacks[play_id] = (worker, playback)
        return playback

    def forget(self, session: WorkerRoom | WorkerMonitor) -> None:
        """A closed room or ended monitor."""
        if isinstance(session, WorkerRoom):
            self._rooms.pop(session.id, None)
        else:
            self._monitors.pop(session.id, None)

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

    def _on_event(self, worker: WorkerProcess, message: Message) -> None:
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
            case RoomTalking(room_id, talking):
                room = self._rooms.get(room_id)
                if room is not None:
                    room.on_talking(talking)
            case MonitorEnded(monitor_id):
                monitor = self._monitors.get(monitor_id)
                if monitor is not None:
                    monitor.on_ended()
            case Ready(pid):
                if worker.ready is not None and not worker.ready.done():
                    worker.ready.set_result(pid)
            case _:
                log.warning("media_worker_unexpected_event", event=type(message).__name__)

    def _lost(self, worker: WorkerProcess, reason: str) -> None:
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

    def _fail(self, worker: WorkerProcess, message: str, playback_reason: str) -> None:
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
        for room in list(self._rooms.values()):
            if room.worker is worker:
                room.on_worker_lost()
        for monitor in list(self._monitors.values()):
            if worker in (monitor.worker, monitor.supervisor.worker):
                monitor.on_ended()
