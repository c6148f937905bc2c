"""Pure parts of the media-engine runtime: players, audio sources, the frame clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from media.clock import FrameClock
from media.players import Player, load_source
from media.wav import write_wav


@pytest.mark.parametrize(
    ("length", "loop", "frames", "expect_done_after"),
    [
        (320, False, 3, 2),  # two exact frames, then finished
        (400, False, 4, 3),  # a partial last frame is zero-padded
        (100, True, 5, None),  # shorter than a frame: looped without a gap
        (480, True, 10, None),
    ],
)
def test_player_frames(length: int, loop: bool, frames: int, expect_done_after: int | None) -> None:
    samples = (np.arange(length) % 1000 + 1).astype(np.int16)
    player = Player(samples, loop=loop)
    out = []
    for _ in range(frames):
        frame = player.next_frame()
        if frame is None:
            break
        assert frame.shape == (160,) and frame.dtype == np.int16
        out.append(frame)
    if expect_done_after is None:
        assert len(out) == frames
        joined = np.concatenate(out)
        assert np.array_equal(joined, samples[np.arange(len(joined)) % length])
    else:
        assert len(out) == expect_done_after
        joined = np.concatenate(out)
        assert np.array_equal(joined[:length], samples)
        assert not joined[length:].any()


async def test_player_finish_resolves_once() -> None:
    from media.players import Playback

    fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    player = Player(np.ones(160, np.int16), playback=Playback(1, fut))
    player.finish("stopped")
    player.finish("finished")
    assert await player.playback.wait() == "stopped"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (np.zeros(10, np.float64), "int16"),
        (np.zeros((2, 10), np.int16), "1-D"),
        (np.zeros(0, np.int16), "empty"),
    ],
)
def test_bad_sample_sources(source: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_source(source)


def test_wav_source_is_cached_and_read_only(tmp_path: Path) -> None:
    path = tmp_path / "moh.wav"
    write_wav(path, np.arange(800, dtype=np.int16))
    first = load_source(path)
    assert load_source(str(path)) is first
    assert not first.flags.writeable
    with pytest.raises(ValueError, match=r"nothing\.wav"):
        load_source(tmp_path / "nothing.wav")


async def test_frame_clock_ticks_and_survives_errors() -> None:
    seen: list[float] = []
    done = asyncio.Event()

    def on_tick(now: float) -> None:
        seen.append(now)
        if len(seen) == 3:
            raise RuntimeError("a bad tick")
        if len(seen) >= 6:
            done.set()

    clock = FrameClock(on_tick, period=0.005)
    clock.start()
    await asyncio.wait_for(done.wait(), 10)
    clock.stop()
    assert clock.stats.ticks >= 6 and clock.stats.errors == 1
    assert seen == sorted(seen)
    assert not clock.running


@pytest.mark.parametrize("kwargs", [{"period": 0}, {"late_after": -1}, {"max_backlog": 0}])
def test_frame_clock_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FrameClock(lambda now: None, **kwargs)  # type: ignore[arg-type]
