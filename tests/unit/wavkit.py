"""WAV bytes made by hand and tones measured by FFT, for the WAV and music-on-hold tests."""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt


def tone(
    freq: float, rate: int, seconds: float = 1.0, amp: float = 10000
) -> npt.NDArray[np.float64]:
    t = np.arange(int(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def level_at(x: npt.ArrayLike, freq: float, rate: int = 8000) -> float:
    """Amplitude of the component at freq (Hann-windowed FFT, middle of the signal)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[len(x) // 4 : 3 * len(x) // 4]
    win = np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x * win)) * 2 / win.sum()
    k = round(freq * len(x) / rate)
    return float(spec[max(k - 2, 0) : k + 3].max())


def riff(fmt: bytes, data: bytes, extra: bytes = b"") -> bytes:
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(tag: int, channels: int, rate: int, bits: int) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
