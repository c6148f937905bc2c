"""Music on hold: a playlist loaded once, and one program of it per held call.

:class:`HoldMusic` holds the decoded files of a playlist (shared by every call holding
with it; :func:`load_hold_music` caches it per playlist).  :meth:`HoldMusic.program`
starts what one held party hears: the introduction once, then the songs in order (or
shuffled anew on every pass when ``randomise``), a message between two songs whenever at
least ``message_interval`` seconds of music have played since the last message (or since
the introduction), the messages taking turns, forever.  Time is counted in samples
played, so the program is the same however the engine's clock runs.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from config.moh import MusicOnHold
from media.players import FRAME, AudioSource, Playback, load_source

__all__ = ["HoldMusic", "HoldMusicProgram", "PlaylistFiles", "load_hold_music"]

RATE = 8000

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class PlaylistFiles:
    """Where a playlist's files are: what a media worker is sent to load it itself."""

    songs: tuple[str, ...]
    intro: str | None = None
    messages: tuple[str, ...] = ()
    message_interval: float = 30.0
    randomise: bool = False

    def load(self) -> HoldMusic:
        """Decode the files (taken from the file cache when unchanged); ValueError names a
        bad one."""
        return HoldMusic.load(
            self.songs,
            intro=self.intro,
            messages=self.messages,
            message_interval=self.message_interval,
            randomise=self.randomise,
        )


@dataclass(frozen=True, eq=False)
class HoldMusic:
    """The decoded files of one playlist (int16 8 kHz mono), read-only and shared."""

    songs: tuple[Samples, ...]
    intro: Samples | None = None
    messages: tuple[Samples, ...] = ()
    message_interval: float = 30.0  # seconds of music between messages
    randomise: bool = False
    files: PlaylistFiles | None = None  # where it was loaded from (None: built from samples)

    def __post_init__(self) -> None:
        if not self.songs:
            raise ValueError("music on hold needs at least one song")
        if self.messages and self.message_interval <= 0:
            raise ValueError("message_interval must be positive")
        items = [*self.songs, *self.messages, *([self.intro] if self.intro is not None else [])]
        if any(s.dtype != np.int16 or s.ndim != 1 or not len(s) for s in items):
            raise ValueError("music on hold items must be non-empty 1-D int16 at 8 kHz")

    @classmethod
    def load(
        cls,
        songs: Sequence[AudioSource],
        *,
        intro: AudioSource | None = None,
        messages: Sequence[AudioSource] = (),
        message_interval: float = 30.0,
        randomise: bool = False,
    ) -> HoldMusic:
        """Load (or take from the file cache) every file; ValueError names a bad one."""
        files = None
        paths = [*songs, *messages, *([] if intro is None else [intro])]
        if not any(isinstance(p, np.ndarray) for p in paths):
            files = PlaylistFiles(
                tuple(_path(s) for s in songs),
                None if intro is None else _path(intro),
                tuple(_path(m) for m in messages),
                float(message_interval),
                randomise,
            )
        return cls(
            tuple(load_source(s) for s in songs),
            None if intro is None else load_source(intro),
            tuple(load_source(m) for m in messages),
            message_interval,
            randomise,
            files,
        )

    def program(
        self,
        seed: int | None = None,
        *,
        barge_in: bool = False,
        playback: Playback | None = None,
    ) -> HoldMusicProgram:
        """What one held party hears from the start; ``seed`` fixes the shuffle.  Played
        as a prompt (``playback``: its handle), a key ends it when ``barge_in``."""
        return HoldMusicProgram(self, random.Random(seed), barge_in=barge_in, playback=playback)


def _path(source: AudioSource) -> str:
    assert not isinstance(source, np.ndarray)
    return os.fspath(source)


def _sequence(music: HoldMusic, rng: random.Random) -> Iterator[Samples]:
    """The items one held party hears, in order, forever."""
    if music.intro is not None:
        yield music.intro
    interval = round(music.message_interval * RATE)
    since_message = 0  # samples of music since the last message ended
    next_message = 0
    order = list(range(len(music.songs)))
    while True:
        if music.randomise:
            rng.shuffle(order)
        for i in order:
            yield music.songs[i]
            since_message += len(music.songs[i])
            if music.messages and since_message >= interval:
                yield music.messages[next_message]
                next_message = (next_message + 1) % len(music.messages)
                since_message = 0


class HoldMusicProgram:
    """One held party's position in a :class:`HoldMusic`: hands out 160-sample frames.

    Items follow each other without a gap: a frame spanning the end of one item is
    completed from the next.
    """

    def __init__(
        self,
        music: HoldMusic,
        rng: random.Random,
        *,
        barge_in: bool = False,
        playback: Playback | None = None,
    ) -> None:
        self.music = music
        self.barge_in = barge_in
        self.playback = playback
        self._items = _sequence(music, rng)
        self._current: Samples = np.zeros(0, np.int16)
        self._position = 0

    def next_frame(self) -> Samples:
        """The next 160 samples (never ends)."""
        start = self._position
        if start + FRAME <= len(self._current):
            self._position = start + FRAME
            return self._current[start : start + FRAME]  # a view: no copy on the common path
        frame = np.empty(FRAME, np.int16)
        filled = 0
        while filled < FRAME:  # bounded: every item holds at least one sample
            if self._position >= len(self._current):
                self._current = next(self._items)
                self._position = 0
            take = min(FRAME - filled, len(self._current) - self._position)
            frame[filled : filled + take] = self._current[self._position : self._position + take]
            filled += take
            self._position += take
        return frame

    def finish(self, reason: str) -> None:
        """Resolve the playback handle, when played as a prompt (once)."""
        if self.playback is not None and not self.playback.future.done():
            self.playback.future.set_result(reason)


_loaded: dict[tuple[object, ...], HoldMusic] = {}
_LOADED_MAX = 256


def load_hold_music(playlist: MusicOnHold) -> HoldMusic:
    """The :class:`HoldMusic` of a configured playlist, decoded once and then cached.

    The cache key holds each file's modification time, so a replaced file is read again
    at the next hold; otherwise a hold costs one ``stat`` per file.
    """
    files = [path for _, path in playlist.files()]
    try:
        key = (playlist, *(os.stat(p).st_mtime_ns for p in files))
    except OSError as exc:
        raise ValueError(f"{exc.filename}: cannot read audio file ({exc.strerror})") from None
    music = _loaded.get(key)
    if music is None:
        music = HoldMusic.load(
            playlist.songs,
            intro=playlist.intro,
            messages=playlist.messages,
            message_interval=playlist.message_interval,
            randomise=playlist.randomise,
        )
        if len(_loaded) >= _LOADED_MAX:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = music
    return music
