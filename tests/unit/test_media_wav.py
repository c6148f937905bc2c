"""WAV loading, conversion, rejection and recording output."""

from __future__ import annotations

import struct
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from media import g711
from media.wav import RecordingWriter, load_wav, read_wav, resample, write_wav
from tests.unit.wavkit import fmt_chunk, level_at, riff, tone


def test_8k_mono_16bit_loads_unchanged(tmp_path: Path) -> None:
    pcm = np.random.default_rng(1).integers(-32768, 32768, 8000).astype(np.int16)
    write_wav(tmp_path / "a.wav", pcm)
    out = load_wav(tmp_path / "a.wav")
    assert out.dtype == np.int16 and np.array_equal(out, pcm)


@pytest.mark.parametrize("rate", [11025, 16000, 22050, 32000, 44100, 48000, 96000, 6000])
def test_resampled_tone_keeps_frequency_and_level(tmp_path: Path, rate: int) -> None:
    write_wav(tmp_path / "t.wav", np.round(tone(1000, rate)).astype(np.int16), rate)
    out = load_wav(tmp_path / "t.wav")
    assert abs(len(out) - 8000) <= 1
    assert level_at(out, 1000) == pytest.approx(10000, rel=0.02)
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert int(np.argmax(spectrum)) * 8000 / len(out) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(
    ("rate", "freq"), [(44100, 5000), (48000, 6500), (16000, 4600), (22050, 7000)]
)
def test_resampler_rejects_aliases(rate: int, freq: float) -> None:
    out = resample(tone(freq, rate, 2.0), rate, 8000)
    alias = abs(8000 - freq) if freq < 8000 else freq - 8000
    assert level_at(out, alias) < 10000 * 10 ** (-60 / 20)  # >= 60 dB rejection


@pytest.mark.parametrize(("rate", "freq"), [(44100, 3400), (48000, 300), (16000, 3400)])
def test_resampler_passband(rate: int, freq: float) -> None:
    out = resample(tone(freq, rate, 2.0), rate, 8000)
    assert level_at(out, freq) == pytest.approx(10000, rel=0.06)  # within 0.5 dB


def test_stereo_is_downmixed(tmp_path: Path) -> None:
    left = np.round(tone(500, 8000)).astype(np.int16)
    right = np.round(tone(1500, 8000)).astype(np.int16)
    write_wav(tmp_path / "s.wav", np.stack([left, right], axis=1))
    out = load_wav(tmp_path / "s.wav")
    assert level_at(out, 500) == pytest.approx(5000, rel=0.02)
    assert level_at(out, 1500) == pytest.approx(5000, rel=0.02)


