"""The call bench's pure parts: SIPp trace pairing, percentiles, SIPp durations."""

from __future__ import annotations

import math

import pytest

from bench.call_bench import added_delays_ms, invite_times, percentile, sipp_duration_s

SEP = "-" * 47


def block(stamp: str, header: str, message: str) -> str:
    return f"{SEP} 2026-11-25 {stamp}\n{header}\n\n{message}\n"


def invite(cseq: int, number: int) -> str:
    return (
        f"INVITE sip:200@127.0.0.1 SIP/2.0\nCSeq: {cseq} INVITE\n"
        f"Content-Length: 10\n\nv=0\no=bench {number} 1 IN IP4 127.0.0.1\n"
    )


UAC = "".join(
    [
        block("10:00:00.000000", "UDP message sent (300 bytes):", invite(1, 1)),
        block(
            "10:00:00.001000",
            "UDP message received [200] bytes :",
            "SIP/2.0 407 Proxy Authentication Required\nCSeq: 1 INVITE\n",
        ),
        block("10:00:00.002000", "UDP message sent (400 bytes):", invite(2, 1)),
        block("10:00:00.502000", "UDP message sent (400 bytes):", invite(2, 1)),  # retransmission
        block("10:00:00.010000", "UDP message sent (300 bytes):", invite(1, 2)),
        block("10:00:00.011000", "UDP message sent (300 bytes):", invite(1, 3)),  # never arrived
    ]
)
UAS = "".join(
    [
        block("10:00:00.003500", "UDP message received [500] bytes :", invite(1, 1)),
        block("10:00:00.003600", "UDP message sent (300 bytes):", "SIP/2.0 180 Ringing\n"),
        block("10:00:00.012000", "UDP message received [500] bytes :", invite(1, 2)),
        block("10:00:00.512000", "UDP message received [500] bytes :", invite(1, 2)),
    ]
)


def test_the_authorised_invite_pairs_with_the_one_the_uas_received() -> None:
    sent = invite_times(UAC, "sent")
    assert {n: seq for n, (seq, _) in sent.items()} == {1: 2, 2: 1, 3: 1}
    delays = added_delays_ms(UAC, UAS)
    assert delays == pytest.approx([1.5, 2.0])


def test_no_traces_no_delays() -> None:
    assert added_delays_ms("", "") == []
    assert added_delays_ms(UAC, "garbage without blocks") == []


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([1.0], 0.99, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(v) for v in range(1, 101)], 0.99, 99.0),
        ([float(v) for v in range(1, 101)], 1.0, 100.0),
        ([float(v) for v in range(1, 1001)], 0.99, 990.0),
    ],
)
def test_nearest_rank_percentile(values: list[float], fraction: float, expected: float) -> None:
    assert percentile(values, fraction) == expected


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 0.99))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:00:016000", 0.016),
        ("00:01:02:500000", 62.5),
        ("01:00:00:000000", 3600.0),
        ("", 0.0),
        ("garbage", 0.0),
        ("00:00:xx:000000", 0.0),
    ],
)
def test_sipp_duration(text: str, seconds: float) -> None:
    assert sipp_duration_s(text) == pytest.approx(seconds)
