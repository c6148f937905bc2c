"""Audio files named by the configuration: the WAV header check, standard library only.

The configuration checks every music-on-hold and prompt file when it is loaded (so
``check-config`` reports a bad file by its place in the file), and ``media.wav`` loads the
samples through the same inspection, so both say the same thing about a file.  The RIFF
chunks are walked by seeking, reading only chunk headers and the fmt chunk, so checking a
large song costs a few small reads.

What plays: 16-bit PCM WAV.  8 kHz mono plays as is; other rates and channel counts are
converted when loaded.  Anything else is refused with the reason, naming the file.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "FORMAT_ALAW",
    "FORMAT_FLOAT",
    "FORMAT_MULAW",
    "FORMAT_PCM",
    "MAX_FILE_BYTES",
    "WavInfo",
    "WavLayout",
    "check_playable",
    "inspect_wav",
]

MAX_FILE_BYTES = 1 << 30

FORMAT_PCM = 0x0001
FORMAT_FLOAT = 0x0003
FORMAT_ALAW = 0x0006
FORMAT_MULAW = 0x0007
_FORMAT_EXTENSIBLE = 0xFFFE
_SAMPLE_FORMATS = {
    FORMAT_PCM: ("PCM", (8, 16, 24, 32)),
    FORMAT_FLOAT: ("floating-point", (32, 64)),
    FORMAT_ALAW: ("A-law", (8,)),
    FORMAT_MULAW: ("mu-law", (8,)),
}
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
_CONVERT = "convert it to 16-bit PCM WAV (8 kHz mono plays without conversion)"


@dataclass(frozen=True, slots=True)
class WavInfo:
    """What the fmt chunk of a WAV file said."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    frames: int


@dataclass(frozen=True, slots=True)
class WavLayout:
    """A checked WAV file: its format and where its whole frames of samples lie."""

    info: WavInfo
    data_offset: int
    data_bytes: int


def _fail(path: str | os.PathLike[str], what: str) -> ValueError:
    return ValueError(f"{os.fspath(path)}: {what}")


def _walk_chunks(
    f: BinaryIO, size: int, path: str | os.PathLike[str]
) -> dict[bytes, tuple[int, int]]:
    """(body offset, length) of each chunk (the first of each id); checks none is cut off."""
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (no RIFF/WAVE header)")
    if head[:4] != b"RIFF":
        raise _fail(path, f"{head[:4].decode()} WAV files are not supported")
    chunks: dict[bytes, tuple[int, int]] = {}
    offset = 12
    while offset + 8 <= size:
        f.seek(offset)
        cid, length = struct.unpack("<4sI", f.read(8))
        body = offset + 8
        if body + length > size:
            if cid == b"data":
                raise _fail(
                    path,
                    f"truncated: data chunk claims {length} bytes, only {size - body} present",
                )
            raise _fail(path, f"truncated in the {cid!r} chunk")
        chunks.setdefault(cid, (body, length))
        offset = body + length + (length & 1)
    return chunks


def inspect_wav(path: str | os.PathLike[str]) -> WavLayout:
    """Check a WAV file's header and chunks; raise ValueError naming the file and problem.

    Accepts every sample format ``media.wav.read_wav`` can decode (PCM 8-32 bit, float,
    A-law, mu-law); :func:`check_playable` narrows that to what players take.
    """
    try:
        size = os.stat(path).st_size
        if size > MAX_FILE_BYTES:
            raise _fail(path, f"file too large ({size} bytes)")
        with open(path, "rb") as f:
            chunks = _walk_chunks(f, size, path)
            if b"fmt " not in chunks:
                raise _fail(path, "no fmt chunk")
            fmt_at, fmt_length = chunks[b"fmt "]
            f.seek(fmt_at)
            fmt = f.read(min(fmt_length, 40))
    except OSError as exc:
        raise _fail(path, f"cannot read: {exc.strerror or exc}") from None
    if len(fmt) < 16:
        raise _fail(path, f"fmt chunk too short ({len(fmt)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _FORMAT_EXTENSIBLE:
        if len(fmt) < 40:
            raise _fail(path, "WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        tag = struct.unpack_from("<H", fmt, 24)[0]  # first two bytes of the sub-format GUID
    if tag not in _SAMPLE_FORMATS:
        name = _KNOWN_COMPRESSED.get(tag, "unknown")
        raise _fail(path, f"compressed format 0x{tag:04X} ({name}) not supported; use PCM")
    if channels == 0:
        raise _fail(path, "0 channels")
    if not 1000 <= rate <= 384_000:
        raise _fail(path, f"unsupported sample rate {rate} Hz")
    if bits not in _SAMPLE_FORMATS[tag][1]:
        raise _fail(path, f"{bits}-bit samples not supported for format 0x{tag:04X}")
    if block_align != bits // 8 * channels:
        raise _fail(path, f"block align {block_align} does not match {channels} x {bits} bits")
    if b"data" not in chunks:
        raise _fail(path, "no data chunk")
    data_at, data_length = chunks[b"data"]
    frames = data_length // block_align
    if frames == 0:
        raise _fail(path, "contains no audio samples")
    info = WavInfo(tag, channels, rate, bits, frames)
    return WavLayout(info, data_at, frames * block_align)


def check_playable(path: str | os.PathLike[str]) -> WavLayout:
    """:func:`inspect_wav`, then refuse what players do not take (anything but 16-bit PCM)."""
    layout = inspect_wav(path)
    info = layout.info
    if info.format_tag != FORMAT_PCM or info.bits_per_sample != 16:
        name = _SAMPLE_FORMATS[info.format_tag][0]
        bits = info.bits_per_sample
        raise _fail(path, f"{bits}-bit {name} samples cannot be played; {_CONVERT}")
    return layout
