"""Decoded audio sources shared by every play of a process: one decode per file version.

A prompt or greeting is a WAV file; decoding it (and converting it to 8 kHz) costs
milliseconds, far too much for a media tick. :class:`SourceCache` keeps the decoded
samples keyed by the file's path *and* its identity on disk (size, modification time in
nanoseconds, inode), so a greeting re-recorded or a prompt replaced (written in place or
renamed over) is decoded again at its next play, while an unchanged file costs one
``stat``. The cache is bounded by bytes of samples, least recently played evicted first,
so one long file cannot pin the memory of hundreds of short prompts (and the other way
round). :meth:`SourceCache.cached` never reads a file (the tick loop may call it); the
decode itself (:meth:`SourceCache.load`) is thread-safe and meant for a worker thread.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from media.wav import load_wav

__all__ = ["DEFAULT_MAX_BYTES", "SOURCES", "FileVersion", "SourceCache"]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # 64 MiB of int16 samples: about 70 minutes of audio


@dataclass(frozen=True, slots=True)
class FileVersion:
    """What identifies the content of a file without reading it."""

    size: int
    mtime_ns: int
    inode: int


def _version(path: str) -> FileVersion:
    """The file's current version; ValueError naming the file when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read audio file ({exc.strerror})") from None
    return FileVersion(st.st_size, st.st_mtime_ns, st.st_ino)


class SourceCache:
    """Decoded, read-only int16 8 kHz samples by file path, LRU-bounded by bytes."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[FileVersion, npt.NDArray[np.int16]]]
        self._entries = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # loads run in threads, lookups on the loop
        self.hits = 0
        self.misses = 0  # decodes done
        self.evictions = 0

    @property
    def bytes(self) -> int:
        """Bytes of samples held."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, path: str | os.PathLike[str]) -> npt.NDArray[np.int16] | None:
        """The samples of ``path`` if its current version is decoded, else None.

        Costs one ``stat`` and never reads the file; ValueError naming the file when it
        is missing or unreadable.
        """
        name = os.fspath(path)
        version = _version(name)
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(name)
            self.hits += 1
            return entry[1]

    def load(self, path: str | os.PathLike[str]) -> npt.NDArray[np.int16]:
        """The samples of ``path``, decoded now unless its current version is cached.

        Blocking (reads and converts the file): call it in a thread from an event loop.
        ValueError naming the file when it cannot be decoded or holds no audio.
        """
        name = os.fspath(path)
        found = self.cached(name)
        if found is not None:
            return found
        version = _version(name)
        samples = load_wav(name)
        if not len(samples):
            raise ValueError(f"{name}: the WAV file has no audio")
        samples.flags.writeable = False
        if _version(name) != version:
            # rewritten while we read it: keep what we decoded for this play only, the
            # next one decodes the finished file
            return samples
        self._store(name, version, samples)
        return samples

    def _store(self, name: str, version: FileVersion, samples: npt.NDArray[np.int16]) -> None:
        with self._lock:
            self.misses += 1
            old = self._entries.pop(name, None)
            if old is not None:
                self._bytes -= old[1].nbytes
            if samples.nbytes > self.max_bytes:
                return  # larger than the whole cache: played, never kept
            self._entries[name] = (version, samples)
            self._bytes += samples.nbytes
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes
                self.evictions += 1

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop ``path`` (its file was removed or replaced by the caller)."""
        with self._lock:
            old = self._entries.pop(os.fspath(path), None)
            if old is not None:
                self._bytes -= old[1].nbytes

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


#: The process's cache: every engine, room and playlist of a process (a media worker, or
#: the switch with its engine in-process) shares it.
SOURCES = SourceCache()
