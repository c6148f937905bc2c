"""RTP header parse/build, garbage handling and the per-leg StreamRewriter."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest

from media.rtp import (
    RtpError,
    RtpExtension,
    RtpPacket,
    StreamRewriter,
    build_rtp,
    is_rtcp,
    parse_rtp,
    rewrite_header,
)

ROUND_TRIP = [
    RtpPacket(0, 0, 0, 0),
    RtpPacket(8, 65535, 0xFFFFFFFF, 0xDEADBEEF, b"\xd5" * 160, marker=True),
    RtpPacket(101, 12, 3, 4, b"\x01\x0a\x00\xa0", csrcs=(1, 2, 0xFFFFFFFF)),
    RtpPacket(96, 1, 2, 3, b"xyz", extension=RtpExtension(0xBEDE, b"\x10\xff\x00\x00")),
    RtpPacket(0, 1, 2, 3, b"abcd", padding=4),
    RtpPacket(0, 1, 2, 3, b"", padding=1, csrcs=tuple(range(15)), extension=RtpExtension(1, b"")),
]


@pytest.mark.parametrize("packet", ROUND_TRIP)
def test_round_trip(packet: RtpPacket) -> None:
    data = packet.to_bytes()
    assert parse_rtp(data) == packet
    assert not is_rtcp(data)


def test_wire_layout() -> None:
    data = build_rtp(0, 0x1234, 0x01020304, 0x0A0B0C0D, b"\xff", marker=True)
    assert data == bytes([0x80, 0x80, 0x12, 0x34, 1, 2, 3, 4, 10, 11, 12, 13, 0xFF])


GARBAGE = [
    b"",
    b"\x80",
    b"\x80\x00" + bytes(9),  # 11 bytes
    b"\x40\x00" + bytes(10),  # version 1
    b"\x00\x00" + bytes(10),  # version 0
    b"\x83\x00" + bytes(10) + bytes(8),  # 3 CSRCs, only 2 present
    b"\x90\x00" + bytes(10) + b"\x00\x01",  # extension header truncated
    b"\x90\x00" + bytes(10) + b"\x00\x01\x00\x02" + bytes(4),  # extension longer than packet
    b"\xa0\x00" + bytes(10) + b"ab\x00",  # padding count 0
    b"\xa0\x00" + bytes(10) + b"ab\x09",  # padding larger than payload
    b"\x80\xc8" + bytes(10),  # PT 72 (RTCP SR) is not RTP
]


@pytest.mark.parametrize("data", GARBAGE)
def test_garbage_raises_rtp_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_rtp(data)


def test_random_garbage_never_raises_anything_else() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        with contextlib.suppress(RtpError):
            parse_rtp(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"payload_type": 128},
        {"sequence": 65536},
        {"timestamp": -1},
        {"ssrc": 1 << 32},
        {"csrcs": tuple(range(16))},
        {"extension": RtpExtension(1, b"abc")},
        {"padding": 256},
    ],
)
def test_build_rejects_out_of_range(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0}
    args.update(kwargs)
    with pytest.raises(RtpError):
        build_rtp(**args)  # type: ignore[arg-type]


def test_is_rtcp() -> None:
    assert is_rtcp(b"\x81\xc9" + bytes(6))
    assert not is_rtcp(b"\x80\x00" + bytes(10))
    assert not is_rtcp(b"\x81")


def test_rewrite_header_keeps_payload_and_extension() -> None:
    original = build_rtp(0, 1, 2, 3, b"payload", csrcs=(9,), extension=RtpExtension(5, bytes(4)))
    out = parse_rtp(rewrite_header(original, 77, 88, 99, marker=True))
    assert (out.ssrc, out.sequence, out.timestamp, out.marker) == (77, 88, 99, True)
    assert (out.payload, out.csrcs, out.extension) == (b"payload", (9,), RtpExtension(5, bytes(4)))
    assert parse_rtp(rewrite_header(original, 1, 1, 1)).marker is False
    with pytest.raises(RtpError):
        rewrite_header(b"\x80", 1, 1, 1)


def _rewriter() -> StreamRewriter:
    return StreamRewriter(ssrc=0x5555, first_sequence=65530, first_timestamp=0xFFFFFF00)


def _feed(
    rw: StreamRewriter, packets: list[tuple[int, int, int, float]]
) -> list[tuple[int, int, bool]]:
    out = []
    for ssrc, seq, ts, now in packets:
        r = rw.rewrite(ssrc, seq, ts, False, now)
        assert r is not None
        assert r.ssrc == 0x5555
        out.append((r.sequence, r.timestamp, r.marker))
    return out


def test_continuous_stream_passes_with_offsets_and_wrap() -> None:
    rw = _rewriter()
    pkts = [(1, (100 + i) % 65536, (5000 + 160 * i) % (1 << 32), i * 0.02) for i in range(20)]
    out = _feed(rw, pkts)
    assert [o[0] for o in out] == [(65530 + i) % 65536 for i in range(20)]
    assert [o[1] for o in out] == [(0xFFFFFF00 + 160 * i) % (1 << 32) for i in range(20)]
    assert not any(o[2] for o in out)


def test_source_change_is_continuous_with_marker() -> None:
    rw = _rewriter()
    out = _feed(
        rw, [(1, 10, 1000, 0.0), (1, 11, 1160, 0.02), (2, 40000, 777, 0.04), (2, 40001, 937, 0.06)]
    )
    seqs = [o[0] for o in out]
    assert seqs == [65530, 65531, 65532, 65533]
    assert out[2][1] == (0xFFFFFF00 + 320) % (1 << 32)
    assert out[3][1] == (out[2][1] + 160) % (1 << 32)
    assert [o[2] for o in out] == [False, False, True, False]


@pytest.mark.parametrize(
    ("second", "discontinuity"),
    [
        ((1, 12, 1320, 0.04), False),  # one packet lost: gap preserved
        ((1, 11, 1160 + 8000 * 3, 0.04), True),  # timestamp jumps 3 s ahead of the clock
        ((1, 11, 1000 - 16000, 0.04), True),  # timestamp goes backwards
        ((1, 5000, 1160, 0.04), True),  # sequence jump beyond max_dropout
        ((1, (10 - 200) % 65536, 1160, 0.04), True),  # far behind: restart
        ((1, 11, 1160 + 160 * 50, 1.04), False),  # silence suppression: ts follows the clock
    ],
)
def test_jumps(second: tuple[int, int, int, float], discontinuity: bool) -> None:
    rw = _rewriter()
    rw.rewrite(1, 10, 1000, False, 0.0)
    r = rw.rewrite(*second[:3], False, second[3])
    assert r is not None
    assert r.discontinuity is discontinuity
    if discontinuity:
        assert r.sequence == 65531 and r.marker
        assert r.timestamp == (0xFFFFFF00 + 320) % (1 << 32)


def test_reordered_and_duplicate_packets_keep_mapping() -> None:
    rw = _rewriter()
    out = _feed(
        rw, [(1, 10, 1000, 0.0), (1, 12, 1320, 0.04), (1, 11, 1160, 0.045), (1, 11, 1160, 0.05)]
    )
    assert [o[0] for o in out] == [65530, 65532, 65531, 65531]
    assert not any(o[2] for o in out)


def test_long_telephone_event_does_not_trigger_jump() -> None:
    rw = _rewriter()
    rw.rewrite(1, 10, 1000, False, 0.0)
    for i in range(1, 150):  # a 3 s key press: timestamp frozen, sequence advancing
        r = rw.rewrite(1, 10 + i, 1160, False, 0.02 * i)
        assert r is not None and not r.discontinuity
    r = rw.rewrite(1, 160, 1160 + 150 * 160, False, 3.0)
    assert r is not None and not r.discontinuity


def test_stale_packets_from_replaced_source_are_dropped() -> None:
    rw = _rewriter()
    rw.rewrite(1, 10, 1000, False, 0.0)
    assert rw.rewrite(2, 500, 9, False, 0.02) is not None
    assert rw.rewrite(1, 11, 1160, False, 0.03) is None
    r = rw.rewrite(1, 12, 1320, False, 5.0)  # long after: a genuine switch back
    assert r is not None and r.discontinuity


def test_marker_passes_through() -> None:
    rw = _rewriter()
    rw.rewrite(1, 10, 1000, False, 0.0)
    r = rw.rewrite(1, 11, 1160, True, 0.02)
    assert r is not None and r.marker and not r.discontinuity


def test_wire_struct_sanity() -> None:
    data = build_rtp(0, 1, 2, 3, csrcs=(4,))
    assert struct.unpack_from("!I", data, 12) == (4,)
