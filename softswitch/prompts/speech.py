"""Text-to-speech through espeak-ng, cached on disk so the same text is synthesised once.

espeak-ng runs as a subprocess (text on its standard input, never on the command line)
with a timeout; its WAV output goes through :func:`media.convert.convert_file`, the path
every upload takes, and the 8 kHz result is kept under the cache directory by a hash of
(text, voice, rate).  Concurrent requests for the same entry share one synthesis.  The cache
is bounded in bytes: when it grows past the bound the least recently used entries go (a hit
touches the file, so "recently used" survives restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import structlog

from media.convert import ConversionError, convert_file

__all__ = ["SpeechError", "Synthesiser"]

log = structlog.get_logger(__name__)

MAX_TEXT = 2000  # characters: a greeting, not a book


class SpeechError(RuntimeError):
    """Speech could not be synthesised (espeak-ng missing, failing or too slow)."""


class Synthesiser:
    """espeak-ng behind a bounded disk cache of 8 kHz WAV files."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str],
        *,
        command: str = "espeak-ng",
        timeout: float = 10.0,
        cache_bytes: int = 200 * 1024 * 1024,
        concurrency: int = 2,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.command = command
        self.timeout = timeout
        self.cache_bytes = cache_bytes
        self.syntheses = 0  # espeak-ng runs that produced an entry (the cache's misses)
        self._pending: dict[str, asyncio.Future[Path]] = {}
        self._sizes: dict[Path, int] | None = None
        self._accounting = threading.Lock()  # _account runs in worker threads
        # a long phrase asks for many utterances at once; a few espeak-ng at a time keep
        # the machine's cores for calls
        self._slots = asyncio.Semaphore(concurrency)

    @staticmethod
    def key(text: str, voice: str, rate: int) -> str:
        """The cache key of one utterance."""
        return hashlib.sha256(f"{voice}\0{rate}\0{text}".encode()).hexdigest()

    def path_for(self, text: str, voice: str, rate: int) -> Path:
        """Where the utterance is (or will be) cached."""
        key = self.key(text, voice, rate)
        return self.cache_dir / key[:2] / f"{key}.wav"

    async def speak(self, text: str, voice: str, rate: int) -> Path:
        """An 8 kHz WAV file of ``text`` in ``voice`` at ``rate`` words per minute."""
        text = " ".join(text.split())
        if not text:
            raise SpeechError("no text to speak")
        if len(text) > MAX_TEXT:
            raise SpeechError(f"text too long to speak ({len(text)} > {MAX_TEXT} characters)")
        path = self.path_for(text, voice, rate)
        if path.exists():
            with contextlib.suppress(OSError):
                os.utime(path)
            return path
        key = path.stem
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            async with self._slots:
                await self._synthesise(text, voice, rate, path)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(path)
        finally:
            del self._pending[key]
        self.syntheses += 1
        await asyncio.to_thread(self._account, path)
        return path

    async def _synthesise(self, text: str, voice: str, rate: int, path: Path) -> None:
        executable = shutil.which(self.command)
        if executable is None:
            raise SpeechError(
                f"{self.command} not found: install Debian's espeak-ng "
                "(`make run` and `make test` install it when missing)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".tts-") as tmp:
            raw = os.path.join(tmp, "espeak.wav")
            args = [executable, "-v", voice, "-s", str(rate), "-w", raw, "--stdin"]
            proc = await asyncio.create_subprocess_exec(
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                _, err = await asyncio.wait_for(proc.communicate(text.encode()), self.timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise SpeechError(
                    f"{self.command} did not finish within {self.timeout} s"
                ) from None
            except BaseException:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
                raise
            message = err.decode(errors="replace").strip()
            if proc.returncode != 0:
                raise SpeechError(
                    f"{self.command} failed (exit {proc.returncode}) for voice {voice!r}: "
                    f"{message or 'no message'}"
                )
            try:
                await asyncio.to_thread(convert_file, raw, path)
            except ConversionError as exc:
                # espeak-ng says an unknown voice on stderr yet exits 0 with no audio
                raise SpeechError(
                    f"{self.command} produced no usable audio for voice {voice!r}"
                    f"{': ' + message if message else ''} ({exc})"
                ) from None
        log.info("tts_synthesised", voice=voice, rate=rate, chars=len(text), file=str(path))

    def _account(self, added: Path) -> None:
        """Record a new entry and evict the least recently used beyond the bound."""
        with self._accounting:
            self._account_locked(added)

    def _account_locked(self, added: Path) -> None:
        if self._sizes is None:
            self._sizes = {}
            for entry in self.cache_dir.glob("??/*.wav"):
                if entry.name.startswith("."):
                    continue  # a conversion under way
                with contextlib.suppress(OSError):
                    self._sizes[entry] = entry.stat().st_size
        with contextlib.suppress(OSError):
            self._sizes[added] = added.stat().st_size
        total = sum(self._sizes.values())
        if total <= self.cache_bytes:
            return
        ages: list[tuple[float, Path]] = []
        for entry in self._sizes:
            try:
                ages.append((entry.stat().st_mtime, entry))
            except OSError:
                ages.append((0.0, entry))
        ages.sort()
        evicted = 0
        for _, entry in ages:
            if total <= self.cache_bytes:
                break
            if entry == added:
                continue
            total -= self._sizes.pop(entry)
            with contextlib.suppress(OSError):
                entry.unlink()
            evicted += 1
        if evicted:
            log.info("tts_cache_evicted", entries=evicted, bytes=total)
