"""A media-worker process: one :class:`MediaEngine` on its own event loop and port slice.

:class:`media.pool.MediaWorkerPool` starts ``python -m media.worker --fd N`` with one end of
a Unix socket pair as descriptor N.  The first command (:class:`Start`) carries the engine
settings; every later command is applied to the engine in arrival order, and what the
engine reports (DTMF, playbacks ending, statistics every ``stats_interval`` seconds with
each leg's figures in every fifth push, failures) goes back as events.  Endpoints are
named by the pool's ids.  The worker exits on :class:`Close` or when the channel closes
(signalling went away).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import structlog

from media.dtmf import Digit
from media.endpoint import DtmfCallback, Endpoint, MediaError
from media.engine import MediaEngine
from media.inbox import TickPacedInbox
from media.moh import HoldMusic as Playlist
from media.moh import PlaylistFiles
from media.recorder import Recording
from media.rooms import MixRoom, Monitor
from media.sources import SOURCES
from media.workerproto import (
    Bridge,
    Channel,
    Close,
    DtmfDetected,
    Failed,
    HoldMusic,
    Message,
    MonitorEnded,
    MonitorSet,
    MonitorStart,
    MonitorStop,
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
    RoomAnnounce,
    RoomClose,
    RoomJoin,
    RoomLeave,
    RoomOpen,
    RoomSet,
    RoomTalking,
    Start,
    Statistics,
    StopPlay,
    StopRecording,
    Unbridge,
)
from media.workerproto import HoldSource as WireHoldSource
from media.workersched import (
    collect_after_ticks,
    collect_fully,
    raise_priority,
    take_over_collection,
)

log = structlog.get_logger(__name__)

_STATS_CHUNK = 25  # endpoints per statistics message: ~25 us each (the E-model), so a
# push is split into loop turns of about a millisecond and never holds a tick up
_STATS_ROUNDS = 5  # a periodic push carries a fifth of the legs: each leg's figures are
# refreshed every fifth push, and the E-model work is spread evenly over the pushes
PlaySource = npt.NDArray[np.int16] | str | Playlist
_TALK_INTERVAL = 0.25  # seconds between looks at who talks in the rooms (changes are sent)


class _Moot(Exception):
    """A command for a leg whose Open failed: that failure was already reported."""


class WorkerServer:
    """Applies commands to the engine and reports its events over the channel."""

    def __init__(self) -> None:
        self.channel: Channel | None = None
        self.engine: MediaEngine | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._legs: dict[int, Endpoint] = {}
        self._failed: set[int] = set()  # legs whose Open failed
        self._recordings: dict[int, Recording] = {}
        self._rooms: dict[int, MixRoom] = {}
        self._members: dict[int, set[int]] = {}  # room -> pool ids of its members
        self._talking: dict[int, tuple[int, ...]] = {}  # room -> members talking, as sent
        self._monitors: dict[int, Monitor] = {}
        self._playlists: dict[tuple[object, ...], Playlist] = {}  # by _playlist_key
        self._hold_requests: dict[int | None, int] = {}  # endpoint -> latest hold request
        self._pending_plays: dict[int, int] = {}  # endpoint -> playback waiting for a load
        self._decoding: dict[str, asyncio.Future[npt.NDArray[np.int16]]] = {}  # by path
        # files are decoded on this thread, started with the engine: the default executor
        # would start a thread at the first miss, and Thread.start waits until it runs
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="source-decoder")
        self._stats_interval = 1.0
        self._stats_round = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._channel_gone = asyncio.Event()
        self._inbox = TickPacedInbox(self.handle, self._next_tick)

    def send(self, message: Message) -> None:
        """Report an event (dropped once the channel is gone: nobody is listening)."""
        if self.channel is not None and self.channel.open:
            self.channel.send(message)

    def lost(self, reason: str) -> None:
        """The channel closed: signalling went away or closed us."""
        self._channel_gone.set()
        if not self._closing:
            log.info("media_worker_channel_lost", reason=reason)
            self._spawn(self._shutdown())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def receive(self, message: Message) -> None:
        """Take one command off the channel: applied in order, between frame ticks."""
        self._inbox.put(message)

    def _next_tick(self) -> float | None:
        return self.engine.next_tick if self.engine is not None else None

    def handle(self, message: Message) -> None:
        """Apply one command now; a failure is reported, never fatal to the worker."""
        if self.engine is not None and self.engine.trace is not None:
            self.engine.trace.commands += 1  # the tick trace counts them between ticks
        try:
            self._apply(message)
        except (_Moot, MediaError, ValueError, OSError) as exc:
            if isinstance(message, Play | RoomAnnounce):
                self.send(PlaybackEnded(message.playback, "failed"))
            if isinstance(message, MonitorStart):
                self.send(MonitorEnded(message.monitor))
            if isinstance(message, Record):
                self.send(RecordingClosed(message.recording, 0, str(exc) or "endpoint failed"))
            elif not isinstance(exc, _Moot):
                endpoint = getattr(message, "endpoint", None)
                self.send(Failed(endpoint, type(message).__name__, str(exc)))

    def _leg(self, pool_id: int) -> Endpoint:
        ep = self._legs.get(pool_id)
        if ep is None:
            if pool_id in self._failed:
                raise _Moot
            raise MediaError(f"endpoint {pool_id} is not open on this media worker")
        return ep

    def _apply(self, message: Message) -> None:
        if isinstance(message, Start):
            self._start(message)
            return
        engine = self.engine
        if engine is None:
            raise MediaError(f"{type(message).__name__} before Start")
        match message:
            case Open(pool_id, port, inband_dtmf, stream, keys):
                try:
                    ep = engine.open_endpoint(
                        port, on_dtmf=self._dtmf_reporter(pool_id), inband_dtmf=inband_dtmf
                    )
                except MediaError:
                    self._failed.add(pool_id)
                    raise
                self._legs[pool_id] = ep
                if stream is not None:
                    ep.apply_stream(stream)
                    ep.apply_keys(keys)
            case Negotiated(pool_id, stream, keys):
                leg = self._leg(pool_id)
                leg.apply_stream(stream)
                leg.apply_keys(keys)
            case Bridge(a, b):
                engine.bridge(self._leg(a), self._leg(b))
            case Unbridge(pool_id):
                engine.unbridge(self._leg(pool_id))
            case Play(pool_id, playback_id, source, loop, barge_in):
                leg = self._leg(pool_id)
                self._end_pending_play(pool_id, "replaced")
                if isinstance(source, PlaylistFiles):
                    loaded = self._playlists.get(_playlist_key(source))
                    if loaded is None:  # loaded in a thread, then played (if still wanted)
                        self._pending_plays[pool_id] = playback_id
                        self._spawn(
                            self._play_loaded(
                                pool_id, playback_id, self._load(source), False, barge_in
                            )
                        )
                        return
                    source = loaded
                elif isinstance(source, str):
                    samples = SOURCES.cached(source)  # a stat, never a read
                    if samples is None:  # decoded in a thread, then played (if still wanted)
                        self._pending_plays[pool_id] = playback_id
                        self._spawn(
                            self._play_loaded(
                                pool_id, playback_id, self._decoded(source), loop, barge_in
                            )
                        )
                        return
                    source = samples
                self._play(leg, playback_id, source, loop, barge_in)
            case StopPlay(pool_id):
                self._end_pending_play(pool_id, "stopped")
                engine.stop(self._leg(pool_id))
            case HoldMusic(pool_id, source):
                self._hold_music(engine, pool_id, source)
            case RoomOpen(room_id):
                self._rooms[room_id] = engine.mix_room()
                self._members[room_id] = set()
            case RoomJoin(room_id, pool_id, talk, listen, gain):
                self._room(room_id).join(self._leg(pool_id), talk=talk, listen=listen, gain=gain)
                self._members[room_id].add(pool_id)
            case RoomLeave(room_id, pool_id):
                self._members.get(room_id, set()).discard(pool_id)
                member = self._legs.get(pool_id)
                if member is not None:
                    self._room(room_id).leave(member)
            case RoomSet(room_id, pool_id, talk, listen, gain, listen_gain):
                self._room(room_id).set(
                    self._leg(pool_id), talk=talk, listen=listen, gain=gain, listen_gain=listen_gain
                )
            case RoomAnnounce(room_id, playback_id, source):
                into = self._room(room_id)
                if isinstance(source, str):
                    samples = SOURCES.cached(source)
                    if samples is None:
                        self._spawn(self._announce_file(room_id, playback_id, source))
                        return
                    source = samples
                self._announce(into, playback_id, source)
            case RoomClose(room_id):
                room = self._rooms.pop(room_id, None)
                self._members.pop(room_id, None)
                self._talking.pop(room_id, None)
                if room is not None:
                    room.close()
            case MonitorStart(monitor_id, caller, agent, supervisor, mode):
                monitor = engine.monitor(
                    self._leg(caller), self._leg(agent), self._leg(supervisor), mode
                )
                self._monitors[monitor_id] = monitor
                self._spawn(self._watch_monitor(monitor_id, monitor))
            case MonitorSet(monitor_id, mode):
                found = self._monitors.get(monitor_id)
                if found is not None:
                    found.set_mode(mode)
            case MonitorStop(monitor_id):
                found = self._monitors.pop(monitor_id, None)
                if found is not None:
                    found.stop()
            case Record(rec_id, caller, callee, path):
                self._recordings[rec_id] = engine.record(
                    self._leg(caller), None if callee is None else self._leg(callee), path
                )
            case StopRecording(rec_id):
                rec = self._recordings.pop(rec_id, None)
                if rec is not None:
                    self._stop_recording(rec_id, rec)
            case Release(pool_id):
                self._failed.discard(pool_id)
                self._hold_requests.pop(pool_id, None)
                self._end_pending_play(pool_id, "released")
                for members in self._members.values():
                    members.discard(pool_id)  # the engine takes it out of its room
                gone = self._legs.pop(pool_id, None)
                for rec_id, rec in list(self._recordings.items()):
                    if gone is not None and gone in (rec.caller, rec.callee):
                        del self._recordings[rec_id]
                        self._stop_recording(rec_id, rec)
                self.send(Released(pool_id, None if gone is None else engine.release(gone)))
            case Report(request):
                self._spawn(self._push_stats(request))
            case Close():
                self._spawn(self._shutdown())
            case _:
                raise MediaError(f"unexpected {type(message).__name__} from signalling")

    def _announce(
        self, room: MixRoom, playback_id: int, source: npt.NDArray[np.int16] | str
    ) -> None:
        announcement = room.announce(source)
        announcement.future.add_done_callback(
            lambda future: self.send(PlaybackEnded(playback_id, future.result()))
        )

    async def _announce_file(self, room_id: int, playback_id: int, path: str) -> None:
        try:
            samples = await self._decoded(path)
        except (ValueError, OSError) as exc:
            self.send(PlaybackEnded(playback_id, "failed"))
            self.send(Failed(None, "RoomAnnounce", str(exc)))
            return
        room = self._rooms.get(room_id)
        if room is None or room.closed:
            self.send(PlaybackEnded(playback_id, "released"))
            return
        self._announce(room, playback_id, samples)

    def _room(self, room_id: int) -> MixRoom:
        room = self._rooms.get(room_id)
        if room is None:
            raise MediaError(f"room {room_id} is not open on this media worker")
        return room

    def _hold_music(
        self,
        engine: MediaEngine,
        pool_id: int | None,
        source: WireHoldSource | None,
    ) -> None:
        """Hold music for a leg (or worker-wide); a playlist named by its files is loaded
        once, in a thread so reading its files never holds a tick up."""
        request = self._hold_requests.get(pool_id, 0) + 1
        self._hold_requests[pool_id] = request
        leg = None if pool_id is None else self._leg(pool_id)
        if isinstance(source, PlaylistFiles):
            loaded = self._playlists.get(_playlist_key(source))
            if loaded is None:
                self._spawn(self._load_playlist(pool_id, request, source))
                return
            source = loaded
        elif isinstance(source, str):
            samples = SOURCES.cached(source)
            if samples is None:
                self._spawn(self._load_hold_file(pool_id, request, source))
                return
            source = samples
        engine.set_hold_music(source, leg)

    async def _load_playlist(self, pool_id: int | None, request: int, files: PlaylistFiles) -> None:
        try:
            music = await self._load(files)
        except ValueError as exc:
            self.send(Failed(pool_id, "HoldMusic", str(exc)))
            return
        self._set_hold_music(pool_id, request, music)

    async def _load_hold_file(self, pool_id: int | None, request: int, path: str) -> None:
        try:
            music = await self._decoded(path)
        except (ValueError, OSError) as exc:
            self.send(Failed(pool_id, "HoldMusic", str(exc)))
            return
        self._set_hold_music(pool_id, request, music)

    def _set_hold_music(
        self, pool_id: int | None, request: int, music: Playlist | npt.NDArray[np.int16]
    ) -> None:
        leg = None if pool_id is None else self._legs.get(pool_id)
        engine = self.engine
        if self._hold_requests.get(pool_id) != request or engine is None:
            return  # released, or another hold music was asked for meanwhile
        if pool_id is None or leg is not None:
            engine.set_hold_music(music, leg)

    def _play(
        self, leg: Endpoint, playback_id: int, source: PlaySource, loop: bool, barge_in: bool
    ) -> None:
        assert self.engine is not None
        playback = self.engine.play(leg, source, loop=loop, barge_in=barge_in)
        playback.future.add_done_callback(
            lambda future: self.send(PlaybackEnded(playback_id, future.result()))
        )

    def _end_pending_play(self, pool_id: int, reason: str) -> None:
        """A playlist still loading for this leg is not wanted any more."""
        playback_id = self._pending_plays.pop(pool_id, None)
        if playback_id is not None:
            self.send(PlaybackEnded(playback_id, reason))

    async def _play_loaded(
        self,
        pool_id: int,
        playback_id: int,
        source: Awaitable[PlaySource],
        loop: bool,
        barge_in: bool,
    ) -> None:
        """Play ``source`` once it is loaded (a playlist or a file, decoded off the tick),
        if the leg still wants this playback by then."""
        try:
            loaded = await source
        except (ValueError, OSError) as exc:
            if self._pending_plays.get(pool_id) == playback_id:
                del self._pending_plays[pool_id]
                self.send(PlaybackEnded(playback_id, "failed"))
            self.send(Failed(pool_id, "Play", str(exc)))
            return
        leg = self._legs.get(pool_id)
        if self._pending_plays.get(pool_id) != playback_id or leg is None:
            return  # stopped, replaced or released meanwhile (already reported)
        del self._pending_plays[pool_id]
        self._play(leg, playback_id, loaded, loop, barge_in)

    async def _decoded(self, path: str) -> npt.NDArray[np.int16]:
        """A file's samples decoded in a thread (reading never holds a tick up); plays of
        the same file asking meanwhile share that one decode."""
        task = self._decoding.get(path)
        if task is None:
            task = asyncio.get_running_loop().run_in_executor(self._decoder, SOURCES.load, path)
            self._decoding[path] = task
            task.add_done_callback(lambda _: self._decoding.pop(path, None))
        return await asyncio.shield(task)

    async def _load(self, files: PlaylistFiles) -> Playlist:
        """A playlist decoded in a thread (reading files never holds a tick up), cached."""
        key = _playlist_key(files)
        music = self._playlists.get(key)
        if music is None:
            music = await asyncio.get_running_loop().run_in_executor(self._decoder, files.load)
            self._playlists[key] = music
        return music

    async def _watch_monitor(self, monitor_id: int, monitor: Monitor) -> None:
        """Report the end of a monitor, whoever ended it (a released leg, MonitorStop)."""
        await monitor.ended.wait()
        if self._monitors.get(monitor_id) is monitor:
            del self._monitors[monitor_id]
        self.send(MonitorEnded(monitor_id))

    async def _talk_loop(self) -> None:
        """Send who talks in each room when that changes (the admin listing shows it)."""
        while True:
            await asyncio.sleep(_TALK_INTERVAL)
            for room_id, members in self._members.items():
                room = self._rooms[room_id]
                talking = tuple(
                    sorted(i for i in members if i in self._legs and room.talking(self._legs[i]))
                )
                if talking != self._talking.get(room_id, ()):
                    self._talking[room_id] = talking
                    self.send(RoomTalking(room_id, talking))

    def _stop_recording(self, rec_id: int, rec: Recording) -> None:
        assert self.engine is not None
        self.engine.stop_recording(rec)
        # reported once the disk thread completed the WAV: signalling reads it then
        rec.closed.add_done_callback(
            lambda _: self.send(RecordingClosed(rec_id, rec.frames, rec.error))
        )

    def _start(self, start: Start) -> None:
        if self.engine is not None:
            raise MediaError("the media worker was started twice")
        self.engine = MediaEngine(start.settings)
        self._stats_interval = start.stats_interval
        self._spawn(self._run_engine(start))

    async def _run_engine(self, start: Start) -> None:
        assert self.engine is not None
        # what start-up built is collected and frozen before the clock ticks: a whole
        # collection takes longer than a frame (see media.workersched)
        middle = take_over_collection()
        # before the disk and decoder threads start, which inherit it: the loop waits for
        # the GIL they hold, so they must not wait behind ordinary tasks either
        priority = raise_priority()
        await self.engine.start()
        await asyncio.get_running_loop().run_in_executor(self._decoder, int)  # its thread
        log.info(
            "media_worker_started",
            index=start.index,
            ports=f"{start.settings.port_min}-{start.settings.port_max}",
            priority=priority,
        )
        self.send(Ready(os.getpid()))
        self._spawn(self._stats_loop())
        self._spawn(self._talk_loop())
        self._spawn(collect_after_ticks(self._next_tick, middle))
        self._spawn(collect_fully())

    def _dtmf_reporter(self, pool_id: int) -> DtmfCallback:
        def report(_: Endpoint, digit: Digit) -> None:
            self.send(DtmfDetected(pool_id, digit))

        return report

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self._stats_interval)
            await self._push_stats()

    async def _push_stats(self, request: int | None = None) -> None:
        """Endpoints' statistics, a chunk per loop turn so no tick is held up: every leg's
        when asked (``request``), a round's share of them on the periodic push."""
        engine = self.engine
        if engine is None:
            return
        legs = list(self._legs.items())
        if request is None:
            self._stats_round = (self._stats_round + 1) % _STATS_ROUNDS
            legs = legs[self._stats_round :: _STATS_ROUNDS]
        for start in range(0, max(len(legs), 1), _STATS_CHUNK):
            chunk = {i: ep.stats() for i, ep in legs[start : start + _STATS_CHUNK]}
            if start + _STATS_CHUNK < len(legs):
                self.send(Statistics(chunk, None, time.process_time()))
                await asyncio.sleep(0)
            else:
                self.send(Statistics(chunk, engine.stats(), time.process_time(), request))

    async def _shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._inbox.flush()  # what signalling asked before it went away still holds
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()  # the statistics loop
        if self.engine is not None:
            for rec_id, rec in list(self._recordings.items()):
                self._stop_recording(rec_id, rec)
            self._recordings.clear()
            await self.engine.close()  # the WAVs are complete: report them before closing
            self._decoder.shutdown(wait=False, cancel_futures=True)
            for _ in range(3):
                await asyncio.sleep(0)
        if self.channel is not None:
            self.channel.close()  # after the queued events are written
            try:
                await asyncio.wait_for(self._channel_gone.wait(), 2.0)
            except TimeoutError:
                log.warning("media_worker_channel_flush_timeout")
        if not self.finished.done():
            self.finished.set_result(None)


def _playlist_key(files: PlaylistFiles) -> tuple[object, ...]:
    """A plain tuple: the compiled dataclass is not relied on for hashing."""
    return (files.songs, files.intro, files.messages, files.message_interval, files.randomise)


async def serve(sock: socket.socket) -> None:
    """Run a worker on the connected control socket until closed."""
    loop = asyncio.get_running_loop()
    server = WorkerServer()
    _, channel = await loop.create_unix_connection(
        lambda: Channel(server.receive, server.lost), sock=sock
    )
    server.channel = channel
    await server.finished


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m media.worker --fd N``."""
    parser = argparse.ArgumentParser(description="media-worker process (started by the pool)")
    parser.add_argument("--fd", type=int, required=True, help="inherited control socket")
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the pool decides when workers stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The recording and decoder threads hold the GIL for up to the switch interval each
    # time the loop wants it back (after every socket call): 5 ms by default, a quarter of a
    # frame. A media process wants it back at once.
    sys.setswitchinterval(0.0005)
    sock = socket.socket(fileno=args.fd)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - depends on the installation
        asyncio.run(serve(sock))
    else:
        uvloop.run(serve(sock))


if __name__ == "__main__":
    main()
