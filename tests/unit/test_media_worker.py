"""The media-worker control protocol, the worker's command handling and the pool's sums.

No processes: messages are framed and decoded in memory, two channels talk over a socket
pair, and the worker's command handler drives an in-process engine.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import random
import socket
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from media import workerproto
from media.dtmf import Digit
from media.endpoint import EndpointStats
from media.engine import EngineSettings, EngineStats
from media.moh import PlaylistFiles
from media.pool import MediaWorkerPool, split_ports
from media.sdp import Codec, NegotiatedStream
from media.worker import WorkerServer
from media.workerproto import (
    Bridge,
    Channel,
    Close,
    DtmfDetected,
    Failed,
    HoldMusic,
    Message,
    MessageDecoder,
    MonitorEnded,
    MonitorSet,
    MonitorStart,
    MonitorStop,
    Negotiated,
    Open,
    Play,
    PlaybackEnded,
    ProtocolError,
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
    encode,
)

STREAM = NegotiatedStream(
    index=0,
    media="audio",
    accepted=True,
    codec=Codec(0, "PCMU", 8000),
    telephone_event=Codec(101, "telephone-event", 8000),
    remote_host="127.0.0.1",
    remote_port=40000,
    local_port=30000,
    direction="sendrecv",
)
STATS = EndpointStats(
    50, 8600, 1, 0.02, 0.8, 49, 7840, None, 4.3, 0, 0, 0, ("127.0.0.1", 4), "PCMU"
)
ENGINE = EngineStats(2, 2, 0, 100, 0, 0, 0, 0.2, 0.01)

MESSAGES: list[Message] = [
    Start(1, EngineSettings(port_min=30000, port_max=30099), 1.0),
    Open(7, 30000, None, STREAM),
    Open(8, 30002, True, None),
    Negotiated(7, STREAM),
    Bridge(7, 8),
    Unbridge(7),
    Play(7, 9, "/tmp/prompt.wav", False, True),
    StopPlay(7),
    HoldMusic(None, "/tmp/moh.wav"),
    HoldMusic(8, None),
    Record(10, 7, None, "/tmp/call.wav"),
    StopRecording(10),
    Release(7),
    Report(3),
    Close(),
    Ready(1234),
    DtmfDetected(7, Digit("5", 100, "rfc4733")),
    PlaybackEnded(9, "barge-in"),
    Statistics({7: STATS}, ENGINE, 1.5),
    Statistics({}, None, 0.0, 3),
    Released(7, STATS),
    Released(8, None),
    RecordingClosed(10, 150, None),
    RecordingClosed(11, 0, "/nowhere/x.wav: cannot create recording"),
    Failed(None, "Bridge", "Bridge before Start"),
    HoldMusic(8, PlaylistFiles(("/tmp/song.wav",), "/tmp/intro.wav", (), 30.0, True)),
    RoomOpen(20),
    RoomJoin(20, 7, True, False, 1.5),
    RoomSet(20, 7, False, None, None, 0.5),
    RoomAnnounce(20, 21, "/tmp/name.wav"),
    RoomLeave(20, 7),
    RoomClose(20),
    MonitorStart(22, 7, 8, 9, "whisper"),
    MonitorSet(22, "barge"),
    MonitorStop(22),
    MonitorEnded(22),
    RoomTalking(20, (7, 8)),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: Message) -> None:
    assert MessageDecoder().feed(encode(message)) == [message]


def test_samples_travel_as_samples() -> None:
    samples = (np.arange(800) % 300).astype(np.int16)
    (got,) = MessageDecoder().feed(encode(Play(1, 2, samples, True, False)))
    assert isinstance(got, Play) and isinstance(got.source, np.ndarray)
    assert got.source.dtype == np.int16 and np.array_equal(got.source, samples)


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 10_000])
def test_stream_reassembly_in_order(chunk: int) -> None:
    data = b"".join(encode(m) for m in MESSAGES)
    decoder = MessageDecoder()
    got: list[Message] = []
    for i in range(0, len(data), chunk):
        got += decoder.feed(data[i : i + chunk])
    assert got == MESSAGES


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (struct.pack("!I", workerproto.MAX_MESSAGE + 1), "exceeds"),
        (struct.pack("!I", 5) + b"junk!", "undecodable"),
        (struct.pack("!I", 2) + pickle.dumps(None, protocol=5)[:2], "undecodable"),
        (
            struct.pack("!I", len(pickle.dumps({"op": "x"}))) + pickle.dumps({"op": "x"}),
            "unexpected dict",
        ),
    ],
)
def test_bad_frames_are_refused(frame: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        MessageDecoder().feed(frame)


def test_oversized_message_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workerproto, "MAX_MESSAGE", 100)
    with pytest.raises(ProtocolError, match="Play message"):
        encode(Play(1, 2, np.zeros(1000, np.int16), False, False))


async def test_channels_over_a_socket_pair() -> None:
    loop = asyncio.get_running_loop()
    left_sock, right_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    got: list[Message] = []
    lost: list[str] = []
    _, left = await loop.create_unix_connection(
        lambda: Channel(got.append, lost.append), sock=left_sock
    )
    _, right = await loop.create_unix_connection(
        lambda: Channel(got.append, lost.append), sock=right_sock
    )
    for message in MESSAGES:
        left.send(message)
    for _ in range(200):
        if len(got) == len(MESSAGES):
            break
        await asyncio.sleep(0.01)
    assert got == MESSAGES
    right.close()
    for _ in range(200):
        if len(lost) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(lost) == 2 and "closed" in lost[0]
    assert not left.open
    with pytest.raises(ConnectionError):
        left.send(Report(1))


async def test_a_bad_frame_closes_the_channel() -> None:
    loop = asyncio.get_running_loop()
    raw, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    lost: list[str] = []
    _, channel = await loop.create_unix_connection(
        lambda: Channel(lambda m: None, lost.append), sock=ours
    )
    raw.sendall(struct.pack("!I", 3) + b"bad")
    for _ in range(200):
        if lost:
            break
        await asyncio.sleep(0.01)
    raw.close()
    assert lost and "undecodable" in lost[0]
    assert not channel.open


@pytest.mark.parametrize(
    ("port_min", "port_max", "workers", "expected"),
    [
        (20000, 20099, 1, [(20000, 50)]),
        (20000, 20099, 2, [(20000, 25), (20050, 25)]),
        (20001, 20100, 2, [(20002, 24), (20050, 25)]),  # odd start: RTP stays even
        (20000, 20013, 3, [(20000, 2), (20004, 2), (20008, 3)]),
    ],
)
def test_port_slices(
    port_min: int, port_max: int, workers: int, expected: list[tuple[int, int]]
) -> None:
    slices = split_ports(port_min, port_max, workers)
    assert slices == expected
    ports = [first + 2 * k for first, pairs in slices for k in range(pairs)]
    assert len(ports) == len(set(ports)) and all(port_min <= p < port_max for p in ports)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"workers": 0}, "at least one worker"),
        ({"workers": 3, "settings": EngineSettings(port_min=20000, port_max=20003)}, "fewer"),
        ({"stats_interval": 0}, "stats_interval"),
    ],
)
def test_pool_settings_are_checked(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        MediaWorkerPool(**kwargs)  # type: ignore[arg-type]


# ---- the worker's command handling, on an in-process engine -------------------------


class FakeChannel:
    """Collects the events a worker sends."""

    open = True

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)

    def close(self) -> None:
        self.open = False


@pytest.fixture
async def server() -> AsyncIterator[tuple[WorkerServer, FakeChannel, int]]:
    base = random.randrange(30000, 60000, 2)
    srv = WorkerServer()
    channel = FakeChannel()
    srv.channel = channel  # type: ignore[assignment]
    srv.handle(Start(0, EngineSettings(port_min=base, port_max=base + 99), 60.0))
    for _ in range(100):
        if any(isinstance(m, Ready) for m in channel.sent):
            break
        await asyncio.sleep(0.01)
    yield srv, channel, base
    srv.lost("test over")  # as when the channel closes: the worker shuts its engine down
    await asyncio.wait_for(srv.finished, 5)


async def test_commands_before_start_fail() -> None:
    srv = WorkerServer()
    channel = FakeChannel()
    srv.channel = channel  # type: ignore[assignment]
    srv.handle(Bridge(1, 2))
    assert channel.sent == [Failed(None, "Bridge", "Bridge before Start")]


class _TickSoon:
    """An engine stand-in whose frame tick is always 1 ms away, then far off."""

    def __init__(self) -> None:
        self.near = True
        self.trace = None  # no tick trace

    @property
    def next_tick(self) -> float:
        return time.monotonic() + (0.001 if self.near else 1.0)


async def test_commands_received_near_a_tick_wait_for_it_in_order() -> None:
    srv = WorkerServer()
    channel = FakeChannel()
    srv.channel = channel  # type: ignore[assignment]
    engine = _TickSoon()
    srv.engine = engine  # type: ignore[assignment]
    srv.receive(Negotiated(1, STREAM))
    srv.receive(Negotiated(3, STREAM))
    for _ in range(3):
        await asyncio.sleep(0)
    assert channel.sent == []  # the tick is near: nothing applied before it
    engine.near = False
    for _ in range(100):
        if len(channel.sent) == 2:
            break
        await asyncio.sleep(0.005)
    assert [m.endpoint for m in channel.sent if isinstance(m, Failed)] == [1, 3]


async def test_worker_applies_commands(
    server: tuple[WorkerServer, FakeChannel, int], tmp_path: Path
) -> None:
    srv, channel, base = server
    channel.sent.clear()
    srv.handle(Open(1, base, None, STREAM))
    srv.handle(Open(2, base + 2, None, None))
    srv.handle(Negotiated(2, STREAM))
    srv.handle(Bridge(1, 2))
    assert srv.engine is not None and srv.engine.stats().endpoints == 2
    srv.handle(Play(1, 5, np.zeros(800, np.int16), False, False))
    srv.handle(StopPlay(1))
    path = tmp_path / "call.wav"
    srv.handle(Record(6, 1, 2, str(path)))
    srv.handle(Release(1))  # ends the recording as well
    await asyncio.sleep(0)  # the playback future's callbacks
    assert PlaybackEnded(5, "stopped") in channel.sent
    for _ in range(100):  # reported once the disk thread completed the WAV
        if RecordingClosed(6, 0, None) in channel.sent:
            break
        await asyncio.sleep(0.01)
    assert RecordingClosed(6, 0, None) in channel.sent
    released = [m for m in channel.sent if isinstance(m, Released)]
    assert len(released) == 1 and released[0].endpoint == 1 and released[0].stats is not None
    assert path.exists()
    assert not [m for m in channel.sent if isinstance(m, Failed)]


async def test_worker_reports_a_failed_bind_once(
    server: tuple[WorkerServer, FakeChannel, int],
) -> None:
    srv, channel, base = server
    channel.sent.clear()
    srv.handle(Open(1, base, None, STREAM))
    srv.handle(Open(2, base, None, STREAM))  # the same pair: taken
    srv.handle(Negotiated(2, STREAM))
    srv.handle(Bridge(1, 2))
    srv.handle(Play(2, 3, np.zeros(160, np.int16), False, False))
    srv.handle(Record(4, 2, None, "/nowhere"))
    srv.handle(Release(2))
    failed = [m for m in channel.sent if isinstance(m, Failed)]
    assert len(failed) == 1 and (failed[0].endpoint, failed[0].command) == (2, "Open")
    assert f"{base}/{base + 1}" in failed[0].message
    assert PlaybackEnded(3, "failed") in channel.sent
    assert RecordingClosed(4, 0, "endpoint failed") in channel.sent
    assert Released(2, None) in channel.sent


async def test_worker_names_unknown_endpoints(
    server: tuple[WorkerServer, FakeChannel, int],
) -> None:
    srv, channel, _ = server
    channel.sent.clear()
    srv.handle(Unbridge(42))
    assert channel.sent == [Failed(42, "Unbridge", "endpoint 42 is not open on this media worker")]


async def test_statistics_are_pushed_in_chunks(
    server: tuple[WorkerServer, FakeChannel, int],
) -> None:
    srv, channel, base = server
    for i in range(30):
        srv.handle(Open(i + 1, base + 2 * i, None, STREAM))
    channel.sent.clear()
    srv.handle(Report(8))
    for _ in range(100):
        if len(channel.sent) >= 2:
            break
        await asyncio.sleep(0.01)
    first, last = channel.sent
    assert isinstance(first, Statistics) and isinstance(last, Statistics)
    assert len(first.endpoints) == 25 and first.engine is None and first.answers is None
    assert sorted(first.endpoints | last.endpoints) == list(range(1, 31))
    assert last.engine is not None and last.engine.endpoints == 30 and last.answers == 8


async def test_periodic_pushes_carry_a_share_of_the_legs_in_turn(
    server: tuple[WorkerServer, FakeChannel, int],
) -> None:
    srv, channel, base = server
    for i in range(10):
        srv.handle(Open(i + 1, base + 2 * i, None, STREAM))
    seen: list[set[int]] = []
    for _ in range(5):  # what the statistics loop does every stats_interval
        channel.sent.clear()
        await srv._push_stats()
        (push,) = channel.sent
        assert isinstance(push, Statistics) and push.engine is not None
        seen.append(set(push.endpoints))
    assert all(len(legs) == 2 for legs in seen)
    assert set().union(*seen) == set(range(1, 11))  # every leg once in five pushes


async def test_worker_runs_rooms(server: tuple[WorkerServer, FakeChannel, int]) -> None:
    srv, channel, base = server
    channel.sent.clear()
    for i in range(3):
        srv.handle(Open(i + 1, base + 2 * i, None, STREAM))
    srv.handle(RoomOpen(10))
    srv.handle(RoomJoin(10, 1, True, True, 1.0))
    srv.handle(RoomJoin(10, 2, True, True, 1.0))
    srv.handle(RoomSet(10, 2, False, None, 2.0, None))
    srv.handle(RoomAnnounce(10, 11, np.zeros(160, np.int16)))
    srv.handle(RoomJoin(10, 1, True, True, 1.0))  # twice: refused, named
    srv.handle(RoomJoin(99, 3, True, True, 1.0))  # no such room
    srv.handle(RoomSet(10, 2, None, None, 9.0, None))  # a gain out of range
    assert [(m.command, m.message) for m in channel.sent if isinstance(m, Failed)] == [
        ("RoomJoin", "endpoint 1 is already in a mixing session"),
        ("RoomJoin", "room 99 is not open on this media worker"),
        ("RoomSet", "gain 9.0 outside 0..8.0"),
    ]
    srv.handle(RoomLeave(10, 1))
    srv.handle(Release(2))  # a released member leaves by itself
    assert srv._members[10] == set()
    srv.handle(RoomClose(10))  # ends the announcement
    await asyncio.sleep(0)
    assert PlaybackEnded(11, "stopped") in channel.sent
    srv.handle(RoomAnnounce(10, 12, np.zeros(160, np.int16)))  # the room is gone
    assert PlaybackEnded(12, "failed") in channel.sent


async def test_worker_reports_monitors_ending(
    server: tuple[WorkerServer, FakeChannel, int],
) -> None:
    srv, channel, base = server
    channel.sent.clear()
    for i in range(3):
        srv.handle(Open(i + 1, base + 2 * i, None, STREAM))
    srv.handle(Bridge(1, 2))
    srv.handle(MonitorStart(5, 1, 2, 3, "listen"))
    srv.handle(MonitorSet(5, "barge"))
    srv.handle(MonitorStart(6, 1, 2, 3, "listen"))  # the legs are taken: ended at once
    srv.handle(Release(1))  # the monitored call ends
    for _ in range(50):
        if MonitorEnded(5) in channel.sent:
            break
        await asyncio.sleep(0.01)
    assert MonitorEnded(5) in channel.sent and MonitorEnded(6) in channel.sent
    assert [m.command for m in channel.sent if isinstance(m, Failed)] == ["MonitorStart"]
    srv.handle(MonitorSet(5, "listen"))  # ended: ignored
    srv.handle(MonitorStop(5))
    assert [m.command for m in channel.sent if isinstance(m, Failed)] == ["MonitorStart"]


async def test_worker_loads_a_playlist_by_file_name_once(
    server: tuple[WorkerServer, FakeChannel, int], tmp_path: Path
) -> None:
    from media.wav import write_wav

    srv, channel, base = server
    channel.sent.clear()
    write_wav(tmp_path / "song.wav", np.full(800, 1000, np.int16))
    files = PlaylistFiles((str(tmp_path / "song.wav"),))
    srv.handle(Open(1, base, None, STREAM))
    srv.handle(HoldMusic(1, files))
    srv.handle(HoldMusic(1, PlaylistFiles((str(tmp_path / "missing.wav"),))))
    for _ in range(100):
        if srv._playlists and any(isinstance(m, Failed) for m in channel.sent):
            break
        await asyncio.sleep(0.01)
    (failed,) = [m for m in channel.sent if isinstance(m, Failed)]
    assert failed.command == "HoldMusic" and "missing.wav" in failed.message
    assert srv._legs[1].hold_music is None  # the later request (which failed) won
    srv.handle(HoldMusic(1, files))  # loaded already: applied at once
    assert srv._legs[1].hold_music is next(iter(srv._playlists.values()))


async def test_worker_plays_a_playlist_once_loaded_unless_no_longer_wanted(
    server: tuple[WorkerServer, FakeChannel, int], tmp_path: Path
) -> None:
    from media.wav import write_wav

    srv, channel, base = server
    channel.sent.clear()
    write_wav(tmp_path / "song.wav", np.full(800, 1000, np.int16))
    files = PlaylistFiles((str(tmp_path / "song.wav"),))
    srv.handle(Open(1, base, None, STREAM))
    srv.handle(Open(2, base + 2, None, STREAM))
    srv.handle(Play(1, 10, files, False, False))
    srv.handle(Play(1, 11, files, False, False))  # replaces the first while it loads
    srv.handle(Play(2, 12, files, False, False))
    srv.handle(Release(2))  # gone before its playlist is loaded
    srv.handle(Play(1, 13, PlaylistFiles((str(tmp_path / "missing.wav"),)), False, False))
    srv.handle(Play(1, 14, files, False, False))
    for _ in range(100):
        if srv._legs[1].player is not None:
            break
        await asyncio.sleep(0.01)
    ended = [(m.playback, m.reason) for m in channel.sent if isinstance(m, PlaybackEnded)]
    assert ended == [(10, "replaced"), (12, "released"), (11, "replaced"), (13, "replaced")]
    assert srv._legs[1].player is not None  # 14 plays
    srv.handle(StopPlay(1))
    await asyncio.sleep(0)
    assert PlaybackEnded(14, "stopped") in channel.sent


async def test_worker_decodes_a_file_off_the_tick_and_follows_changes_on_disk(
    server: tuple[WorkerServer, FakeChannel, int], tmp_path: Path
) -> None:
    from media.wav import write_wav

    srv, channel, base = server
    channel.sent.clear()
    path = tmp_path / "greeting.wav"
    write_wav(path, np.full(800, 1000, np.int16))
    srv.handle(Open(1, base, None, STREAM))
    srv.handle(Open(2, base + 2, None, STREAM))
    srv.handle(Play(1, 20, str(path), False, False))
    srv.handle(Play(2, 21, str(path), False, False))  # shares the one decode
    assert srv._legs[1].player is None  # not decoded on the loop: pending
    for _ in range(100):
        if srv._legs[1].player is not None and srv._legs[2].player is not None:
            break
        await asyncio.sleep(0.01)
    first = srv._legs[1].player
    assert first is not None and srv._legs[2].player is not None
    assert first.samples is srv._legs[2].player.samples  # one decoded copy for both
    assert int(first.samples[0]) == 1000
    srv.handle(Play(1, 22, str(path), False, False))  # cached: plays at once
    assert srv._legs[1].player is not None and srv._legs[1].player.samples is first.samples
    write_wav(path, np.full(1600, -2000, np.int16))  # the greeting re-recorded
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    srv.handle(Play(1, 23, str(path), False, False))
    for _ in range(100):
        player = srv._legs[1].player
        if player is not None and player.playback is not None and int(player.samples[0]) != 1000:
            break
        await asyncio.sleep(0.01)
    player = srv._legs[1].player
    assert player is not None and int(player.samples[0]) == -2000 and len(player.samples) == 1600
    srv.handle(Play(2, 24, str(tmp_path / "missing.wav"), False, False))
    assert PlaybackEnded(24, "failed") in channel.sent
    assert not [m for m in channel.sent if isinstance(m, Failed) and m.command != "Play"]
