"""The RTP load generators' arrival times come from the kernel, not from when they read."""

from __future__ import annotations

import select
import sys
import time

import pytest

from bench.rtpload import StealMeter, open_phone_socket, run_phones


@pytest.mark.skipif(sys.platform != "linux", reason="SO_TIMESTAMPNS is Linux's")
def test_arrival_is_when_the_datagram_reached_the_socket() -> None:
    phone, peer = open_phone_socket(), open_phone_socket()
    try:
        sent_at = time.monotonic()
        peer.sendto(b"early", phone.getsockname())
        # the datagram is in the socket by ready_at; a loaded machine may take a while
        assert select.select([phone], [], [], 10.0)[0] == [phone]
        ready_at = time.monotonic()
        time.sleep(0.2)  # the generator is busy: the datagram waits in the socket
        arrivals: list[tuple[bytes, float]] = []
        now = time.monotonic()
        run_phones(
            phone,
            [],
            lambda k, n: b"",
            lambda data, at: arrivals.append((data, at)),
            start_at=now,
            stop_at=now,
            drain_until=now + 0.05,
        )
        assert [data for data, _ in arrivals] == [b"early"]
        # stamped when it reached the socket, not when it was read 200 ms later
        assert sent_at <= arrivals[0][1] <= ready_at
    finally:
        phone.close()
        peer.close()


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/stat is Linux's")
def test_steal_is_a_share_of_the_window() -> None:
    meter = StealMeter()
    assert meter.stop() is None  # never started
    meter.start()
    time.sleep(0.05)
    stolen = meter.stop()
    assert stolen is not None and 0.0 <= stolen <= 1.0
