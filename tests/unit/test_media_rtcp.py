"""RTCP packets, receiver statistics (RFC 3550 A.1/A.3/A.8) and RTT."""

from __future__ import annotations

import contextlib
import random

import pytest

from media.rtcp import (
    Bye,
    ReceiverReport,
    ReceiverStats,
    ReportBlock,
    RtcpError,
    SenderReport,
    SenderStats,
    SourceDescription,
    UnknownRtcp,
    build_compound,
    compact_ntp,
    ntp_timestamp,
    parse_rtcp,
    round_trip_time,
)

BLOCK = ReportBlock(0xCAFE, 25, -3, 70000, 80, 0x12345678, 65536)


@pytest.mark.parametrize(
    "packets",
    [
        [SenderReport(1, 0xE000000080000000, 160, 10, 1600)],
        [SenderReport(1, 5, 6, 7, 8, (BLOCK, BLOCK))],
        [ReceiverReport(2)],
        [ReceiverReport(2, (BLOCK,)), SourceDescription(((2, ((1, "sw@example.com"),)),))],
        [ReceiverReport(3), SourceDescription(((3, ((1, "a"), (2, "Alice"))), (4, ())))],
        [ReceiverReport(3), Bye((3, 4), "hang up")],
        [ReceiverReport(3), Bye((3,))],
        [ReceiverReport(3), UnknownRtcp(204, 1, b"\x00\x00\x00\x01NAME")],
    ],
)
def test_round_trip(packets: list) -> None:
    assert parse_rtcp(build_compound(packets)) == packets


def test_cumulative_lost_is_signed_24_bit() -> None:
    for lost in (-1, 0, 0x7FFFFF, -0x800000):
        b = ReportBlock(1, 0, lost, 0, 0)
        assert ReportBlock.unpack(b.pack(), 0).cumulative_lost == lost
    assert ReportBlock.unpack(ReportBlock(1, 0, 10**9, 0, 0).pack(), 0).cumulative_lost == 0x7FFFFF


GARBAGE = [
    b"",
    b"\x80\xc8",
    b"\x40\xc9\x00\x01\x00\x00\x00\x00",  # version 1
    b"\x81\xc9\x00\x01\x00\x00\x00\x01",  # RR claims a block, has none
    b"\x80\xc8\x00\x01\x00\x00\x00\x01",  # SR without sender info
    b"\x80\xc9\x00\x05\x00\x00\x00\x01",  # length beyond datagram
    b"\x81\xca\x00\x02\x00\x00\x00\x01\x01\x09abc",  # SDES item truncated
    b"\x81\xca\x00\x01\x00\x00\x00\x01",  # SDES not terminated
    b"\x82\xcb\x00\x01\x00\x00\x00\x01",  # BYE count 2, one SSRC
    b"\xa0\xc9\x00\x01\x00\x00\x00\x00",  # padding count 0
    b"\x80\xc9\x00\x01\x00\x00\x00\x01\x80",  # trailing byte
]


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage(data: bytes) -> None:
    with pytest.raises(RtcpError):
        parse_rtcp(data)


def test_random_garbage_only_raises_rtcp_error() -> None:
    rng = random.Random(9)
    seed = build_compound([SenderReport(1, 2, 3, 4, 5, (BLOCK,)), Bye((1,), "x")])
    for _ in range(5000):
        data = bytearray(seed)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        data = data[: rng.randrange(len(data) + 1)]
        with contextlib.suppress(RtcpError):
            parse_rtcp(bytes(data))


def feed(stats: ReceiverStats, seqs: list[int], start: float = 0.0) -> None:
    for i, seq in enumerate(seqs):
        stats.on_packet(seq % 65536, (seq * 160) % (1 << 32), start + i * 0.02)


