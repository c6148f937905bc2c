"""Jitter buffer: ordering, wrap, late drops, concealment, adaptation."""

from __future__ import annotations

import pytest

from media.jitter import FrameKind, JitterBuffer

P, R, S, W = FrameKind.PLAYED, FrameKind.REPEATED, FrameKind.SILENCE, FrameKind.WAITING


def payload(seq: int) -> bytes:
    return seq.to_bytes(2, "big")


def run(jb: JitterBuffer, schedule: list[list[int]]) -> list[tuple[FrameKind, int | None]]:
    """Per tick: push the listed sequence numbers, then pop once."""
    out = []
    for arrivals in schedule:
        for seq in arrivals:
            jb.push(seq % 65536, payload(seq % 65536))
        f = jb.pop()
        out.append((f.kind, int.from_bytes(f.payload, "big") if f.payload else None))
    return out


@pytest.mark.parametrize(
    ("depth", "schedule", "expected"),
    [
        # in order, depth 1: plays at once
        (1, [[1], [2], [3]], [(P, 1), (P, 2), (P, 3)]),
        # depth 2: one tick of prefill
        (2, [[1], [2], [3], []], [(W, None), (P, 1), (P, 2), (P, 3)]),
        # reordering inside the buffer is repaired
        (2, [[1], [3], [2], [4], []], [(W, None), (P, 1), (P, 2), (P, 3), (P, 4)]),
        # reordered before playout starts: the earliest is played first
        (2, [[2], [1], [3], [], []], [(W, None), (P, 1), (P, 2), (P, 3), (R, 3)]),
        # one loss: repeat last frame once
        (1, [[1], [], [3]], [(P, 1), (R, 1), (P, 3)]),
        # two losses: repeat once, then silence
        (1, [[1], [], [], [4]], [(P, 1), (R, 1), (S, None), (P, 4)]),
        # 16-bit wrap
        (1, [[65534], [65535], [65536], [65537]], [(P, 65534), (P, 65535), (P, 0), (P, 1)]),
        # late packet is dropped
        (1, [[1], [], [2, 3]], [(P, 1), (R, 1), (P, 3)]),
        # duplicates are ignored
        (1, [[1, 1], [2, 1, 2], [3]], [(P, 1), (P, 2), (P, 3)]),
    ],
)
def test_playout(
    depth: int, schedule: list[list[int]], expected: list[tuple[FrameKind, int | None]]
) -> None:
    jb = JitterBuffer(depth=depth, min_depth=1)
    assert run(jb, schedule) == expected


def test_statistics() -> None:
    jb = JitterBuffer(depth=1)
    run(jb, [[1, 1], [], [], [2, 4], [5], [6]])
    st = jb.stats
    assert (st.received, st.played, st.duplicate, st.late) == (6, 4, 1, 1)
    assert (st.repeated, st.silence, st.concealed) == (1, 1, 2)
    assert st.underruns == 2


def test_sequence_restart_resets_buffer() -> None:
    jb = JitterBuffer(depth=1)
    out = run(jb, [[100], [101], [30000], [30001]])
    assert out == [(P, 100), (P, 101), (P, 30000), (P, 30001)]
    assert jb.stats.resets == 1
    jb2 = JitterBuffer(depth=1)
    out = run(jb2, [[30000], [30001], [100], [101]])  # backwards jump
    assert out == [(P, 30000), (P, 30001), (P, 100), (P, 101)]


def test_overflow_drops_far_future_packets() -> None:
    jb = JitterBuffer(depth=1, capacity=10, max_depth=10)
    jb.push(1, b"a")
    assert jb.push(5, b"b")
    assert not jb.push(11, b"c")  # 10 ahead of playout: no room
    assert jb.stats.overflow == 1


def test_idle_stream_refills_after_silence() -> None:
    jb = JitterBuffer(depth=2, idle_after=5)
    out = run(jb, [[1], [2], [], [], [], [], [], [], [50], [51], []])
    kinds = [k for k, _ in out]
    assert kinds[:3] == [W, P, P]
    assert kinds[3] == R
    assert kinds[8] == W  # refilling after the idle period
    assert out[9] == (P, 50)


def test_adaptive_depth_grows_on_late_packets_and_shrinks_when_slack() -> None:
    jb = JitterBuffer(depth=1, adaptive=True, min_depth=1, max_depth=4)
    # packet 3 comes one tick late
    run(jb, [[1], [2], [], [3, 4], [5]])
    assert jb.stats.late == 1 and jb.depth == 2
    # then a burst leaves many frames buffered for long: depth is cut back
    seq = 6
    schedule: list[list[int]] = [[seq + i for i in range(5)]]
    seq += 5
    for _ in range(200):
        schedule.append([seq])
        seq += 1
    run(jb, schedule)
    assert jb.depth == 1
    assert jb.buffered <= 3


def test_bounded_memory_under_random_input() -> None:
    import random

    rng = random.Random(3)
    jb = JitterBuffer(depth=3, adaptive=True)
    for _ in range(5000):
        for _ in range(rng.randrange(0, 4)):
            jb.push(rng.randrange(0, 65536), b"x")
        jb.pop()
        assert jb.buffered <= jb.capacity


@pytest.mark.parametrize(
    "kwargs",
    [
        {"depth": 0},
        {"depth": 5, "max_depth": 4},
        {"min_depth": 0},
        {"max_depth": 60, "capacity": 50},
    ],
)
def test_bad_configuration(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        JitterBuffer(**kwargs)  # type: ignore[arg-type]
