"""The decoded-source cache: hits, misses, files changed on disk, eviction by bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from media.sources import SourceCache
from media.wav import write_wav


def _wav(path: Path, value: int, samples: int = 800) -> Path:
    write_wav(path, np.full(samples, value, np.int16))
    return path


def _touch_later(path: Path) -> None:
    """A later modification time, as a rewrite a moment afterwards would leave."""
    later = time.time_ns() + 2_000_000_000
    os.utime(path, ns=(later, later))


def test_a_miss_decodes_once_and_a_hit_shares_the_samples(tmp_path: Path) -> None:
    cache = SourceCache()
    path = _wav(tmp_path / "hello.wav", 1000)
    assert cache.cached(path) is None  # never reads: a miss says None
    first = cache.load(path)
    assert cache.misses == 1 and int(first[0]) == 1000 and not first.flags.writeable
    assert cache.cached(str(path)) is first
    assert cache.load(path) is first
    assert (cache.misses, cache.hits, len(cache), cache.bytes) == (1, 2, 1, 1600)


def test_a_file_changed_on_disk_is_decoded_again(tmp_path: Path) -> None:
    cache = SourceCache()
    path = _wav(tmp_path / "greeting.wav", 1000)
    old = cache.load(path)
    _wav(path, -3000, samples=1600)  # re-recorded: new size
    assert cache.cached(path) is None
    new = cache.load(path)
    assert int(new[0]) == -3000 and len(new) == 1600 and new is not old
    _wav(path, 42, samples=1600)  # same size: the modification time tells
    _touch_later(path)
    assert int(cache.load(path)[0]) == 42
    replacement = _wav(tmp_path / "other.wav", 7, samples=1600)
    os.replace(replacement, path)  # renamed over: another inode
    assert int(cache.load(path)[0]) == 7
    assert cache.misses == 4 and len(cache) == 1 and cache.bytes == 3200


def test_eviction_by_bytes_least_recently_played_first(tmp_path: Path) -> None:
    cache = SourceCache(max_bytes=2 * 1600)  # two 800-sample files
    a, b, c = (_wav(tmp_path / f"{n}.wav", i, 800) for i, n in enumerate("abc"))
    cache.load(a)
    cache.load(b)
    assert cache.cached(a) is not None  # a played again: b is now the oldest
    cache.load(c)
    assert cache.evictions == 1 and cache.bytes == 3200
    assert cache.cached(b) is None
    assert cache.cached(a) is not None and cache.cached(c) is not None
    big = _wav(tmp_path / "big.wav", 9, 4000)
    assert int(cache.load(big)[0]) == 9  # played, but larger than the whole cache: not kept
    assert cache.cached(big) is None and cache.cached(a) is not None


def test_unreadable_files_name_themselves(tmp_path: Path) -> None:
    cache = SourceCache()
    with pytest.raises(ValueError, match=r"missing\.wav"):
        cache.cached(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match=r"missing\.wav"):
        cache.load(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match=r"junk\.wav"):
        cache.load(junk)
    assert len(cache) == 0
    with pytest.raises(ValueError, match="max_bytes"):
        SourceCache(max_bytes=0)
