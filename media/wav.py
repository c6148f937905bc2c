"""WAV files for players (load as int16 mono 8 kHz) and recorders (write 8 kHz 16-bit).

Loading reads the RIFF chunks itself rather than through ``wave`` so it can accept what
``wave`` cannot (A-law/mu-law, WAVE_FORMAT_EXTENSIBLE, float) and say precisely what is
wrong with a file it rejects; every rejection is a ``ValueError`` naming the file.
Other sample rates are converted with a polyphase windowed-sinc (Kaiser) resampler,
stereo is downmixed.  Writing uses the stdlib ``wave`` module.
"""

from __future__ import annotations

import math
import os
import struct
import wave
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from media import g711

TARGET_RATE = 8000
MAX_FILE_BYTES = 1 << 30

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_ALAW = 0x0006
_FORMAT_MULAW = 0x0007
_FORMAT_EXTENSIBLE = 0xFFFE
_KNOWN_COMPRESSED = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0022: "DSP Group TrueSpeech",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0045: "G.726 ADPCM",
    0x0050: "MPEG",
    0x0055: "MPEG Layer 3 (MP3)",
    0x0064: "G.726 ADPCM",
    0x0065: "G.722 ADPCM",
    0x00FF: "AAC",
    0x1610: "HE-AAC",
    0x2000: "AC-3",
    0x674F: "Ogg Vorbis",
    0xF1AC: "FLAC",
}


@dataclass(frozen=True, slots=True)
class WavInfo:
    """What the fmt chunk of a WAV file said."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    frames: int


def _fail(path: str | os.PathLike[str], what: str) -> ValueError:
    return ValueError(f"{os.fspath(path)}: {what}")


def _chunks(data: bytes, path: str | os.PathLike[str]) -> dict[bytes, bytes]:
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX", b"RF64") or data[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (no RIFF/WAVE header)")
    if data[:4] != b"RIFF":
        raise _fail(path, f"{data[:4].decode()} WAV files are not supported")
    chunks: dict[bytes, bytes] = {}
    offset = 12
    while offset + 8 <= len(data):
        cid, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body_start = offset + 8
        if body_start + size > len(data):
            if cid == b"data":
                raise _fail(
                    path,
                    f"truncated: data chunk claims {size} bytes, "
                    f"only {len(data) - body_start} present",
                )
            raise _fail(path, f"truncated in the {cid!r} chunk")
        chunks.setdefault(cid, data[body_start : body_start + size])
        offset = body_start + size + (size & 1)
    return chunks


def read_wav(path: str | os.PathLike[str]) -> tuple[npt.NDArray[np.float64], WavInfo]:
    """Samples as float64 ``frames x channels`` in int16 scale, and the format info."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _fail(path, f"file too large ({size} bytes)")
        data = p.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None
    chunks = _chunks(data, path)
    fmt = chunks.get(b"fmt ")
    if fmt is None:
        raise _fail(path, "no fmt chunk")
    if len(fmt) < 16:
        raise _fail(path, f"fmt chunk too short ({len(fmt)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _FORMAT_EXTENSIBLE:
        if len(fmt) < 40:
            raise _fail(path, "WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        tag = struct.unpack_from("<H", fmt, 24)[0]  # first two bytes of the sub-format GUID
    if tag not in (_FORMAT_PCM, _FORMAT_FLOAT, _FORMAT_ALAW, _FORMAT_MULAW):
        name = _KNOWN_COMPRESSED.get(tag, "unknown")
        raise _fail(path, f"compressed format 0x{tag:04X} ({name}) not supported; use PCM")
    if channels == 0:
        raise _fail(path, "0 channels")
    if not 1000 <= rate <= 384_000:
        raise _fail(path, f"unsupported sample rate {rate} Hz")
    valid_bits = {
        _FORMAT_PCM: (8, 16, 24, 32),
        _FORMAT_FLOAT: (32, 64),
        _FORMAT_ALAW: (8,),
        _FORMAT_MULAW: (8,),
    }[tag]
    if bits not in valid_bits:
        raise _fail(path, f"{bits}-bit samples not supported for format 0x{tag:04X}")
    width = bits // 8
    if block_align != width * channels:
        raise _fail(path, f"block align {block_align} does not match {channels} x {bits} bits")
    raw = chunks.get(b"data")
    if raw is None:
        raise _fail(path, "no data chunk")
    frames = len(raw) // block_align
    if frames == 0:
        raise _fail(path, "contains no audio samples")
    raw = raw[: frames * block_align]
    samples = _decode(raw, tag, width)
    info = WavInfo(tag, channels, rate, bits, frames)
    return samples.reshape(frames, channels), info


def _decode(raw: bytes, tag: int, width: int) -> npt.NDArray[np.float64]:
    if tag in (_FORMAT_ALAW, _FORMAT_MULAW):
        codes = np.frombuffer(raw, dtype=np.uint8)
        pt = g711.PT_PCMA if tag == _FORMAT_ALAW else g711.PT_PCMU
        return g711.decode(codes, pt).astype(np.float64)
    if tag == _FORMAT_FLOAT:
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
    """Load a WAV file as int16 mono 8 kHz; raises ValueError naming the file and problem.

    8 kHz mono 16-bit PCM is returned unchanged; stereo is downmixed and other rates
    resampled.
    """
    samples, info = read_wav(path)
    if (
        info.format_tag == _FORMAT_PCM
        and info.bits_per_sample == 16
        and info.channels == 1
        and (info.sample_rate == TARGET_RATE)
    ):
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
        # kept open across calls on purpose: closed by close() / the context manager
        self._wave = wave.open(self.path, "wb")  # noqa: SIM115
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
        self.frames += n

    def close(self) -> None:
        """Finish the file (patches the header sizes)."""
        self._wave.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