@pytest.mark.parametrize(
    ("seqs", "expected", "received", "lost", "ext_max"),
    [
        (list(range(100, 150)), 49, 49, 0, 149),  # first packet is probation (A.1)
        ([s for s in range(100, 150) if s % 10 != 3], 49, 44, 5, 149),
        (list(range(65500, 65600)), 99, 99, 0, 65599),  # wraps: one cycle
        ([*range(10, 20), 19, 18, *range(20, 30)], 19, 21, -2, 29),  # duplicates count
        ([*range(10, 20), 17, *range(20, 25)], 14, 15, -1, 24),  # late reorder
    ],
)
def test_sequence_accounting(
    seqs: list[int], expected: int, received: int, lost: int, ext_max: int
) -> None:
    st = ReceiverStats(ssrc=1)
    feed(st, seqs)
    assert (st.expected, st.received, st.cumulative_lost, st.extended_max) == (
        expected,
        received,
        lost,
        ext_max,
    )


def test_restart_after_two_sequential_packets() -> None:
    st = ReceiverStats(ssrc=1, probation=0)
    feed(st, [*range(100, 110), 40000, 40001, 40002])
    assert st.received == 2 and st.base_seq == 40001 and st.expected == 2


def test_fraction_lost_per_interval() -> None:
    st = ReceiverStats(ssrc=7, probation=0)
    feed(st, [s for s in range(0, 100) if s % 4 != 1])  # 25 % loss
    block = st.report_block(now=2.0)
    assert block.fraction_lost == 64 and block.cumulative_lost == 25
    feed(st, list(range(100, 200)), start=2.0)
    block = st.report_block(now=4.0)
    assert block.fraction_lost == 0 and block.cumulative_lost == 25
    assert block.highest_sequence == 199
    assert st.loss_ratio == pytest.approx(25 / 200)


@pytest.mark.parametrize(
    ("deviation_ms", "expected_jitter_ms"),
    [(0.0, 0.0), (5.0, 10.0)],  # alternating +-5 ms: |D| = 10 ms every packet
)
def test_interarrival_jitter(deviation_ms: float, expected_jitter_ms: float) -> None:
    st = ReceiverStats(ssrc=1, probation=0)
    for i in range(500):
        offset = deviation_ms / 1000 * (1 if i % 2 else -1)
        st.on_packet(i, i * 160, 10.0 + i * 0.02 + offset)
    assert st.jitter_seconds * 1000 == pytest.approx(expected_jitter_ms, abs=0.2)
    assert abs(st.report_block(20.0).jitter - expected_jitter_ms * 8) <= 1


def test_jitter_survives_timestamp_wrap() -> None:
    st = ReceiverStats(ssrc=1, probation=0)
    base = (1 << 32) - 160 * 50
    for i in range(100):
        st.on_packet(i, (base + i * 160) % (1 << 32), 3.0 + i * 0.02)
    assert st.jitter < 1.0


def test_lsr_dlsr_and_round_trip() -> None:
    sender = SenderStats(ssrc=0xAAAA)
    for _ in range(10):
        sender.on_sent(160)
    sent_at = 1_700_000_000.25
    sr = sender.sender_report(sent_at, 12345)
    assert (sr.packet_count, sr.octet_count) == (10, 1600)
    wire = parse_rtcp(build_compound([sr]))[0]
    assert isinstance(wire, SenderReport)
    # the peer receives the SR 40 ms later (its own clock) and reports 100 ms after that
    peer = ReceiverStats(ssrc=0xAAAA)
    peer.on_sender_report(wire, arrival=500.0)
    block = peer.report_block(now=500.1)
    assert block.lsr == compact_ntp(ntp_timestamp(sent_at))
    assert block.dlsr == pytest.approx(0.1 * 65536, abs=1)
    rtt = round_trip_time(block, sent_at + 0.04 + 0.1 + 0.03)
    assert rtt == pytest.approx(0.07, abs=0.001)
    assert round_trip_time(ReportBlock(1, 0, 0, 0, 0), sent_at) is None
    assert round_trip_time(block, sent_at) is None  # negative: bogus


def test_ntp_conversion() -> None:
    assert ntp_timestamp(0.0) >> 32 == 2_208_988_800
    assert ntp_timestamp(0.5) & 0xFFFFFFFF == 1 << 31
