"""WAV files for players (load as int16 mono 8 kHz) and recorders (write 8 kHz 16-bit).

Files are checked by :mod:`config.audio` (the same check the configuration runs on the
files it names), so a rejection is a ``ValueError`` naming the file and the problem.
:func:`read_wav` decodes any PCM, float, A-law or mu-law WAV (analysis, tests);
:func:`load_wav` is what players use: 16-bit PCM only, 8 kHz mono as is, other rates
converted with a polyphase windowed-sinc (Kaiser) resampler, stereo downmixed.  Writing
uses the stdlib ``wave`` module.
"""

from __future__ import annotations

import math
import os
import wave
from types import TracebackType

import numpy as np
import numpy.typing as npt

from config.audio import (
    FORMAT_ALAW,
    FORMAT_FLOAT,
    FORMAT_MULAW,
    WavInfo,
    WavLayout,
    check_playable,
    inspect_wav,
)
from media import g711

TARGET_RATE = 8000


def read_wav(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.float64], WavInfo]:
    """Samples as float64 ``frames x channels`` in int16 scale, and the format info.

    Decodes PCM 8-32 bit, float, A-law and mu-law (for analysing recordings and tests);
    players load through :func:`load_wav`, which takes 16-bit PCM only.
    """
    return _read(path, inspect_wav(path))


def _read(
    path: str | os.PathLike[str], layout: WavLayout
) -> tuple[npt.NDArray[np.float64], WavInfo]:
    info = layout.info
    try:
        with open(path, "rb") as f:
            f.seek(layout.data_offset)
            raw = f.read(layout.data_bytes)
    except OSError as exc:
        raise ValueError(f"{os.fspath(path)}: cannot read: {exc.strerror or exc}") from None
    if len(raw) != layout.data_bytes:
        raise ValueError(f"{os.fspath(path)}: the file changed while being read")
    samples = _decode(raw, info.format_tag, info.bits_per_sample // 8)
    return samples.reshape(info.frames, info.channels), info


def _decode(raw: bytes, tag: int, width: int) -> npt.NDArray[np.float64]:
    if tag in (FORMAT_ALAW, FORMAT_MULAW):
        codes = np.frombuffer(raw, dtype=np.uint8)
        pt = g711.PT_PCMA if tag == FORMAT_ALAW else g711.PT_PCMU
        return g711.decode(codes, pt).astype(np.float64)
    if tag == FORMAT_FLOAT:
        dtype = np.dtype("<f4") if width == 4 else np.dtype("<f8")
        x = np.frombuffer(raw, dtype=dtype).astype(np.float64)
        return np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0) * 32768.0
    if width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v & 0x800000, v - 0x1000000, v)
        return v.astype(np.float64) / 256.0
    return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0


def _kaiser_sinc(up: int, down: int, zeros: int, beta: float) -> npt.NDArray[np.float64]:
    """Low-pass prototype at the upsampled rate, gain ``up``, cutoff below both Nyquists."""
    cutoff = 0.5 / max(up, down) * 0.925  # cycles per upsampled sample, ~3.7 kHz for 8 kHz out
    half = math.ceil(zeros / (2 * cutoff))
    n = np.arange(-half, half + 1, dtype=np.float64)
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(len(n), beta)
    return np.asarray(up * h / h.sum(), dtype=np.float64)


