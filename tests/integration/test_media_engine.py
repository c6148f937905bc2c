"""The media engine over real UDP on 127.0.0.1, with plain-socket RTP peers.

Every peer is a non-blocking socket in the test; audio is judged by the FFT of what
arrives, never by timing.  Each exchange is a bounded number of 20 ms frames.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from media.dtmf import Digit, event_packets
from media.endpoint import MediaError
from media.engine import EngineSettings, MediaEngine
from media.rtcp import (
    ReceiverReport,
    ReportBlock,
    SenderReport,
    build_compound,
    compact_ntp,
    parse_rtcp,
)
from media.sdp import NegotiationError, SdpError
from media.wav import write_wav
from tests.integration.rtpkit import (
    FRAME,
    HDR,
    Peer,
    b_leg,
    dominant,
    dtmf_tone,
    leg,
    new_peer,
    run,
    tone,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[MediaEngine]:
    base = random.randrange(30000, 60000, 2)
    eng = MediaEngine(EngineSettings(port_min=base, port_max=base + 999))
    await eng.start()
    yield eng
    await eng.close()


async def test_bridge_relays_both_directions(engine: MediaEngine, peers: list[Peer]) -> None:
    a, b = new_peer(peers), new_peer(peers)
    ea, eb = leg(engine, a), b_leg(engine, b)
    engine.bridge(ea, eb)
    await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
    assert engine.stats().relayed_directions == 2
    assert abs(dominant(b.audio()) - 440) < 10
    assert abs(dominant(a.audio()) - 1000) < 10
    # each leg sees one stream: our SSRC, consecutive sequence numbers
    for peer, ep in ((a, ea), (b, eb)):
        heads = [HDR.unpack_from(d) for d in peer.received]
        assert {h[4] for h in heads} == {ep.out_ssrc}
        seqs = [h[2] for h in heads]
        assert all((y - x) & 0xFFFF == 1 for x, y in itertools.pairwise(seqs))


@pytest.mark.parametrize(
    ("on_arrival", "poll_interval"), [(False, 0.0), (False, 0.005), (True, 0.0)]
)
async def test_bridge_in_every_read_mode(
    peers: list[Peer], on_arrival: bool, poll_interval: float
) -> None:
    base = random.randrange(30000, 60000, 2)
    settings = EngineSettings(
        port_min=base, port_max=base + 99, read_on_arrival=on_arrival, poll_interval=poll_interval
    )
    async with MediaEngine(settings) as engine:
        a, b = new_peer(peers), new_peer(peers)
        ea, eb = leg(engine, a), b_leg(engine, b)
        engine.bridge(ea, eb)
        await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
        assert abs(dominant(b.audio()) - 440) < 10
        assert abs(dominant(a.audio()) - 1000) < 10
        assert ea.stats().packets_received == 50


async def test_transcoding_pcmu_to_pcma(engine: MediaEngine, peers: list[Peer]) -> None:
    a, b = new_peer(peers, pts=(0,)), new_peer(peers, pts=(8,))
    ea, eb = leg(engine, a), leg(engine, b)
    engine.bridge(ea, eb)
    await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
    assert engine.stats().relayed_directions == 0
    assert {d[1] & 0x7F for d in b.received} == {8}
    assert {d[1] & 0x7F for d in a.received} == {0}
    assert abs(dominant(b.audio(8)) - 440) < 10
    assert abs(dominant(a.audio(0)) - 1000) < 10


@pytest.mark.parametrize("wrong_host", ["192.0.2.10", "127.0.0.1"])
async def test_latching_when_sdp_address_is_wrong(
    engine: MediaEngine, peers: list[Peer], wrong_host: str
) -> None:
    a, b = new_peer(peers), new_peer(peers)
    ea = engine.allocate(a.sdp(host=wrong_host, port=9))  # discard port, never answered
    a.connect(ea)
    eb = leg(engine, b)
    engine.bridge(ea, eb)
    await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
    assert ea.latched == ("127.0.0.1", a.port)
    assert abs(dominant(a.audio()) - 1000) < 10
    assert abs(dominant(b.audio()) - 440) < 10


async def test_play_wav_and_completion(
    engine: MediaEngine, peers: list[Peer], tmp_path: Path
) -> None:
    a = new_peer(peers)
    ea = leg(engine, a)
    path = tmp_path / "prompt.wav"
    write_wav(path, tone(600, 0.6))
    playback = engine.play(ea, path)
    await run([], 0, listeners=(a,))
    for _ in range(50):
        if playback.done():
            break
        await asyncio.sleep(0.02)
    assert await playback.wait() == "finished"
    a.drain()
    audio = a.audio()
    assert len(audio) >= len(tone(600, 0.6))
    assert abs(dominant(audio) - 600) < 10


async def test_play_resampled_wav_in_pcma(
    engine: MediaEngine, peers: list[Peer], tmp_path: Path
) -> None:
    a = new_peer(peers, pts=(8,))
    ea = leg(engine, a)
    path = tmp_path / "prompt16k.wav"
    t = np.arange(16000 // 2) / 16000
    write_wav(path, (8000 * np.sin(2 * np.pi * 750 * t)).astype(np.int16), rate=16000)
    playback = engine.play(ea, path)
    await run([], 40, listeners=(a,))
    assert await playback.wait() == "finished"
    assert abs(dominant(a.audio(8)) - 750) < 10


async def test_bad_audio_sources_are_rejected(
    engine: MediaEngine, peers: list[Peer], tmp_path: Path
) -> None:
    ea = leg(engine, new_peer(peers))
    missing = tmp_path / "missing.wav"
    with pytest.raises(ValueError, match=r"missing\.wav"):
        engine.play(ea, missing)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not a wav file at all")
    with pytest.raises(ValueError, match=r"garbage\.wav"):
        engine.play(ea, garbage)
    with pytest.raises(ValueError, match="int16"):
        engine.play(ea, np.zeros(100, np.float32))


async def test_record_two_channels(engine: MediaEngine, peers: list[Peer], tmp_path: Path) -> None:
    a, b = new_peer(peers), new_peer(peers)
    ea, eb = leg(engine, a), leg(engine, b)
    engine.bridge(ea, eb)
    path = tmp_path / "call.wav"
    rec = engine.record(ea, eb, path)
    await run([(a, tone(440, 1)), (b, tone(1000, 1))], 60)
    engine.stop_recording(rec)
    await asyncio.wait_for(rec.wait_closed(), 5)  # the disk thread completes the WAV
    assert not ea.recorded and rec.frames > 0
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    assert abs(dominant(data[:, 0]) - 440) < 10
    assert abs(dominant(data[:, 1]) - 1000) < 10
    # the parties still hear each other while recorded (decoded path)
    assert abs(dominant(b.audio()) - 440) < 10
    assert abs(dominant(a.audio()) - 1000) < 10


async def test_rfc4733_digits_in_order(engine: MediaEngine, peers: list[Peer]) -> None:
    a, b = new_peer(peers), new_peer(peers)
    got: list[Digit] = []
    ea = leg(engine, a, on_dtmf=lambda ep, d: got.append(d))
    eb = leg(engine, b)
    engine.bridge(ea, eb)
    for key in "12#":
        ts = a.ts
        for payload, marker in event_packets(key, 100):
            a.send_packet(101, payload, marker=marker, ts=ts)
            await asyncio.sleep(0.02)
        a.ts = (a.ts + 1600) & 0xFFFFFFFF
    await run([], 0, listeners=(a, b))
    assert [d.digit for d in got] == ["1", "2", "#"]
    assert {d.source for d in got} == {"rfc4733"}
    assert [ea.digits.get_nowait().digit for _ in range(3)] == ["1", "2", "#"]
    # relayed to the peer as telephone-events as well
    assert {d[1] & 0x7F for d in b.received} == {101}


async def test_inband_digits_in_order(engine: MediaEngine, peers: list[Peer]) -> None:
    a = new_peer(peers, telephone_event=None)
    got: list[str] = []
    ea = leg(engine, a, on_dtmf=lambda ep, d: got.append(d.digit + d.source))
    audio = np.concatenate(
        [np.concatenate([dtmf_tone(k, 0.1), np.zeros(800, np.int16)]) for k in "47*0"]
    )
    await run([(a, audio)], len(audio) // FRAME)
    assert ea.inband
    assert got == ["4inband", "7inband", "*inband", "0inband"]


async def test_barge_in_stops_prompt(engine: MediaEngine, peers: list[Peer]) -> None:
    a = new_peer(peers)
    ea = leg(engine, a)
    playback = engine.play(ea, tone(500, 1), loop=True, barge_in=True)
    for payload, marker in event_packets("5", 60):
        a.send_packet(101, payload, marker=marker, ts=a.ts)
        await asyncio.sleep(0.02)
    for _ in range(50):
        if playback.done():
            break
        await asyncio.sleep(0.02)
    assert await playback.wait() == "barge-in"
    again = engine.play(ea, tone(500, 1))
    engine.stop(ea)
    assert await again.wait() == "stopped"


async def test_statistics_count_loss(engine: MediaEngine, peers: list[Peer]) -> None:
    a, b = new_peer(peers), new_peer(peers)
    ea, eb = leg(engine, a), leg(engine, b)
    engine.bridge(ea, eb)
    await run([(a, tone(440, 1))], 50, listeners=(b,), drop={10, 11, 20, 30, 40})
    stats = ea.stats()
    assert stats.packets_received == 45
    assert stats.packets_lost == 5
    assert stats.loss_ratio == pytest.approx(5 / 50)
    assert stats.codec == "PCMU"
    assert 1.0 <= stats.mos < eb.stats().mos  # b sent nothing, lost nothing
    assert len(b.received) == 45
    assert eb.stats().packets_sent == 45
    final = engine.release(ea)
    assert final.packets_lost == 5
    with pytest.raises(MediaError):
        engine.release(ea)


async def test_hold_plays_music_and_resume_restores(peers: list[Peer], tmp_path: Path) -> None:
    moh = tmp_path / "moh.wav"
    write_wav(moh, tone(300, 2))
    base = random.randrange(30000, 60000, 2)
    async with MediaEngine(
        EngineSettings(port_min=base, port_max=base + 99, hold_music=str(moh))
    ) as engine:
        a, b = new_peer(peers), new_peer(peers)
        ea, eb = leg(engine, a), leg(engine, b)
        engine.bridge(ea, eb)
        await run([(a, tone(440, 1)), (b, tone(1000, 1))], 25)
        assert abs(dominant(a.audio()) - 1000) < 10
        # B puts A on hold: re-INVITE sendonly
        answer = eb.answer(b.sdp(direction="sendonly"))
        assert b"a=recvonly" in answer
        b.drain()  # what was in flight before the re-INVITE
        a.received.clear()
        b.received.clear()
        await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
        assert abs(dominant(a.audio()[1600:]) - 300) < 10
        assert len(b.received) == 0  # the holder asked not to receive
        # a per-endpoint playlist item replaces the engine default
        engine.set_hold_music(tone(620, 1), ea)
        a.received.clear()
        await run([(a, tone(440, 1)), (b, tone(1000, 1))], 40)
        assert abs(dominant(a.audio()[1600:]) - 620) < 10
        eb.answer(b.sdp(direction="sendrecv"))
        a.received.clear()
        await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
        assert abs(dominant(a.audio()[1600:]) - 1000) < 10
        assert abs(dominant(b.audio()) - 440) < 10


async def test_bad_input_is_rejected_cleanly(engine: MediaEngine, peers: list[Peer]) -> None:
    with pytest.raises(SdpError):
        engine.allocate(b"this is not sdp")
    with pytest.raises(NegotiationError):
        engine.allocate(
            Peer.sdp(new_peer(peers, pts=(8,)), port=4000).replace(b"RTP/AVP 8", b"RTP/AVP 18")
        )
    assert engine.stats().endpoints == 0
    a, b = new_peer(peers), new_peer(peers)
    ea, eb = leg(engine, a), leg(engine, b)
    with pytest.raises(MediaError):
        eb.set_remote(b.sdp())  # no offer pending
    engine.bridge(ea, eb)
    for junk in (b"", b"\x00" * 5, b"\x80" * 11, b"\xff" * 200, HDR.pack(0x80, 96, 1, 2, 3) + b"x"):
        a.sock.sendto(junk, a.target)  # type: ignore[arg-type]
    await run([(a, tone(440, 1))], 40, listeners=(b,))
    assert ea.stats().invalid_packets >= 4
    assert abs(dominant(b.audio()) - 440) < 10
    assert engine.stats().tick_errors == 0


async def test_port_range_exhaustion(peers: list[Peer]) -> None:
    base = random.randrange(30000, 60000, 2)
    async with MediaEngine(EngineSettings(port_min=base, port_max=base + 5)) as engine:
        allocated = []
        with pytest.raises(MediaError, match="no free RTP"):
            for _ in range(10):
                allocated.append(engine.allocate(None))
        assert len(allocated) <= 3
        ports = {ep.port for ep in allocated}
        assert all(p % 2 == 0 and base <= p <= base + 4 for p in ports)
        for ep in allocated:
            engine.release(ep)
        assert engine.allocate(None).port in range(base, base + 5)


async def test_rtcp_reports_and_round_trip(engine: MediaEngine, peers: list[Peer]) -> None:
    a, b = new_peer(peers), new_peer(peers)
    ea, eb = leg(engine, a), leg(engine, b)
    engine.bridge(ea, eb)
    rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtcp.bind(("127.0.0.1", 0))
    rtcp.setblocking(False)
    try:
        assert a.target is not None
        engine_rtcp = (a.target[0], a.target[1] + 1)
        # our first report tells the engine where our RTCP lives (symmetric RTCP)
        rtcp.sendto(build_compound([ReceiverReport(a.ssrc)]), engine_rtcp)
        await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
        reports: list[SenderReport] = []
        for _ in range(200):  # the first report comes 0.5-1.5 s after allocation
            try:
                data = rtcp.recv(2048)
            except BlockingIOError:
                if reports:
                    break
                await asyncio.sleep(0.02)
                continue
            reports += [p for p in parse_rtcp(data) if isinstance(p, SenderReport)]
        assert reports and reports[0].ssrc == ea.out_ssrc
        sr = reports[-1]
        assert sr.packet_count > 0
        block = ReportBlock(ea.out_ssrc, 0, 0, 0, 0, compact_ntp(sr.ntp_timestamp), 0)
        rtcp.sendto(build_compound([ReceiverReport(a.ssrc, (block,))]), engine_rtcp)
        for _ in range(50):
            await asyncio.sleep(0.02)
            if ea.stats().rtt_ms is not None:
                break
        rtt = ea.stats().rtt_ms
        assert rtt is not None and rtt >= 0
    finally:
        rtcp.close()


async def test_a_drain_between_ticks_stops_at_its_deadline(
    engine: MediaEngine, peers: list[Peer]
) -> None:
    """A burst is not read in one go between ticks: a drain whose deadline has passed
    stops after a slice of reads and leaves the rest queued for the tick."""
    legs = [leg(engine, new_peer(peers)) for _ in range(100)]
    for peer in peers:
        peer.send_frame(tone(440, 0.02))
    time.sleep(0.05)  # no await: neither tick nor poll runs meanwhile; all have arrived

    def received() -> int:
        return sum(ep.stats().packets_received for ep in legs)

    engine._drain(time.monotonic(), time.monotonic() - 1.0)  # deadline already passed
    sliced = received()
    assert 0 < sliced < 100
    engine._drain(time.monotonic())  # the tick's drain: no deadline
    assert received() == 100
