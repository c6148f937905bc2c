"""Micro-benchmark of the relay path: one RTP packet through ``MediaEngine._on_rtp``.

Run: ``.venv/bin/python -m bench.relay_bench [--calls 50] [--packets 20] [--repeat 7]
[--real-send]``.

In one process, without the clock: ``calls`` bridged pairs of endpoints whose peers are
plain sockets on 127.0.0.1; each round hands every leg one in-order 172-byte PCMU packet
(what ``_read`` would after recvfrom) and empties the peers' sockets.  Reports the best of
``repeat`` runs in microseconds of CPU (thread time, so other load on the machine does not
count) per relayed packet.  The legs' sendto is a no-op builtin
unless ``--real-send``: the syscall costs the same before and after any change and its
noise on a shared machine would hide the per-packet Python work measured here.
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import socket
import struct
import time
import types

from bench.media_bench import _offer
from media.endpoint import Endpoint
from media.engine import EngineSettings, MediaEngine

_HDR = struct.Struct("!BBHII")


def _run(
    engine: MediaEngine,
    legs: list[tuple[Endpoint, tuple[str, int]]],
    rounds: int,
    peers: list[socket.socket],
    seq0: int,
) -> float:
    payload = b"\xff" * 160
    on_rtp = engine._on_rtp
    elapsed = 0.0
    for r in range(rounds):
        seq = (seq0 + r) & 0xFFFF
        packet = _HDR.pack(0x80, 0, seq, (seq * 160) & 0xFFFFFFFF, 0x1234) + payload
        now = time.monotonic()
        start = time.thread_time()
        for ep, addr in legs:
            on_rtp(ep, packet, addr, now)
        elapsed += time.thread_time() - start
        for s in peers:
            try:
                while True:
                    s.recv(2048)
            except BlockingIOError:
                pass
    return elapsed


async def _main(calls: int, packets: int, repeat: int, real_send: bool) -> None:
    engine = MediaEngine(EngineSettings(port_min=41000, port_max=45999))
    peers: list[socket.socket] = []
    legs: list[tuple[Endpoint, tuple[str, int]]] = []
    for _ in range(calls):
        pair = []
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            peers.append(s)
            addr = s.getsockname()
            pair.append((engine.allocate(_offer(addr[1], True)), addr))
        engine.bridge(pair[0][0], pair[1][0])
        if not real_send:
            for ep, _ in pair:
                stub = types.SimpleNamespace(
                    sendto=operator.is_, fileno=ep.rtp_socket.fileno, close=ep.rtp_socket.close
                )
                ep.rtp_socket = stub  # type: ignore[assignment]
        legs += pair
    engine._plan()
    _run(engine, legs, 50, peers, 0)  # anchors the rewriters, warms caches
    best = min(_run(engine, legs, packets, peers, 50 + i * packets) for i in range(repeat))
    print(
        f"{best / (packets * len(legs)) * 1e6:.3f} us per relayed packet "
        f"({len(legs)} legs, {packets} packets each, best of {repeat})"
    )
    await engine.close()
    for s in peers:
        s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--packets", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--real-send", action="store_true", help="send on the real sockets")
    args = parser.parse_args()
    asyncio.run(_main(args.calls, args.packets, args.repeat, args.real_send))


if __name__ == "__main__":
    main()
