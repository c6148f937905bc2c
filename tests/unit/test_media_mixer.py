"""The numpy mixer: total-minus-self, rights, monitoring modes, shape changes."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest

from media.mixer import Mixer, MixerError, MonitorMode

N = 160


def dc(mixer: Mixer, values: dict[str, int], rows: int | None = None) -> npt.NDArray[np.int16]:
    frames = np.zeros((rows or mixer.rows, N), dtype=np.int16)
    for key, v in values.items():
        frames[mixer.slot(key)] = v
    return frames


def settled(mixer: Mixer, frames: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """Output once any cross-fade from a change is over."""
    mixer.mix(frames)
    return mixer.mix(frames)


def heard(mixer: Mixer, out: npt.NDArray[np.int16], key: str) -> int:
    row = out[mixer.slot(key)]
    assert np.all(row == row[0])
    return int(row[0])


def test_conference_everyone_but_self() -> None:
    m = Mixer()
    for k in "abcd":
        m.add("room", k)
    m.add("other", "x")
    out = settled(m, dc(m, {"a": 1, "b": 10, "c": 100, "d": 1000, "x": 5}))
    assert [heard(m, out, k) for k in "abcdx"] == [1110, 1101, 1011, 111, 0]


def test_two_party_bridge() -> None:
    m = Mixer()
    m.add("call", "caller")
    m.add("call", "callee")
    out = settled(m, dc(m, {"caller": 123, "callee": -77}))
    assert (heard(m, out, "caller"), heard(m, out, "callee")) == (-77, 123)


def test_saturation_not_wraparound() -> None:
    m = Mixer()
    for k in "abc":
        m.add("s", k)
    out = settled(m, dc(m, {"a": 30000, "b": 30000, "c": -30000}))
    assert heard(m, out, "c") == 32767
    out = settled(m, dc(m, {"a": -30000, "b": -30000, "c": 0}))
    assert heard(m, out, "c") == -32768


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (lambda m: m.set_talk("a", False), {"a": 110, "b": 100, "c": 10}),
        (lambda m: m.set_listen("a", False), {"a": 0, "b": 101, "c": 11}),
        (lambda m: m.set_gain("b", 0.5), {"a": 105, "b": 101, "c": 6}),
        (lambda m: m.set_listen_gain("c", 2.0), {"a": 110, "b": 101, "c": 22}),
        (lambda m: m.set_hears("c", "a", False), {"a": 110, "b": 101, "c": 10}),
    ],
)
def test_rights_and_gains(action, expected: dict[str, int]) -> None:
    m = Mixer()
    for k in "abc":
        m.add("s", k)
    action(m)
    out = settled(m, dc(m, {"a": 1, "b": 10, "c": 100}))
    assert {k: heard(m, out, k) for k in "abc"} == expected


MONITOR_TABLE = [
    # mode, (caller hears, agent hears, supervisor hears); caller=1, agent=10, supervisor=100
    (MonitorMode.LISTEN, (10, 1, 11)),
    (MonitorMode.WHISPER, (10, 101, 11)),
    (MonitorMode.BARGE, (110, 101, 11)),
]


@pytest.mark.parametrize(("mode", "expected"), MONITOR_TABLE)
def test_monitor_modes(mode: MonitorMode, expected: tuple[int, int, int]) -> None:
    m = Mixer()
    m.add("call", "caller")
    m.add("call", "agent")
    m.add("call", "sup")
    m.set_monitor("sup", mode, agent="agent")
    out = settled(m, dc(m, {"caller": 1, "agent": 10, "sup": 100}))
    assert (heard(m, out, "caller"), heard(m, out, "agent"), heard(m, out, "sup")) == expected


def test_monitor_mode_switching_in_any_order() -> None:
    m = Mixer()
    m.add("call", "caller")
    m.add("call", "agent")
    frames_without_sup = dc(m, {"caller": 1, "agent": 10})
    out = settled(m, frames_without_sup)
    assert heard(m, out, "caller") == 10
    m.add("call", "sup")
    m.set_monitor("sup", MonitorMode.LISTEN, agent="agent")
    table = dict(MONITOR_TABLE)
    sequence = [
        MonitorMode.LISTEN,
        MonitorMode.WHISPER,
        MonitorMode.BARGE,
        MonitorMode.LISTEN,
        MonitorMode.BARGE,
        MonitorMode.WHISPER,
        MonitorMode.LISTEN,
    ]
    for mode in sequence:
        m.set_monitor("sup", mode, agent="agent")
        out = settled(m, dc(m, {"caller": 1, "agent": 10, "sup": 100}))
        got = (heard(m, out, "caller"), heard(m, out, "agent"), heard(m, out, "sup"))
        assert got == table[mode], mode
    m.remove("sup")
    out = settled(m, dc(m, {"caller": 1, "agent": 10}, rows=m.rows))
    assert (heard(m, out, "caller"), heard(m, out, "agent")) == (10, 1)


def test_many_monitored_calls_batched_with_conferences() -> None:
    m = Mixer()
    values: dict[str, int] = {}
    for i in range(20):
        for role, v in (("c", 1), ("a", 10), ("s", 100)):
            m.add(f"call{i}", f"{role}{i}")
            values[f"{role}{i}"] = v
        m.set_monitor(f"s{i}", list(MonitorMode)[i % 3], agent=f"a{i}")
    for k in range(5):
        m.add("conf", f"p{k}")
        values[f"p{k}"] = 1000
    out = settled(m, dc(m, values))
    table = dict(MONITOR_TABLE)
    for i in range(20):
        expected = table[list(MonitorMode)[i % 3]]
        assert (heard(m, out, f"c{i}"), heard(m, out, f"a{i}"), heard(m, out, f"s{i}")) == expected
    assert all(heard(m, out, f"p{k}") == 4000 for k in range(5))


def reference(
    m: Mixer, frames: npt.NDArray[np.int16], keys: list[str]
) -> dict[str, npt.NDArray[np.int64]]:
    """Naive per-listener sum of everyone it may hear, same fixed point as the mixer."""
    out = {}
    for listener in keys:
        total = np.zeros(N, dtype=np.int64)
        for talker in keys:
            if m.hears(listener, talker):
                p = m._participants[talker]
                total += (frames[p.slot].astype(np.int64) * round(p.gain * 4096)) >> 12
        lp = m._participants[listener]
        total = (total * np.float32(lp.listen_gain)).astype(np.int64) if lp.listen else total * 0
        out[listener] = np.clip(total, -32768, 32767)
    return out


def test_random_configurations_match_naive_reference() -> None:
    rng = random.Random(42)
    nrng = np.random.default_rng(42)
    for _ in range(30):
        m = Mixer()
        keys = []
        for s in range(rng.randrange(1, 8)):
            for p in range(rng.randrange(1, 7)):
                key = f"s{s}p{p}"
                m.add(
                    f"s{s}",
                    key,
                    gain=rng.choice([1.0, 1.0, 0.5, 2.0, 0.0]),
                    listen_gain=rng.choice([1.0, 1.0, 0.7, 3.0]),
                    talk=rng.random() > 0.2,
                    listen=rng.random() > 0.2,
                )
                keys.append(key)
        for _ in range(rng.randrange(0, 6)):
            a, b = rng.sample(keys, 2)
            if a.split("p")[0] == b.split("p")[0]:
                m.set_hears(a, b, rng.random() > 0.5)
        frames = nrng.integers(-20000, 20000, (m.rows, N)).astype(np.int16)
        out = settled(m, frames)
        ref = reference(m, frames, keys)
        for key in keys:
            assert np.array_equal(out[m.slot(key)], ref[key]), key


def test_shape_change_is_crossfaded_without_glitch() -> None:
    m = Mixer()
    m.add("call", "a")
    m.add("call", "b")
    out = settled(m, dc(m, {"a": 0, "b": 1000}))
    assert heard(m, out, "a") == 1000
    m.add("call", "sup")  # a monitor joins: 2 -> 3 participants
    frames = dc(m, {"a": 0, "b": 1000, "sup": 3000})
    fade = m.mix(frames)[m.slot("a")].astype(np.int32)
    assert 1000 <= fade[0] <= 1030 and fade[-1] == 4000
    assert np.all(np.diff(fade) >= 0) and np.max(np.diff(fade)) <= 20  # a smooth ramp
    assert heard(m, m.mix(frames), "a") == 4000
    # and a mute fades out instead of cutting
    m.set_talk("sup", False)
    fade = m.mix(frames)[m.slot("a")].astype(np.int32)
    assert fade[0] > 3900 and fade[-1] == 1000 and np.all(np.diff(fade) <= 0)


def test_unchanged_participants_are_untouched_by_other_sessions_changes() -> None:
    m = Mixer()
    m.add("s1", "a")
    m.add("s1", "b")
    rng = np.random.default_rng(3)
    frames = rng.integers(-5000, 5000, (8, N)).astype(np.int16)
    settled(m, frames[: m.rows])
    m.add("s2", "c")
    m.add("s2", "d")
    out = m.mix(frames[: m.rows])  # a cross-fade tick for s2
    assert np.array_equal(out[m.slot("a")], frames[m.slot("b")])


def test_slots_are_quarantined_for_one_tick() -> None:
    m = Mixer()
    m.add("s", "a")
    m.add("s", "b")
    old = m.slot("a")
    m.remove("a")
    assert m.add("t", "c") != old  # not reused before a tick
    m.mix(np.zeros((m.rows, N), dtype=np.int16))
    assert m.add("t", "d") == old
    assert m.participants("t") == ["c", "d"]


def test_empty_mixer_and_output_buffer() -> None:
    m = Mixer()
    assert m.mix(np.zeros((0, N), dtype=np.int16)).shape == (0, N)
    m.add("s", "a")
    buf = np.full((4, N), 7, dtype=np.int16)
    m.mix(np.ones((4, N), dtype=np.int32), out=buf)
    assert np.all(buf == 0)  # alone in a session: silence; unused rows cleared


@pytest.mark.parametrize(
    "action",
    [
        lambda m: m.add("s", "a"),
        lambda m: m.remove("zz"),
        lambda m: m.set_talk("zz", True),
        lambda m: m.set_gain("a", 9.0),
        lambda m: m.set_gain("a", -1.0),
        lambda m: m.set_hears("a", "x", False),
        lambda m: m.set_hears("a", "a", False),
        lambda m: m.set_monitor("a", MonitorMode.WHISPER),
        lambda m: m.set_monitor("a", MonitorMode.LISTEN, agent="x"),
        lambda m: m.mix(np.zeros((1, N), dtype=np.int16)),
        lambda m: m.mix(np.zeros((5, 80), dtype=np.int16)),
    ],
)
def test_errors(action) -> None:
    m = Mixer()
    m.add("s", "a")
    m.add("s", "b")
    m.add("t", "x")
    with pytest.raises(MixerError):
        action(m)