def resample(
    x: npt.NDArray[np.float64],
    rate_in: int,
    rate_out: int,
    *,
    zeros: int = 40,
    beta: float = 8.6,
) -> npt.NDArray[np.float64]:
    """Resample a 1-D signal by the rational factor rate_out/rate_in (polyphase FIR).

    ``zeros`` sinc zero crossings each side; beta 8.6 gives ~-85 dB stop band.  For 8 kHz
    output the pass band is flat to 3.5 kHz (-6 dB at 3.7 kHz, < -80 dB from 4 kHz).
    """
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError("sample rates must be positive")
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.float64).copy()
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    h = _kaiser_sinc(up, down, zeros, beta)
    half = (len(h) - 1) // 2
    taps = -(-len(h) // up)
    hp = np.zeros(taps * up)
    hp[: len(h)] = h
    # float32 halves the memory traffic of the gather; its error (~1e-6) is far below int16 LSB
    poly = np.ascontiguousarray(hp.reshape(taps, up).T, dtype=np.float32)
    n_out = -(-len(x) * up // down)
    pad_front = taps
    xp = np.concatenate(
        [np.zeros(pad_front), np.asarray(x, dtype=np.float64), np.zeros(taps + half // up + 2)]
    ).astype(np.float32)
    out = np.empty(n_out)
    q = np.arange(taps)
    chunk = max(1, (1 << 21) // taps)
    for start in range(0, n_out, chunk):
        m = np.arange(start, min(start + chunk, n_out), dtype=np.int64)
        t = m * down + half
        i_max = t // up
        phase = t - i_max * up
        idx = (i_max + pad_front)[:, None] - q[None, :]
        out[start : start + len(m)] = np.einsum("mq,mq->m", poly[phase], xp[idx])
    return out


def load_wav(path: str | os.PathLike[str]) -> npt.NDArray[np.int16]:
    """Load a 16-bit PCM WAV file as int16 mono 8 kHz; ValueError names the file and problem.

    8 kHz mono is returned unchanged; other channel counts are downmixed and other rates
    resampled.  Other sample formats (8-bit, 24-bit, float, A-law, ...) are refused.
    """
    samples, info = _read(path, check_playable(path))
    if info.channels == 1 and info.sample_rate == TARGET_RATE:
        return samples[:, 0].astype(np.int16)
    mono = samples.mean(axis=1)
    if info.sample_rate != TARGET_RATE:
        mono = resample(mono, info.sample_rate, TARGET_RATE)
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16)


def write_wav(
    path: str | os.PathLike[str], samples: npt.NDArray[np.int16], rate: int = TARGET_RATE
) -> None:
    """Write int16 samples (``frames`` or ``frames x channels``) as a PCM WAV file."""
    if samples.dtype != np.int16:
        raise ValueError("samples must be int16")
    frames = samples.reshape(len(samples), -1)
    with wave.open(os.fspath(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.astype("<i2").tobytes())


class RecordingWriter:
    """Streaming 2-channel 8 kHz 16-bit WAV writer for call recordings (caller, callee).

    The RIFF sizes are patched on :meth:`close`, so a recording is valid once closed.
    """

    def __init__(self, path: str | os.PathLike[str], channels: int = 2, rate: int = TARGET_RATE):
        self.path = os.fspath(path)
        self.channels = channels
        # kept open across calls on purpose: closed by close() / the context manager. Our
        # own file object, so each write reaches the OS at once (flush) rather than
        # waiting in Python's buffer, which a killed process would lose.
        self._file = open(self.path, "wb")  # noqa: SIM115
        self._wave = wave.open(self._file, "wb")  # noqa: SIM115
        self._wave.setnchannels(channels)
        self._wave.setsampwidth(2)
        self._wave.setframerate(rate)
        self.frames = 0

    def write(self, *channels: npt.NDArray[np.int16]) -> None:
        """Append one block per channel (equal lengths, int16)."""
        if len(channels) != self.channels:
            raise ValueError(f"expected {self.channels} channels, got {len(channels)}")
        n = len(channels[0])
        if any(len(c) != n or c.dtype != np.int16 for c in channels):
            raise ValueError("channel blocks must be int16 of equal length")
        inter = np.empty((n, self.channels), dtype="<i2")
        for i, c in enumerate(channels):
            inter[:, i] = c
        self._wave.writeframesraw(inter.tobytes())
        self._file.flush()
        self.frames += n

    def close(self) -> None:
        """Finish the file (patches the header sizes)."""
        try:
            self._wave.close()
        finally:
            self._file.close()  # wave closes only files it opened itself

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