def _as_pcm(x: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
    return np.round(x).astype(np.int16)


def _u8(x: npt.NDArray[np.float64]) -> bytes:
    return (np.round(x / 256) + 128).astype(np.uint8).tobytes()


def _s24(x: npt.NDArray[np.float64]) -> bytes:
    v = (np.round(x) * 256).astype(np.int32).astype("<i4").tobytes()
    return b"".join(v[i : i + 3] for i in range(0, len(v), 4))  # low 3 bytes, little-endian


def _s32(x: npt.NDArray[np.float64]) -> bytes:
    return (np.round(x) * 65536).astype("<i4").tobytes()


def _f32(x: npt.NDArray[np.float64]) -> bytes:
    return (x / 32768).astype("<f4").tobytes()


def _alaw(x: npt.NDArray[np.float64]) -> bytes:
    return g711.encode(_as_pcm(x), g711.PT_PCMA).tobytes()


def _ulaw(x: npt.NDArray[np.float64]) -> bytes:
    return g711.encode(_as_pcm(x), g711.PT_PCMU).tobytes()


@pytest.mark.parametrize(
    ("tag", "bits", "encode"),
    [(1, 8, _u8), (1, 24, _s24), (1, 32, _s32), (3, 32, _f32), (6, 8, _alaw), (7, 8, _ulaw)],
)
def test_other_sample_formats(
    tmp_path: Path, tag: int, bits: int, encode: Callable[[npt.NDArray[np.float64]], bytes]
) -> None:
    """read_wav decodes them (analysis); players refuse them: only 16-bit PCM plays."""
    x = tone(1000, 8000, 0.5)
    path = tmp_path / "f.wav"
    path.write_bytes(riff(fmt_chunk(tag, 1, 8000, bits), encode(x)))
    samples, info = read_wav(path)
    assert samples.shape == (4000, 1) and info.bits_per_sample == bits
    assert level_at(samples[:, 0], 1000) == pytest.approx(10000, rel=0.03)
    with pytest.raises(ValueError, match=f"{bits}-bit .* cannot be played; convert") as err:
        load_wav(path)
    assert str(path) in str(err.value)


def test_extensible_pcm(tmp_path: Path) -> None:
    base = fmt_chunk(0xFFFE, 1, 8000, 16)
    ext = struct.pack("<HHI", 22, 16, 4) + struct.pack("<H", 1) + bytes(14)
    pcm = np.arange(100, dtype="<i2")
    (tmp_path / "e.wav").write_bytes(riff(base + ext, pcm.tobytes()))
    assert np.array_equal(load_wav(tmp_path / "e.wav"), pcm)


def test_odd_chunks_are_skipped(tmp_path: Path) -> None:
    pcm = np.arange(10, dtype="<i2")
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd size: padded
    (tmp_path / "l.wav").write_bytes(riff(fmt_chunk(1, 1, 8000, 16), pcm.tobytes(), extra))
    assert np.array_equal(load_wav(tmp_path / "l.wav"), pcm)


BAD = [
    ("not a WAV", b"ID3\x03 an mp3 file", "not a WAV file"),
    ("empty", b"", "not a WAV file"),
    ("mp3 in wav", riff(fmt_chunk(0x55, 1, 8000, 0), b"\x00" * 10), "MP3"),
    ("gsm", riff(fmt_chunk(0x31, 1, 8000, 0), b"\x00" * 10), "GSM"),
    (
        "zero channels",
        riff(struct.pack("<HHIIHH", 1, 0, 8000, 0, 0, 16), b"\x00" * 10),
        "0 channels",
    ),
    ("bad rate", riff(fmt_chunk(1, 1, 0, 16), b"\x00" * 10), "sample rate"),
    ("12 bits", riff(struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 12), b"\x00" * 10), "12-bit"),
    (
        "bad align",
        riff(struct.pack("<HHIIHH", 1, 2, 8000, 16000, 2, 16), b"\x00" * 10),
        "block align",
    ),
    ("no data", riff(fmt_chunk(1, 1, 8000, 16), b"")[:-8], "no data chunk"),
    ("no samples", riff(fmt_chunk(1, 1, 8000, 16), b""), "no audio"),
    ("truncated", riff(fmt_chunk(1, 1, 8000, 16), b"\x00" * 1000)[:-500], "truncated"),
    ("short fmt", riff(b"\x01\x00", b"\x00\x00"), "fmt chunk too short"),
    ("no fmt", b"RIFF\x0c\x00\x00\x00WAVEdata\x00\x00\x00\x00", "no fmt"),
    ("rf64", b"RF64\xff\xff\xff\xffWAVE", "RF64"),
]


@pytest.mark.parametrize(("name", "data", "message"), BAD, ids=[b[0] for b in BAD])
def test_rejections_name_file_and_problem(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        load_wav(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        load_wav(tmp_path / "nope.wav")


def test_recording_writer(tmp_path: Path) -> None:
    path = tmp_path / "rec.wav"
    with RecordingWriter(path) as rec:
        for i in range(5):
            rec.write(np.full(160, i, np.int16), np.full(160, -i, np.int16))
        with pytest.raises(ValueError):
            rec.write(np.zeros(160, np.int16))
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (
            2,
            2,
            8000,
            800,
        )
    samples, info = read_wav(path)
    assert samples.shape == (800, 2) and info.channels == 2
    assert samples[-1, 0] == 4 and samples[-1, 1] == -4
