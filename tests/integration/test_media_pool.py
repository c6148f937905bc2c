"""The media engine in two worker processes, over real UDP on 127.0.0.1.

The same plain-socket phones as tests/integration/test_media_engine.py talk to endpoints
that live in ``python -m media.worker`` processes; audio is judged by FFT, never by timing.
``await pool.refresh()`` is the barrier that says the workers have applied every command
sent so far (commands and the statistics request travel in order).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from media import pool as pool_module
from media.dtmf import Digit, event_packets
from media.endpoint import MediaError
from media.engine import EngineSettings, bind_rtp_pair
from media.pool import MediaWorkerPool, WorkerEndpoint
from media.sdp import SdpError
from media.wav import write_wav
from tests.integration.rtpkit import (
    FRAME,
    Peer,
    dominant,
    dtmf_tone,
    new_peer,
    run,
    tone,
)

pytestmark = pytest.mark.integration


def settings() -> EngineSettings:
    base = random.randrange(30000, 60000, 2)
    return EngineSettings(port_min=base, port_max=base + 199)


@pytest.fixture
async def pool() -> AsyncIterator[MediaWorkerPool]:
    async with MediaWorkerPool(settings(), workers=2) as p:
        yield p


def call(
    pool: MediaWorkerPool, a: Peer, b: Peer, **kw: object
) -> tuple[WorkerEndpoint, WorkerEndpoint]:
    """A anchored call: the caller's offer answered, an offer to the callee answered by it."""
    ea = pool.allocate(a.sdp(), **kw)  # type: ignore[arg-type]
    a.connect(ea)
    eb = pool.allocate(None, near=ea)
    eb.set_remote(b.sdp())
    b.connect(eb)
    pool.bridge(ea, eb)
    return ea, eb


async def test_calls_on_both_workers_bridge_both_ways(
    pool: MediaWorkerPool, peers: list[Peer]
) -> None:
    phones = [new_peer(peers) for _ in range(4)]
    legs = [call(pool, phones[0], phones[1]), call(pool, phones[2], phones[3])]
    assert legs[0][0].worker is legs[0][1].worker  # near=: one call, one worker
    assert legs[0][0].worker is not legs[1][0].worker  # the least loaded takes the next
    await pool.refresh()  # the workers have bound and bridged before the phones talk
    await run(
        [
            (phones[0], tone(440, 1)),
            (phones[1], tone(1000, 1)),
            (phones[2], tone(600, 1)),
            (phones[3], tone(1400, 1)),
        ],
        50,
    )
    for (caller, callee), (f_caller, f_callee) in (
        ((phones[0], phones[1]), (440, 1000)),
        ((phones[2], phones[3]), (600, 1400)),
    ):
        assert abs(dominant(callee.audio()) - f_caller) < 10
        assert abs(dominant(caller.audio()) - f_callee) < 10
    stats = await pool.refresh()
    assert stats.endpoints == 4 and stats.relayed_directions == 4 and stats.tick_errors == 0
    ea = legs[0][0]
    assert ea.stats().packets_received == 50  # the pushed snapshot
    pool.release(ea)
    final = await asyncio.wait_for(ea.final_stats(), 5)
    assert final.packets_received == 50 and final.packets_sent == 50
    assert final.codec == "PCMU" and final.remote == ("127.0.0.1", phones[0].port)
    with pytest.raises(MediaError, match="released"):
        ea.answer(phones[0].sdp())
    with pytest.raises(MediaError, match="not allocated"):
        pool.release(ea)


async def test_bridging_across_workers_is_refused(pool: MediaWorkerPool, peers: list[Peer]) -> None:
    ea = pool.allocate(new_peer(peers).sdp())
    eb = pool.allocate(new_peer(peers).sdp())
    assert ea.worker is not eb.worker
    with pytest.raises(MediaError, match=r"different media workers.*near="):
        pool.bridge(ea, eb)
    with pytest.raises(MediaError, match="different media workers"):
        pool.record(ea, eb, "/tmp/never.wav")


