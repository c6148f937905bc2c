"""CPU per SRTP leg in the media engine against plain RTP: calls bridged in one engine,
RTP fed through its receive path (``MediaEngine._on_rtp``: unprotect, latch, jitter and
quality accounting, relay, protect, ``sendto``) in one process, both directions of every
call, packets pre-built (and pre-protected) so the phones' side costs nothing.

    python -m bench.security_srtp_bench [--packets 50000]

Prints microseconds of CPU per relayed packet and the calls one core relays (20 ms PCMU,
two directions: 100 packets a second per call) for plain RTP, SRTP on one leg (a TLS
phone calling a plain carrier) and SRTP on both legs; figures for the operator, never
asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import time

from media.engine import EngineSettings, MediaEngine
from media.srtp import SUITES, SrtpKeys, SrtpLeg, new_master_key

SUITE = SUITES[0]
PAYLOAD = bytes(160)


def _offer(port: int) -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        # telephone-event: no in-band DTMF detection, so the bridge relays without decoding
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    ).encode()


def _packets(count: int, ssrc: int, phone: SrtpLeg | None) -> list[bytes]:
    out = []
    for n in range(count):
        packet = struct.pack("!BBHII", 0x80, 0, n & 0xFFFF, n * 160 & 0xFFFFFFFF, ssrc) + PAYLOAD
        out.append(phone.protect(packet) if phone is not None else packet)
    return out


def _keys() -> tuple[SrtpKeys, SrtpLeg]:
    """The switch leg's keys and the phone's SRTP (the mirror image)."""
    ours, theirs = new_master_key(SUITE), new_master_key(SUITE)
    phone = SrtpLeg(SrtpKeys(SUITE.name, local_key=theirs, remote_key=ours))
    return SrtpKeys(SUITE.name, local_key=ours, remote_key=theirs), phone


def measure(engine: MediaEngine, packets: int, secure: tuple[bool, bool]) -> float:
    """CPU microseconds per relayed packet of one call whose legs are SRTP as ``secure``."""
    sinks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for sink in sinks:
        sink.bind(("127.0.0.1", 0))  # where the phones are: packets land, nobody reads
    ports = [sink.getsockname()[1] for sink in sinks]
    legs = [engine.allocate(_offer(port)) for port in ports]
    engine.bridge(legs[0], legs[1])
    streams = []
    for index, leg in enumerate(legs):
        phone = None
        if secure[index]:
            keys, phone = _keys()
            leg.apply_keys(keys)
        streams.append(_packets(packets // 2, 0x1000 + index, phone))
    endpoints = [engine._own(leg) for leg in legs]
    engine._plan()  # what the engine's next tick does after a bridge: relay, no decoding
    assert endpoints[0].relay_to is endpoints[1] and endpoints[1].relay_to is endpoints[0]
    sources = [("127.0.0.1", port) for port in ports]
    cpu = time.process_time()
    now = time.monotonic()
    for n in range(packets // 2):
        engine._on_rtp(endpoints[0], streams[0][n], sources[0], now)
        engine._on_rtp(endpoints[1], streams[1][n], sources[1], now)
        now += 0.01
    micros = (time.process_time() - cpu) / packets * 1e6
    for leg in legs:
        stats = engine.release(leg)
        # every packet authentic, and relayed to the other leg
        assert stats.packets_received == stats.packets_sent == packets // 2, stats
    for sink in sinks:
        sink.close()
    return micros


async def run(packets: int) -> None:
    engine = MediaEngine(EngineSettings(address="127.0.0.1", port_min=47000, port_max=47999))
    try:
        rows = [
            (label, measure(engine, packets, secure))
            for label, secure in (
                ("plain RTP, both legs", (False, False)),
                ("SRTP on one leg (TLS phone to a plain carrier)", (True, False)),
                ("SRTP on both legs", (True, True)),
            )
        ]
    finally:
        await engine.close()
    width = max(len(label) for label, _ in rows)
    print(f"{'call':<{width}}  {'CPU us/packet':>13}  {'calls/core':>10}")
    for label, micros in rows:
        print(f"{label:<{width}}  {micros:13.2f}  {1e6 / (micros * 100):10.0f}")
    plain = rows[0][1]
    print(f"one SRTP leg adds {rows[1][1] / plain - 1:.0%}, two add {rows[2][1] / plain - 1:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=50_000, help="packets per measurement")
    args = parser.parse_args()
    asyncio.run(run(args.packets))


if __name__ == "__main__":
    main()
