"""Audio for call tests: tone WAVs to play, and the frequencies heard in a recording."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from media.wav import read_wav, write_wav

RATE = 8000
# DTMF row/column frequencies (ITU-T Q.23).
_KEYS = {
    "1": (697, 1209),
    "2": (697, 1336),
    "3": (697, 1477),
    "4": (770, 1209),
    "5": (770, 1336),
    "6": (770, 1477),
    "7": (852, 1209),
    "8": (852, 1336),
    "9": (852, 1477),
    "*": (941, 1209),
    "0": (941, 1336),
    "#": (941, 1477),
}


def tone(path: Path, frequency: float, seconds: float = 20.0) -> Path:
    """A WAV of one sine (8 kHz mono) for a phone to play."""
    t = np.arange(int(RATE * seconds)) / RATE
    write_wav(path, (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16), RATE)
    return path


def dtmf_tones(
    path: Path,
    digits: str,
    *,
    lead: float = 1.5,
    on: float = 0.12,
    off: float = 0.12,
    tail: float = 10.0,
) -> Path:
    """A WAV of in-band DTMF key presses after ``lead`` seconds of silence."""
    parts = [np.zeros(int(RATE * lead))]
    t = np.arange(int(RATE * on)) / RATE
    for key in digits:
        low, high = _KEYS[key]
        parts.append((np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)) * 6000)
        parts.append(np.zeros(int(RATE * off)))
    parts.append(np.zeros(int(RATE * tail)))
    write_wav(path, np.concatenate(parts).astype(np.int16), RATE)
    return path


def dominant(samples: npt.NDArray[np.int16], rate: int = RATE) -> float:
    """The strongest frequency of a stretch of audio (Hz)."""
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * window))
    spectrum[:5] = 0  # DC
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def channel(path: Path, index: int = 0, skip: float = 0.5) -> npt.NDArray[np.int16]:
    """One channel of a WAV without its first ``skip`` seconds (buffers filling)."""
    samples, info = read_wav(path)
    mono = samples[:, index][int(info.sample_rate * skip) :]
    assert len(mono) > info.sample_rate, f"{path} holds {len(mono)} samples"
    return mono


def file_dominant(path: Path, index: int = 0) -> float:
    return dominant(channel(path, index))


def windows(samples: npt.NDArray[np.int16], seconds: float = 0.5) -> list[float]:
    """The dominant frequency of each window of a recording, silent windows as 0."""
    size = int(RATE * seconds)
    out = []
    for start in range(0, len(samples) - size + 1, size):
        chunk = samples[start : start + size]
        out.append(dominant(chunk) if np.abs(chunk).max() > 300 else 0.0)
    return out


def heard(phone_dir: Path) -> Path:
    """What a baresip phone (peers.baresip.BaresipPhone) received, as it decoded it."""
    found = sorted((phone_dir / "rec").glob("dump-*-dec.wav"))
    assert found, f"no recording in {phone_dir / 'rec'}"
    return found[-1]


def level(samples: npt.NDArray[np.int16], frequency: float, rate: int = RATE) -> float:
    """How strongly ``frequency`` sounds in a stretch of audio, relative to its loudest
    component (1.0: it is the loudest; ~0: absent)."""
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * window))
    spectrum[:5] = 0
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    peak = spectrum.max()
    if peak == 0:
        return 0.0
    near = (freqs > frequency - 15) & (freqs < frequency + 15)
    return float(spectrum[near].max() / peak)


def stretch(path: Path, start: float, end: float) -> npt.NDArray[np.int16]:
    """Seconds ``start`` to ``end`` of a WAV's first channel."""
    samples, info = read_wav(path)
    mono = samples[:, 0]
    piece = mono[int(start * info.sample_rate) : int(end * info.sample_rate)]
    assert len(piece) > info.sample_rate // 2, f"{path}: {len(mono)} samples"
    return piece


def growing(path: Path, rate: int = RATE) -> npt.NDArray[np.int16]:
    """The samples of a 16-bit mono WAV still being written (its sizes not yet final, as
    pjsua's recorder leaves them until closed): everything after the ``data`` chunk head."""
    raw = path.read_bytes()
    start = raw.find(b"data")
    assert start >= 0, f"{path}: no data chunk yet"
    body = raw[start + 8 :]
    return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.int16)


def similarity(heard: npt.NDArray[np.int16], sent: npt.NDArray[np.int16]) -> float:
    """How closely ``heard`` contains ``sent``: the correlation coefficient of ``sent``
    with the stretch of ``heard`` where it fits best (1.0: the same audio, whatever the
    gain; speech against other speech or silence stays well under 0.3)."""
    b = sent.astype(np.float64) - float(np.mean(sent))
    if not len(heard) or not np.any(b):
        return 0.0
    pad = np.zeros(len(b) // 2)  # ``sent`` may stick out of either end of ``heard``
    a = np.concatenate([pad, heard.astype(np.float64), pad])
    size = 1 << (len(a) + len(b)).bit_length()
    lags = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    best = int(np.argmax(lags[: len(a) - len(b) + 1]))
    piece = a[best : best + len(b)]
    piece = piece - float(np.mean(piece))
    norm = float(np.linalg.norm(piece) * np.linalg.norm(b))
    return float(np.dot(piece, b) / norm) if norm else 0.0