async def test_dtmf_events_and_barge_in(pool: MediaWorkerPool, peers: list[Peer]) -> None:
    a, b, c = new_peer(peers), new_peer(peers), new_peer(peers, telephone_event=None)
    got: list[tuple[int, Digit]] = []
    ea, _ = call(pool, a, b, on_dtmf=lambda ep, d: got.append((ep.id, d)))
    ec = pool.allocate(c.sdp(), on_dtmf=lambda ep, d: got.append((ep.id, d)))
    c.connect(ec)
    prompt = pool.play(ea, tone(500, 1), loop=True, barge_in=True)
    await pool.refresh()
    for key in "12#":
        ts = a.ts
        for payload, marker in event_packets(key, 100):
            a.send_packet(101, payload, marker=marker, ts=ts)
            await asyncio.sleep(0.02)
        a.ts = (a.ts + 1600) & 0xFFFFFFFF
    inband = np.concatenate(
        [np.concatenate([dtmf_tone(k, 0.1), np.zeros(800, np.int16)]) for k in "47"]
    )
    await run([(c, inband)], len(inband) // FRAME, listeners=(a, b))
    await pool.refresh()
    assert [(i, d.digit, d.source) for i, d in got] == [
        (ea.id, "1", "rfc4733"),
        (ea.id, "2", "rfc4733"),
        (ea.id, "#", "rfc4733"),
        (ec.id, "4", "inband"),
        (ec.id, "7", "inband"),
    ]
    assert [ea.digits.get_nowait().digit for _ in range(3)] == ["1", "2", "#"]
    assert await asyncio.wait_for(prompt.wait(), 5) == "barge-in"


async def test_prompt_completion_and_recording(
    pool: MediaWorkerPool, peers: list[Peer], tmp_path: Path
) -> None:
    a, b = new_peer(peers), new_peer(peers)
    ea, eb = call(pool, a, b)
    path = tmp_path / "call.wav"
    rec = pool.record(ea, eb, path)
    await pool.refresh()
    await run([(a, tone(440, 1)), (b, tone(1000, 1))], 60)
    pool.stop_recording(rec)
    frames = await asyncio.wait_for(rec.wait_closed(), 5)
    assert frames > 0 and not rec.active
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (2, 8000, frames * FRAME)
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert abs(dominant(data[:, 0]) - 440) < 10
    assert abs(dominant(data[:, 1]) - 1000) < 10
    # a WAV prompt to the caller: played by the worker, completion comes back
    prompt = tmp_path / "prompt.wav"
    write_wav(prompt, tone(750, 0.4))
    a.received.clear()
    playback = pool.play(ea, prompt)
    assert await asyncio.wait_for(playback.wait(), 5) == "finished"
    await run([], 0, listeners=(a,))
    assert abs(dominant(a.audio()) - 750) < 10


async def test_bad_input_fails_at_once(
    pool: MediaWorkerPool, peers: list[Peer], tmp_path: Path
) -> None:
    with pytest.raises(SdpError):
        pool.allocate(b"not sdp at all")
    assert pool.stats().endpoints == 0
    ea = pool.allocate(new_peer(peers).sdp())
    with pytest.raises(ValueError, match=r"missing\.wav"):
        pool.play(ea, tmp_path / "missing.wav")
    with pytest.raises(MediaError, match="no-such-dir"):
        pool.record(ea, None, tmp_path / "no-such-dir" / "x.wav")
    with pytest.raises(MediaError, match="itself"):
        pool.bridge(ea, ea)


async def test_port_slice_exhaustion_names_the_worker(peers: list[Peer]) -> None:
    base = random.randrange(30000, 60000, 2)
    async with MediaWorkerPool(EngineSettings(port_min=base, port_max=base + 7), workers=2) as pool:
        first = pool.allocate(None)
        pool.allocate(None, near=first)
        with pytest.raises(MediaError, match=r"no free RTP/RTCP port pair.*media worker"):
            pool.allocate(None, near=first)


async def test_killed_worker_fails_its_endpoints_clearly(peers: list[Peer]) -> None:
    lost: list[tuple[list[WorkerEndpoint], str]] = []
    async with MediaWorkerPool(
        settings(), workers=2, on_lost=lambda eps, why: lost.append((eps, why))
    ) as pool:
        a, b, c, d = (new_peer(peers) for _ in range(4))
        ea, eb = call(pool, a, b)
        ec, _ = call(pool, c, d)
        playback = pool.play(ea, tone(300, 5), loop=True)
        await pool.refresh()
        victim = ea.worker
        os.kill(victim.pid, signal.SIGKILL)
        for _ in range(250):
            if lost:
                break
            await asyncio.sleep(0.02)
        (eps, why) = lost[0]
        assert set(eps) == {ea, eb}
        assert f"media worker {victim.index} (pid {victim.pid}) is gone" in why
        with pytest.raises(MediaError, match=f"pid {victim.pid}"):
            ea.answer(a.sdp(direction="sendonly"))
        with pytest.raises(MediaError, match=f"pid {victim.pid}"):
            pool.bridge(ea, eb)
        assert await asyncio.wait_for(playback.wait(), 5) == "failed"
        pool.release(ea)  # hang-up clean-up never fails
        assert (await asyncio.wait_for(ea.final_stats(), 5)).codec == "PCMU"
        # the other worker carries on, and takes the new calls
        e, f = new_peer(peers), new_peer(peers)
        ee, _ = call(pool, e, f)
        assert ee.worker is ec.worker
        await pool.refresh()
        await run([(e, tone(440, 1)), (f, tone(1000, 1)), (c, tone(600, 1))], 40, listeners=(d,))
        assert abs(dominant(f.audio()) - 440) < 10
        assert abs(dominant(d.audio()) - 600) < 10
        # the dead worker is replaced and takes calls again
        for _ in range(500):
            if pool.pids[victim.index] != victim.pid:
                break
            await asyncio.sleep(0.02)
        await pool.refresh()
        g, h = new_peer(peers), new_peer(peers)
        eg, _ = call(pool, g, h)
        assert eg.worker.index == victim.index and eg.worker.pid != victim.pid
        await pool.refresh()
        await run([(g, tone(440, 1)), (h, tone(1000, 1))], 40)
        assert abs(dominant(h.audio()) - 440) < 10
        assert abs(dominant(g.audio()) - 1000) < 10
        pids = [victim.pid, *pool.pids]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


async def test_close_stops_the_worker_processes() -> None:
    pool = MediaWorkerPool(settings(), workers=2)
    await pool.start()
    pids = pool.pids
    assert len(set(pids)) == 2
    for pid in pids:
        os.kill(pid, 0)  # running
    ep = pool.allocate(None)
    await pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert (await asyncio.wait_for(ep.final_stats(), 1)).packets_received == 0
    with pytest.raises(MediaError, match="no media worker"):
        pool.allocate(None)


async def test_pair_taken_before_the_worker_binds(
    peers: list[Peer], monkeypatch: pytest.MonkeyPatch
) -> None:
    lost: list[tuple[list[WorkerEndpoint], str]] = []
    s = settings()
    async with MediaWorkerPool(
        s, workers=1, on_lost=lambda eps, why: lost.append((eps, why))
    ) as pool:
        squatter = bind_rtp_pair(s.address, s.port_min)  # another program, after the probe
        monkeypatch.setattr(pool_module, "bind_rtp_pair", lambda address, port: ())
        try:
            ep = pool.allocate(new_peer(peers).sdp())
            assert ep.port == s.port_min
            await pool.refresh()
        finally:
            for sock in squatter:
                sock.close()
        assert lost and lost[0][0] == [ep]
        assert f"cannot bind RTP/RTCP ports {s.port_min}/{s.port_min + 1}" in lost[0][1]
        with pytest.raises(MediaError, match="cannot bind"):
            pool.play(ep, tone(440, 1))
        pool.release(ep)
        assert (await asyncio.wait_for(ep.final_stats(), 5)).packets_received == 0
