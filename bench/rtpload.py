"""The RTP load generators' common loop: many phones on one UDP socket, each sending one
packet per 20 ms frame (send slots spread over the frame), and whatever arrives handed to
the caller as it is read.

Arrival times are the kernel's (``SO_TIMESTAMPNS``, on Linux): when the datagram reached the
phone's socket, not when this process got round to reading it. A generator busy sending
its next burst would otherwise add its own delay to the jitter it measures.
"""

from __future__ import annotations

import selectors
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence

__all__ = ["FRAME_S", "StealMeter", "open_phone_socket", "run_phones"]

FRAME_S = 0.020
_READS = 4096  # datagrams read per wake-up at most
_SO_TIMESTAMPNS = 35  # Linux (SCM_TIMESTAMPNS too); the socket module does not name it
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)


def open_phone_socket() -> socket.socket:
    """A non-blocking UDP socket on 127.0.0.1 with room for bursts both ways."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 23)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 23)
    if sys.platform == "linux":
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    return sock


def _kernel_arrival(ancillary: list[tuple[int, int, bytes]], offset: float) -> float | None:
    """The kernel's receive time of a datagram on the monotonic clock, if it gave one."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return seconds + nanoseconds * 1e-9 - offset
    return None


def wall_minus_monotonic(samples: int = 5) -> float:
    """The wall clock less the monotonic clock, to convert the kernel's arrival stamps (wall
    clock) to the monotonic one: the wall reading bracketed by two monotonic ones, the
    tightest bracket of a few kept, so that being descheduled between two readings on a
    loaded machine does not shift every arrival by the time it lost."""
    best = (float("inf"), 0.0)
    for _ in range(samples):
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        best = min(best, (after - before, wall - (before + after) / 2))
    return best[1]


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
    ``stop_at``, pass every datagram read (with its arrival time on the monotonic clock)
    to ``received`` until ``drain_until``; the number of packets sent."""
    offset = wall_minus_monotonic()
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
                data, ancillary, _, _ = sock.recvmsg(2048, _ANCILLARY)
            except (BlockingIOError, ConnectionRefusedError):
                break
            arrival = _kernel_arrival(ancillary, offset)
            received(data, time.monotonic() if arrival is None else arrival)
    sel.close()
    return sent


class StealMeter:
    """The share of CPU time the hypervisor gave to others (``steal`` in /proc/stat) between
    :meth:`start` and :meth:`stop`: on a virtual machine, stolen time stalls the engine for
    milliseconds at a time whatever its own load, so a step's figures need it beside them.
    """

    def __init__(self) -> None:
        self._start: list[int] | None = None

    @staticmethod
    def _read() -> list[int] | None:
        try:
            with open("/proc/stat") as handle:
                fields = handle.readline().split()
        except OSError:
            return None
        return [int(x) for x in fields[1:9]] if fields and fields[0] == "cpu" else None

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> float | None:
        """Stolen share of all CPU time since :meth:`start` (0-1), or None off Linux."""
        end = self._read()
        if self._start is None or end is None:
            return None
        delta = [b - a for a, b in zip(self._start, end, strict=True)]
        total = sum(delta)
        return delta[7] / total if total > 0 else 0.0
