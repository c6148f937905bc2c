"""Audio conversion for prompts: any WAV, AIFF and what libsndfile reads, to 8 kHz mono 16-bit."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from media.convert import ConversionError, convert_file
from media.wav import read_wav


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> npt.NDArray:
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


def rms(x: npt.NDArray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64)))))


def converted(tmp_path: Path, source: Path) -> npt.NDArray[np.int16]:
    out = tmp_path / "out" / "prompt.wav"
    convert_file(source, out)
    samples, info = read_wav(out)
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (8000, 1, 16)
    return samples[:, 0].astype(np.int16)


@pytest.mark.parametrize(
    ("rate", "subtype"),
    [
        (8000, "PCM_16"),
        (11025, "PCM_U8"),
        (16000, "PCM_24"),
        (22050, "PCM_32"),
        (44100, "FLOAT"),
        (48000, "DOUBLE"),
        (8000, "ULAW"),
        (8000, "ALAW"),
    ],
)
def test_wav_of_any_rate_and_width_keeps_a_1khz_tone(
    tmp_path: Path, rate: int, subtype: str
) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone(1000, rate), rate, subtype=subtype)
    out = converted(tmp_path, source)
    assert abs(len(out) - 8000) <= 2
    spectrum = np.abs(np.fft.rfft(out[800:-800]))
    assert abs(np.argmax(spectrum) * 8000 / len(out[800:-800]) - 1000) < 5
    # 0.5 of full scale: RMS 0.5/sqrt(2) * 32768 = 11585, G.711 costs a little
    assert rms(out[800:-800]) == pytest.approx(11585, rel=0.03)


@pytest.mark.parametrize("subtype", ["IMA_ADPCM", "MS_ADPCM", "GSM610"])
def test_compressed_wav_is_decoded_by_libsndfile(tmp_path: Path, subtype: str) -> None:
    source = tmp_path / "in.wav"
    rate = 8000 if subtype == "GSM610" else 22050
    soundfile.write(source, tone(1000, rate), rate, subtype=subtype)
    out = converted(tmp_path, source)
    spectrum = np.abs(np.fft.rfft(out[800:-800]))
    assert abs(np.argmax(spectrum) * 8000 / len(out[800:-800]) - 1000) < 5
    assert rms(out[800:-800]) == pytest.approx(11585, rel=0.15)


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    source = tmp_path / "stereo.wav"
    left = tone(1000, 16000)
    soundfile.write(source, np.stack([left, np.zeros_like(left)], axis=1), 16000)
    out = converted(tmp_path, source)
    assert rms(out[800:-800]) == pytest.approx(11585 / 2, rel=0.03)


@pytest.mark.parametrize(
    ("fmt", "subtype"),
    [("AIFF", "PCM_16"), ("AIFF", "PCM_24"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
     ("MP3", "MPEG_LAYER_III")],
)  # fmt: skip
def test_aiff_and_other_formats_go_through_libsndfile(
    tmp_path: Path, fmt: str, subtype: str
) -> None:
    source = tmp_path / f"in.{fmt.lower()}"
    soundfile.write(source, tone(440, 44100, 1.5), 44100, format=fmt, subtype=subtype)
    out = converted(tmp_path, source)
    assert abs(len(out) - 12000) <= 2
    spectrum = np.abs(np.fft.rfft(out[800:-800]))
    assert abs(np.argmax(spectrum) * 8000 / len(out[800:-800]) - 440) < 5


def test_a_6khz_tone_does_not_alias_and_a_1khz_tone_keeps_its_level(tmp_path: Path) -> None:
    high, low = tmp_path / "6k.wav", tmp_path / "1k.wav"
    soundfile.write(high, tone(6000, 44100), 44100, subtype="PCM_16")
    soundfile.write(low, tone(1000, 44100), 44100, subtype="PCM_16")
    out_high, out_low = converted(tmp_path, high), converted(tmp_path, low)
    # Naive decimation would fold 6 kHz onto 2 kHz at nearly full level.
    assert rms(out_high[800:-800]) < rms(out_low[800:-800]) / 1000  # below -60 dB
    assert rms(out_low[800:-800]) == pytest.approx(11585, rel=0.03)


def test_the_result_is_written_in_place_of_an_older_version(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    soundfile.write(source, tone(1000, 8000, 0.5), 8000, subtype="PCM_16")
    out = tmp_path / "prompt.wav"
    out.write_bytes(b"old")
    info = convert_file(source, out)
    assert info.samples == 4000 and info.seconds == 0.5
    assert read_wav(out)[1].frames == 4000
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _pcm_wav(path: Path, seconds: float = 0.5) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((tone(500, 8000, seconds) * 32767).astype("<i2").tobytes())


def _truncated_wav(path: Path) -> None:
    _pcm_wav(path)
    path.write_bytes(path.read_bytes()[:2000])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_text("this is not audio at all\n" * 20), "not an audio file"),
        (lambda p: _truncated_wav(p), "truncated"),
        (lambda p: p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt "), "no fmt chunk"),
        (lambda p: p.write_bytes(b"\x00" * 4000), "not an audio file"),
    ],
    ids=["empty", "text-named-wav", "truncated-data", "truncated-header", "zeros"],
)
def test_bad_files_are_refused_naming_the_file(tmp_path: Path, make: object, reason: str) -> None:
    source = tmp_path / "upload.wav"
    make(source)  # type: ignore[operator]
    out = tmp_path / "lib" / "prompt.wav"
    with pytest.raises(ConversionError) as caught:
        convert_file(source, out)
    assert str(caught.value).startswith(str(source))
    assert reason in str(caught.value)
    assert not out.exists()
    assert not (tmp_path / "lib").exists() or list((tmp_path / "lib").iterdir()) == []


def test_a_file_over_the_size_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    source = tmp_path / "huge.wav"
    _pcm_wav(source, seconds=2)
    with pytest.raises(ConversionError, match=r"huge\.wav: file too large \(\d+ bytes; the limit"):
        convert_file(source, tmp_path / "out.wav", max_bytes=10_000)
    assert not (tmp_path / "out.wav").exists()


def test_a_wav_without_samples_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "silent.wav"
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 0)
    source.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(ConversionError, match=r"silent\.wav: contains no audio samples"):
        convert_file(source, tmp_path / "out.wav")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"nowhere\.wav: cannot read"):
        convert_file(tmp_path / "nowhere.wav", tmp_path / "out.wav")
