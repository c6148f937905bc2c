"""What applications use, on media worker processes: conference rooms and monitors whose
legs sit on different workers (linked in), hold-music playlists sent by file name, and
what happens to rooms and monitors when legs are released or a worker dies.

Raw RTP peers on 127.0.0.1; who hears whom is told by FFT levels, never by timing.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from media.endpoint import MediaError
from media.engine import EngineSettings
from media.moh import HoldMusic
from media.pool import MediaWorkerPool, WorkerEndpoint
from media.wav import write_wav
from tests.integration.mixing import Streamer, heard, hears
from tests.integration.mohkit import INTRO, MESSAGE, SONG, TALK_A, TALK_B, hold
from tests.integration.mohkit import heard as tones_heard
from tests.integration.rtpkit import Peer, new_peer, run, tone

pytestmark = pytest.mark.integration

X, Y, Z = 500.0, 700.0, 900.0


@pytest.fixture
async def pool() -> AsyncIterator[MediaWorkerPool]:
    base = random.randrange(30000, 60000, 2)
    async with MediaWorkerPool(EngineSettings(port_min=base, port_max=base + 199), 2) as p:
        yield p


@pytest.fixture
async def streamer() -> AsyncIterator[Streamer]:
    async with Streamer(max_seconds=30) as s:
        yield s


def phone(
    pool: MediaWorkerPool, peers: list[Peer], near: WorkerEndpoint | None = None
) -> tuple[Peer, WorkerEndpoint]:
    peer = new_peer(peers)
    ep = pool.allocate(peer.sdp(), near=near)
    peer.connect(ep)  # type: ignore[arg-type]
    return peer, ep


async def test_room_mixes_legs_of_both_workers_and_leaving_unlinks(
    pool: MediaWorkerPool, peers: list[Peer], streamer: Streamer
) -> None:
    (a, ea), (b, eb), (c, ec) = (phone(pool, peers) for _ in range(3))
    assert ea.worker is not eb.worker  # the least loaded worker takes each new leg
    room = pool.mix_room(near=ea)
    for ep in (ea, eb, ec):
        room.join(ep)
    assert all(room.has(ep) for ep in (ea, eb, ec))
    for p, f in ((a, X), (b, Y), (c, Z)):
        streamer.set(p, tone(f, 2))
    await streamer.settle(1.0)
    assert hears(heard(a, (X, Y, Z)), Y, Z)
    assert hears(heard(b, (X, Y, Z)), X, Z)  # linked in from the other worker
    assert hears(heard(c, (X, Y, Z)), X, Y)
    assert room.talking(eb)  # as the room's worker reported it
    room.set(eb, talk=False)
    await streamer.settle(1.0)
    assert hears(heard(a, (X, Y, Z)), Z)
    with pytest.raises(MediaError, match="gain"):
        room.set(eb, gain=9.0)
    linked = pool.stats().endpoints
    room.leave(eb)  # the link's two internal legs go with it
    assert not room.has(eb) and pool.stats().endpoints == linked - 2
    pool.release(ec)  # a released leg leaves its room by itself
    assert not room.has(ec)
    await streamer.settle(1.0)
    assert hears(heard(a, (X, Y, Z)))  # nobody left to hear
    room.close()
    room.leave(ea)  # no-op once out
    assert room.closed
    with pytest.raises(MediaError, match="closed"):
        room.join(eb)
    await pool.refresh()
    assert pool.stats().endpoints == 2  # a and b, nothing left of the links


async def test_monitor_links_the_supervisor_and_ends_when_the_call_does(
    pool: MediaWorkerPool, peers: list[Peer], streamer: Streamer
) -> None:
    (caller, e_caller) = phone(pool, peers)
    (agent, e_agent) = phone(pool, peers, near=e_caller)
    (sup, e_sup) = phone(pool, peers)
    assert e_sup.worker is not e_caller.worker
    pool.bridge(e_caller, e_agent)
    for p, f in ((caller, X), (agent, Y), (sup, Z)):
        streamer.set(p, tone(f, 2))
    monitor = pool.monitor(e_caller, e_agent, e_sup, "whisper")
    await streamer.settle(1.0)
    assert hears(heard(sup, (X, Y, Z)), X, Y)
    assert hears(heard(agent, (X, Y, Z)), X, Z)
    assert hears(heard(caller, (X, Y, Z)), Y)
    with pytest.raises(MediaError, match="unknown monitor mode"):
        monitor.set_mode("shout")
    with pytest.raises(MediaError, match="already in a mixing session"):
        pool.mix_room().join(e_sup)
    pool.release(e_agent)  # the monitored call ends
    await asyncio.wait_for(monitor.ended.wait(), 5)
    assert monitor.closed
    await pool.refresh()
    assert pool.stats().endpoints == 2  # the supervisor's link is gone


async def test_worker_death_closes_its_room_and_unlinks_the_others(
    pool: MediaWorkerPool, peers: list[Peer]
) -> None:
    (_, ea), (_, eb) = phone(pool, peers), phone(pool, peers)
    room = pool.mix_room(near=ea)
    room.join(ea)
    room.join(eb)
    await pool.refresh()
    os.kill(ea.worker.pid, signal.SIGKILL)
    for _ in range(250):
        if room.closed:
            break
        await asyncio.sleep(0.02)
    assert room.closed and not room.has(eb)
    pool.play(eb, tone(X, 0.2))  # b's own worker still serves it


async def test_playlist_sent_by_file_name_plays_in_the_worker(
    pool: MediaWorkerPool, peers: list[Peer], tmp_path: Path
) -> None:
    write_wav(tmp_path / "intro.wav", tone(INTRO, 0.6))
    write_wav(tmp_path / "song.wav", tone(SONG, 1.0))
    write_wav(tmp_path / "message.wav", tone(MESSAGE, 0.5))
    music = HoldMusic.load(
        [tmp_path / "song.wav"],
        intro=tmp_path / "intro.wav",
        messages=[tmp_path / "message.wav"],
        message_interval=15,
    )
    assert music.files is not None  # travels as file names, not samples
    a, b = new_peer(peers), new_peer(peers)
    ea = pool.allocate(a.sdp())
    a.connect(ea)  # type: ignore[arg-type]
    eb = pool.allocate(None, near=ea)
    eb.set_remote(b.sdp())
    b.connect(eb)  # type: ignore[arg-type]
    pool.bridge(ea, eb)
    pool.set_hold_music(music, ea)
    await pool.refresh()
    await asyncio.sleep(0.3)  # the worker loads the files in a thread
    await hold(a, b, eb)  # type: ignore[arg-type]
    await pool.refresh()
    await run([(a, tone(TALK_A, 1)), (b, tone(TALK_B, 1))], 80)
    assert tones_heard(a.audio()) == [INTRO, SONG]


async def test_playlist_played_as_a_prompt_in_the_worker(
    pool: MediaWorkerPool, peers: list[Peer], tmp_path: Path
) -> None:
    write_wav(tmp_path / "intro.wav", tone(INTRO, 0.6))
    write_wav(tmp_path / "song.wav", tone(SONG, 1.0))
    music = HoldMusic.load([tmp_path / "song.wav"], intro=tmp_path / "intro.wav")
    a, b = new_peer(peers), new_peer(peers)
    ea = pool.allocate(a.sdp())
    a.connect(ea)  # type: ignore[arg-type]
    eb = pool.allocate(b.sdp(), near=ea)
    b.connect(eb)  # type: ignore[arg-type]
    first = pool.play(eb, music)  # loading in the worker's thread when replaced
    playback = pool.play(ea, music, barge_in=True)
    pool.stop(eb)
    assert await asyncio.wait_for(first.wait(), 5) == "stopped"
    await pool.refresh()
    await run([(a, None)], 80)  # everything since the play: the intro from its start
    assert tones_heard(a.audio()) == [INTRO, SONG]
    assert not playback.done()
    pool.stop(ea)
    assert await asyncio.wait_for(playback.wait(), 5) == "stopped"
