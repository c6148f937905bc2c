"""Audio files converted once to what the engine plays: 8 kHz mono 16-bit PCM WAV.

Every prompt reaches the switch through :func:`convert_file`: an upload, a recording made
by phone, the output of text-to-speech.  WAV files (PCM 8-32 bit, float, A-law, mu-law, any
rate and channel count) are decoded by :mod:`media.wav`, whose header walk catches a
truncated or mislabelled file; everything else (AIFF, FLAC, Ogg Vorbis, MP3, ADPCM WAV, ...)
by libsndfile through ``soundfile``, the decoder most Linux audio tools share, chosen over an
ffmpeg subprocess because it is a wheel on PyPI (no system package) and decodes in-process
without a shell-out per upload.  Channels are averaged; the rate is converted by
:func:`media.wav.resample` (a Kaiser windowed-sinc low-pass, so nothing above 4 kHz folds
back into the band).  Any failure is a :class:`ConversionError` naming the file, and the
destination is written atomically (a temporary file renamed into place), so a failed
conversion leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from config.audio import inspect_wav
from media.wav import TARGET_RATE, read_wav, resample, write_wav

__all__ = ["ConversionError", "Converted", "convert_file", "decode_file", "to_telephony"]

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# Longer than any prompt or greeting should be; a bound on the memory one upload may take.
MAX_SECONDS = 10 * 60


class ConversionError(ValueError):
    """An audio file that cannot be converted; the message names the file and the reason."""


@dataclass(frozen=True, slots=True)
class Converted:
    """What a conversion found: the source's format and the result's length."""

    source_format: str
    source_rate: int
    source_channels: int
    samples: int  # at 8 kHz

    @property
    def seconds(self) -> float:
        """Duration of the converted audio."""
        return self.samples / TARGET_RATE


def _fail(path: str, what: str) -> ConversionError:
    return ConversionError(f"{path}: {what}")


def _is_riff_wave(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return len(head) == 12 and head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def decode_file(
    path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[npt.NDArray[np.float64], int, str]:
    """Samples (float64, ``frames x channels``, int16 scale), the rate and a format name."""
    name = os.fspath(path)
    try:
        size = os.stat(name).st_size
        riff = _is_riff_wave(name) if size else False
    except OSError as exc:
        raise _fail(name, f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise _fail(name, "the file is empty")
    if size > max_bytes:
        raise _fail(name, f"file too large ({size} bytes; the limit is {max_bytes})")
    if riff:
        try:
            layout = inspect_wav(name)
        except ValueError as exc:
            if "compressed format" not in str(exc):
                raise ConversionError(str(exc)) from None
            # ADPCM, GSM 6.10 and friends: libsndfile decodes what it knows.
        else:
            if layout.info.frames > MAX_SECONDS * layout.info.sample_rate:
                raise _fail(name, f"longer than {MAX_SECONDS // 60} minutes")
            samples, info = read_wav(name)
            return samples, info.sample_rate, "WAV"
    return _decode_with_libsndfile(name)


def _decode_with_libsndfile(name: str) -> tuple[npt.NDArray[np.float64], int, str]:
    import soundfile  # imported here: only uploads beyond plain WAV need libsndfile

    try:
        info = soundfile.info(name)
        if info.frames <= 0:
            raise _fail(name, "contains no audio samples")
        if info.frames > MAX_SECONDS * info.samplerate:
            raise _fail(name, f"longer than {MAX_SECONDS // 60} minutes")
        data, rate = soundfile.read(name, dtype="float64", always_2d=True)
    except soundfile.LibsndfileError as exc:
        raise _fail(name, f"not an audio file that can be read ({exc.error_string})") from None
    except (RuntimeError, TypeError) as exc:  # soundfile's other decoder failures
        raise _fail(name, f"not an audio file that can be read ({exc})") from None
    if not len(data):
        raise _fail(name, "contains no audio samples")
    data = np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0) * 32768.0
    return data, int(rate), f"{info.format} ({info.subtype})"


def to_telephony(samples: npt.NDArray[np.float64], rate: int) -> npt.NDArray[np.int16]:
    """``frames x channels`` float samples at ``rate`` as int16 mono 8 kHz (low-passed)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if rate != TARGET_RATE:
        mono = resample(mono, rate, TARGET_RATE)
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16)


def convert_file(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Converted:
    """Convert ``source`` to an 8 kHz mono 16-bit WAV at ``destination`` (atomically).

    Raises :class:`ConversionError` naming ``source``; ``destination`` is then untouched.
    """
    samples, rate, fmt = decode_file(source, max_bytes=max_bytes)
    audio = to_telephony(samples, rate)
    if not len(audio):
        raise _fail(os.fspath(source), "too short to hold any audio at 8 kHz")
    target = os.fspath(destination)
    directory = os.path.dirname(target) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".convert-", suffix=".wav", dir=directory)
    os.close(fd)
    try:
        write_wav(tmp, audio)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return Converted(fmt, rate, samples.shape[1], len(audio))
