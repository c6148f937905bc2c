"""Music-on-hold programs: order, introduction, periodic messages, shuffling, files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from config.moh import MusicOnHold
from media.moh import HoldMusic, HoldMusicProgram, load_hold_music
from media.wav import write_wav
from tests.unit.wavkit import fmt_chunk, level_at, riff, tone

RATE = 8000
# item lengths are not whole frames: the program must join items without gaps
ODD = 7


def item(code: int, seconds: float) -> npt.NDArray[np.int16]:
    """Item ``code``: its first sample is -code, the rest +code, so runs can be told apart."""
    samples = np.full(round(seconds * RATE) + ODD, code, np.int16)
    samples[0] = -code
    samples.flags.writeable = False
    return samples


def segments(program: HoldMusicProgram, frames: int) -> list[tuple[int, int]]:
    """(item code, length) of each item the program plays over ``frames`` frames."""
    out = []
    for _ in range(frames):
        frame = program.next_frame()
        assert frame.shape == (160,) and frame.dtype == np.int16
        out.append(frame)
    audio = np.concatenate(out)
    starts = np.flatnonzero(audio < 0)
    assert starts[0] == 0
    ends = np.concatenate([starts[1:], [len(audio)]])
    return [(int(-audio[s]), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def build(
    songs: list[float],
    *,
    intro: float | None = None,
    messages: tuple[float, ...] = (),
    interval: float = 30,
    randomise: bool = False,
) -> tuple[HoldMusic, dict[int, str]]:
    """Songs are A, B, C... (values 10+), messages M1, M2... (20+), the intro I (1)."""
    names = {1: "I"} | {10 + i: chr(65 + i) for i in range(len(songs))}
    names |= {20 + i: f"M{i + 1}" for i in range(len(messages))}
    music = HoldMusic(
        tuple(item(10 + i, s) for i, s in enumerate(songs)),
        None if intro is None else item(1, intro),
        tuple(item(20 + i, s) for i, s in enumerate(messages)),
        interval,
        randomise,
    )
    return music, names


def played(music: HoldMusic, names: dict[int, str], count: int, seed: int = 0) -> list[str]:
    """The names of the first ``count`` items played, checking each plays whole."""
    lengths = {int(-s[0]): len(s) for s in (*music.songs, *music.messages)}
    if music.intro is not None:
        lengths[1] = len(music.intro)
    longest = max(lengths.values())
    runs = segments(music.program(seed), (count + 1) * longest // 160 + 1)
    assert len(runs) > count
    for code, length in runs[:count]:
        assert length == lengths[code]  # whole items, nothing dropped or cut
    return [names[v] for v, _ in runs[:count]]


SEQUENCES = [
    ("in order, looping", dict(songs=[4, 7]), "A B A B A B"),
    ("intro once", dict(songs=[4, 7], intro=3), "I A B A B A B"),
    (
        "a message once 15 s of music passed, across song boundaries",
        dict(songs=[4, 7], messages=(2,), interval=15),
        "A B A M1 B A B M1 A B A M1",
    ),
    (
        "a song longer than the interval",
        dict(songs=[20], messages=(2,), interval=15),
        "A M1 A M1 A M1",
    ),
    ("messages take turns", dict(songs=[16], messages=(2, 3), interval=15), "A M1 A M2 A M1 A M2"),
    (
        "the introduction is not music: the interval starts after it",
        dict(songs=[8], intro=20, messages=(2,), interval=15),
        "I A A M1 A A M1",
    ),
    (
        "interval reached exactly",
        dict(songs=[5, 5, 5], messages=(1,), interval=15),
        "A B C M1 A B C M1",
    ),
    ("longest interval", dict(songs=[50], messages=(1,), interval=120), "A A A M1 A A A M1"),
]


@pytest.mark.parametrize(("name", "kw", "expect"), SEQUENCES, ids=[s[0] for s in SEQUENCES])
def test_sequence(name: str, kw: dict[str, object], expect: str) -> None:
    music, names = build(**kw)  # type: ignore[arg-type]
    assert " ".join(played(music, names, len(expect.split()))) == expect


def test_frames_join_items_without_gaps() -> None:
    music = HoldMusic((np.arange(1, 101, dtype=np.int16), np.arange(101, 351, dtype=np.int16)))
    program = music.program()
    audio = np.concatenate([program.next_frame() for _ in range(7)])
    cycle = np.arange(1, 351, dtype=np.int16)
    assert np.array_equal(audio, np.resize(cycle, 7 * 160))


def test_each_hold_has_its_own_position() -> None:
    music, _ = build([1, 2], intro=1)
    first = music.program()
    for _ in range(100):
        first.next_frame()
    assert first.next_frame()[0] == 10  # into song A
    assert music.program().next_frame()[0] == -1  # a new hold starts with the introduction


def test_randomise_is_reproducible_with_a_seed_and_shuffles_every_pass() -> None:
    music, names = build([0.1] * 6, randomise=True)
    letters = sorted(n for n in names.values() if n != "I")
    by_seed = {seed: played(music, names, 24, seed) for seed in range(8)}
    assert by_seed[3] == played(music, names, 24, 3)
    for order in by_seed.values():
        passes = [order[i : i + 6] for i in range(0, 24, 6)]
        assert all(sorted(p) == letters for p in passes)  # every song once per pass
    assert len({tuple(o[:6]) for o in by_seed.values()}) > 1
    assert any(o[:6] != o[6:12] for o in by_seed.values())  # a new order on the next pass
    ordered, _ = build([0.1] * 6)
    assert played(ordered, names, 12, 5) == letters * 2


@pytest.mark.parametrize(
    ("songs", "messages", "interval", "problem"),
    [
        ((), (), 30, "at least one song"),
        ((np.zeros(0, np.int16),), (), 30, "non-empty"),
        ((np.zeros(9, np.float64),), (), 30, "int16"),
        ((np.ones(9, np.int16),), (np.ones(9, np.int16),), 0, "message_interval"),
    ],
)
def test_bad_hold_music(songs: tuple, messages: tuple, interval: float, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        HoldMusic(songs, None, messages, interval)


def test_files_convert_on_load(tmp_path: Path) -> None:
    plain = np.round(tone(440, RATE, 1.0)).astype(np.int16)
    write_wav(tmp_path / "plain.wav", plain)
    left = np.round(tone(1000, 44100, 1.0)).astype(np.int16)
    write_wav(tmp_path / "cd.wav", np.stack([left, left], axis=1), 44100)
    music = HoldMusic.load([tmp_path / "plain.wav", tmp_path / "cd.wav"])
    assert np.array_equal(music.songs[0], plain)  # 8 kHz mono 16-bit plays as is
    converted = music.songs[1]
    assert abs(len(converted) - RATE) <= 1 and converted.dtype == np.int16
    assert level_at(converted, 1000) == pytest.approx(10000, rel=0.03)


def _pcm(bits: int, tag: int = 1, channels: int = 1, rate: int = RATE) -> bytes:
    return riff(fmt_chunk(tag, channels, rate, bits), bytes(bits // 8 * channels * 800))


REJECTED = [
    ("mp3", b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(400), "not a WAV file"),
    ("garbage", np.random.default_rng(4).bytes(1000), "not a WAV file"),
    ("empty", b"", "not a WAV file"),
    ("mp3 in a WAV", riff(fmt_chunk(0x55, 1, RATE, 0), bytes(100)), r"MPEG Layer 3 \(MP3\)"),
    ("8-bit", _pcm(8), "8-bit PCM samples cannot be played; convert it to 16-bit PCM"),
    ("24-bit", _pcm(24, channels=2, rate=48000), "24-bit PCM samples cannot be played"),
    ("A-law", _pcm(8, tag=6), "8-bit A-law samples cannot be played"),
    ("float", _pcm(32, tag=3), "32-bit floating-point samples cannot be played"),
    ("no samples", riff(fmt_chunk(1, 1, RATE, 16), b""), "contains no audio samples"),
]


@pytest.mark.parametrize(("name", "data", "problem"), REJECTED, ids=[r[0] for r in REJECTED])
def test_rejected_files_name_file_and_problem(
    tmp_path: Path, name: str, data: bytes, problem: str
) -> None:
    good, bad = tmp_path / "good.wav", tmp_path / f"{name}.wav"
    write_wav(good, np.ones(800, np.int16))
    bad.write_bytes(data)
    with pytest.raises(ValueError, match=problem) as err:
        HoldMusic.load([good], messages=[bad])
    assert str(err.value).startswith(f"{bad}: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"absent\.wav: cannot read"):
        HoldMusic.load([tmp_path / "absent.wav"])


def test_configured_playlist_is_loaded_once(tmp_path: Path) -> None:
    song, notice = tmp_path / "song.wav", tmp_path / "notice.wav"
    write_wav(song, np.full(1600, 5, np.int16))
    write_wav(notice, np.full(800, 6, np.int16))
    playlist = MusicOnHold(songs=(song,), messages=(notice,), message_interval=15)
    music = load_hold_music(playlist)
    assert load_hold_music(playlist) is music
    assert music.message_interval == 15 and music.songs[0][0] == 5
    write_wav(song, np.full(1600, 7, np.int16))  # replaced on disk: read again
    mtime = song.stat().st_mtime_ns + 10_000_000_000
    os.utime(song, ns=(mtime, mtime))
    reloaded = load_hold_music(playlist)
    assert reloaded is not music and reloaded.songs[0][0] == 7
    song.unlink()
    with pytest.raises(ValueError, match=r"song\.wav: cannot read"):
        load_hold_music(playlist)
