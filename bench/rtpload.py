"""The RTP load generators' common loop: many phones on one UDP socket, each sending one
packet per 20 ms frame (send slots spread over the frame), and whatever arrives handed to
the caller as it is read."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable, Sequence

__all__ = ["FRAME_S", "open_phone_socket", "run_phones"]

FRAME_S = 0.020
_READS = 4096  # datagrams read per wake-up at most


def open_phone_socket() -> socket.socket:
    """A non-blocking UDP socket on 127.0.0.1 with room for bursts both ways."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 23)
    return sock


def run_phones(
    sock: socket.socket,
    targets: Sequence[tuple[str, int]],
    packet: Callable[[int, int], bytes],
    received: Callable[[bytes, float], None],
    *,
    start_at: float,
    stop_at: float,
    drain_until: float,
) -> int:
    """Send ``packet(phone, sequence)`` to each target once a frame from ``start_at`` to
    ``stop_at``, pass every datagram read (with its arrival time) to ``received`` until
    ``drain_until``; the number of packets sent."""
    phones = len(targets)
    phase = [k * FRAME_S / phones for k in range(phones)]
    seq = [0] * phones
    sent = 0
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    k = 0  # next phone to send in this round
    round_start = start_at
    while (now := time.monotonic()) < drain_until:
        if now < stop_at:
            while k < phones and round_start + phase[k] <= now:
                try:
                    sock.sendto(packet(k, seq[k]), targets[k])
                    sent += 1
                except OSError:
                    pass
                seq[k] += 1
                k += 1
            if k >= phones:
                k = 0
                round_start += FRAME_S
            wait = max(0.0, min(round_start + phase[k] - time.monotonic(), 0.002))
        else:
            wait = 0.01
        if not sel.select(wait):
            continue
        for _ in range(_READS):
            try:
                data = sock.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                break
            received(data, time.monotonic())
    sel.close()
    return sent
