"""ITU-T G.711 (PCMU / PCMA) as numpy lookup tables.

Decoding is a gather from a 256-entry int16 table, encoding a gather from a 65,536-entry
uint8 table indexed by the uint16 view of the int16 samples, so a whole tick of every
stream (a ``streams x samples`` matrix) is coded in one numpy call.  The tables are built
once at import from the G.711 segment algorithm (the reference ``g711.c`` formulation).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

PT_PCMU: Final = 0
PT_PCMA: Final = 8

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 8159  # in 14-bit units: the largest magnitude mu-law can express


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _segment(magnitude: npt.NDArray[np.int32], first_end: int) -> npt.NDArray[np.int32]:
    """Segment number 0..8 of each magnitude; segment ends are first_end * 2**k - 1."""
    ends = (first_end << np.arange(8, dtype=np.int32)) - 1
    return np.searchsorted(ends, magnitude, side="left").astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
    pcm >>= 2  # G.711 mu-law works on 14-bit samples
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(mag, 0x40)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)
    pcm >>= 3  # G.711 A-law works on 13-bit samples
    mask = np.where(pcm >= 0, 0xD5, 0x55)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = _segment(mag, 0x20)
    shift = np.where(seg < 2, 1, seg)
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


ULAW_DECODE: Final[npt.NDArray[np.int16]] = _build_ulaw_decode()
ALAW_DECODE: Final[npt.NDArray[np.int16]] = _build_alaw_decode()
ULAW_ENCODE: Final[npt.NDArray[np.uint8]] = _build_ulaw_encode()
ALAW_ENCODE: Final[npt.NDArray[np.uint8]] = _build_alaw_encode()
for _table in (ULAW_DECODE, ALAW_DECODE, ULAW_ENCODE, ALAW_ENCODE):
    _table.flags.writeable = False

# Mixed-codec ticks: row r of a matrix uses table block codec_index[r] (0 = PCMU, 1 = PCMA).
_DECODE_BOTH: Final = np.concatenate([ULAW_DECODE, ALAW_DECODE])
_ENCODE_BOTH: Final = np.concatenate([ULAW_ENCODE, ALAW_ENCODE])

_DECODE_TABLES: Final = {PT_PCMU: ULAW_DECODE, PT_PCMA: ALAW_DECODE}
_ENCODE_TABLES: Final = {PT_PCMU: ULAW_ENCODE, PT_PCMA: ALAW_ENCODE}


def _decode_table(payload_type: int) -> npt.NDArray[np.int16]:
    try:
        return _DECODE_TABLES[payload_type]
    except KeyError:
        raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)") from None


def _encode_table(payload_type: int) -> npt.NDArray[np.uint8]:
    try:
        return _ENCODE_TABLES[payload_type]
    except KeyError:
        raise ValueError(f"payload type {payload_type} is not G.711 (0 or 8)") from None


def decode(
    codes: npt.NDArray[np.uint8],
    payload_type: int,
    out: npt.NDArray[np.int16] | None = None,
) -> npt.NDArray[np.int16]:
    """Decode G.711 codes (uint8, any shape) to int16 linear samples of the same shape."""
    if codes.dtype != np.uint8:
        raise ValueError(f"G.711 codes must be uint8, not {codes.dtype}")
    return np.take(_decode_table(payload_type), codes, out=out)


def encode(
    samples: npt.NDArray[np.int16],
    payload_type: int,
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Encode int16 linear samples (any shape) to G.711 codes of the same shape."""
    if samples.dtype != np.int16:
        raise ValueError(f"G.711 input must be int16, not {samples.dtype}")
    return np.take(_encode_table(payload_type), samples.view(np.uint16), out=out)


def ulaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """PCMU codes to int16 samples."""
    return decode(codes, PT_PCMU)


def ulaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """int16 samples to PCMU codes."""
    return encode(samples, PT_PCMU)


def alaw_decode(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """PCMA codes to int16 samples."""
    return decode(codes, PT_PCMA)


def alaw_encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """int16 samples to PCMA codes."""
    return encode(samples, PT_PCMA)


def codec_index(payload_types: npt.ArrayLike) -> npt.NDArray[np.intp]:
    """Per-row table index for the mixed-codec functions: 0 for PCMU, 1 for PCMA."""
    pts = np.asarray(payload_types)
    bad = (pts != PT_PCMU) & (pts != PT_PCMA)
    if bad.any():
        raise ValueError(f"payload type {int(pts[bad][0])} is not G.711 (0 or 8)")
    return (pts == PT_PCMA).astype(np.intp)


def decode_mixed(
    codes: npt.NDArray[np.uint8], row_codec: npt.NDArray[np.intp]
) -> npt.NDArray[np.int16]:
    """Decode a ``streams x samples`` matrix whose rows use different codecs in one pass.

    ``row_codec`` comes from :func:`codec_index` (0 PCMU, 1 PCMA per row).
    """
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise ValueError("codes must be a 2-D uint8 matrix")
    index = codes.astype(np.intp)
    index += (row_codec << 8)[:, None]
    return np.take(_DECODE_BOTH, index)


def encode_mixed(
    samples: npt.NDArray[np.int16], row_codec: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint8]:
    """Encode a ``streams x samples`` int16 matrix whose rows use different codecs."""
    if samples.dtype != np.int16 or samples.ndim != 2:
        raise ValueError("samples must be a 2-D int16 matrix")
    index = samples.view(np.uint16).astype(np.intp)
    index += (row_codec << 16)[:, None]
    return np.take(_ENCODE_BOTH, index)


def payloads_to_matrix(payloads: list[bytes], samples: int = 160) -> npt.NDArray[np.uint8]:
    """Stack equal-length payloads into a ``streams x samples`` uint8 matrix (one copy)."""
    for i, p in enumerate(payloads):
        if len(p) != samples:
            raise ValueError(f"payload {i} has {len(p)} bytes, expected {samples}")
    if not payloads:
        return np.empty((0, samples), dtype=np.uint8)
    return np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), samples)
