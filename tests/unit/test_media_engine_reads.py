"""Which sockets the media engine reads between frame ticks, and which only on the tick;
the tick trace's account of what a tick read.

A relayed leg's packets are read by the polls between ticks (relayed at once); a decoded
leg's, wanted only on the tick, wait for the tick's drain and are read there in one batch.
Plain loopback sockets stand in for the phones; the engine's clock is not started, the
test calls the two drains itself.
"""

from __future__ import annotations

import csv
import random
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from media import ticktrace
from media.endpoint import Endpoint
from media.engine import EngineSettings, MediaEngine


def _offer(port: int) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"  # else in-band detection decodes the leg
    )


@pytest.fixture
def phones() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


def _phone(phones: list[socket.socket]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    phones.append(sock)
    return sock


def _leg(engine: MediaEngine, phones: list[socket.socket]) -> tuple[Endpoint, socket.socket]:
    phone = _phone(phones)
    return engine.allocate(_offer(phone.getsockname()[1])), phone


def _send(phone: socket.socket, ep: Endpoint, seq: int) -> None:
    header = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234)
    phone.sendto(header + b"\xff" * 160, ep.rtp_socket.getsockname())


def _received(ep: Endpoint) -> int:
    return ep.stats().packets_received


async def test_polls_between_ticks_read_relayed_legs_only(
    phones: list[socket.socket], tmp_path: Path
) -> None:
    base = random.randrange(30000, 60000, 2)
    engine = MediaEngine(EngineSettings(port_min=base, port_max=base + 99))
    try:
        (a, phone_a), (b, _) = _leg(engine, phones), _leg(engine, phones)
        engine.bridge(a, b)  # a -> b relayed
        recorded, phone_r = _leg(engine, phones)
        engine.record(recorded, None, tmp_path / "message.wav")  # decoded for the recording
        for seq in range(3):
            _send(phone_a, a, seq)
            _send(phone_r, recorded, seq)
        time.sleep(0.05)  # no await: nothing of the engine runs meanwhile; all have arrived

        engine._drain_relayed(time.monotonic(), time.monotonic() + 1.0)
        assert _received(a) == 3  # relayed as they came
        assert _received(recorded) == 0  # left queued for the tick

        engine._drain(time.monotonic())  # the tick's drain reads every socket
        assert _received(recorded) == 3

        engine.stop_recording(engine._recordings[0])
        engine.unbridge(a)
        _send(phone_a, a, 3)
        time.sleep(0.05)
        engine._drain_relayed(time.monotonic(), time.monotonic() + 1.0)
        assert _received(a) == 3  # no longer relayed: read on the tick only
    finally:
        await engine.close()


async def test_tick_trace_records_what_each_tick_read(
    phones: list[socket.socket], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ticktrace.ENV, str(tmp_path / "trace"))
    base = random.randrange(30000, 60000, 2)
    engine = MediaEngine(EngineSettings(port_min=base, port_max=base + 99))
    assert engine.trace is not None
    try:
        recorded, phone = _leg(engine, phones)
        engine.record(recorded, None, tmp_path / "message.wav")
        for seq in range(2):
            _send(phone, recorded, seq)
        time.sleep(0.05)
        engine._tick(time.monotonic())  # both datagrams, read on the tick
        engine._tick(time.monotonic())  # nothing left
    finally:
        await engine.close()
    [written] = (tmp_path / "trace").iterdir()
    rows = list(csv.DictReader(written.open()))
    assert [(r["tick"], r["reads"], r["decoders"], r["recordings"]) for r in rows] == [
        ("1", "2", "1", "1"),
        ("2", "0", "1", "1"),
    ]
