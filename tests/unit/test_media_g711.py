"""G.711 tables against a scalar reference written from the ITU-T segment algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from media import g711


def _ref_segment(value: int, ends: list[int]) -> int:
    for i, end in enumerate(ends):
        if value <= end:
            return i
    return len(ends)


_U_ENDS = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
_A_ENDS = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]


def ref_ulaw_encode(pcm: int) -> int:
    pcm >>= 2
    if pcm < 0:
        pcm, mask = -pcm, 0x7F
    else:
        mask = 0xFF
    pcm = min(pcm, 8159) + 0x21
    seg = _ref_segment(pcm, _U_ENDS)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask


def ref_ulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    t = ((code & 0x0F) << 3) + 0x84
    t <<= (code & 0x70) >> 4
    return 0x84 - t if code & 0x80 else t - 0x84


def ref_alaw_encode(pcm: int) -> int:
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask, pcm = 0x55, -pcm - 1
    seg = _ref_segment(pcm, _A_ENDS)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1) & 0xF if seg < 2 else (pcm >> seg) & 0xF
    return aval ^ mask


def ref_alaw_decode(code: int) -> int:
    code ^= 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if code & 0x80 else -t


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


@pytest.mark.parametrize(
    ("pt", "ref_enc", "ref_dec"),
    [
        (g711.PT_PCMU, ref_ulaw_encode, ref_ulaw_decode),
        (g711.PT_PCMA, ref_alaw_encode, ref_alaw_decode),
    ],
)
def test_bit_exact_against_reference(pt: int, ref_enc, ref_dec) -> None:
    enc = g711.encode(ALL_SAMPLES, pt)
    expected_enc = np.array([ref_enc(int(s)) for s in ALL_SAMPLES], dtype=np.uint8)
    assert np.array_equal(enc, expected_enc)
    dec = g711.decode(ALL_CODES, pt)
    expected_dec = np.array([ref_dec(int(c)) for c in ALL_CODES], dtype=np.int16)
    assert np.array_equal(dec, expected_dec)


# Published anchor points (G.711 tables): silence codes and the extremes.
@pytest.mark.parametrize(
    ("pt", "sample", "code"),
    [
        (g711.PT_PCMU, 0, 0xFF),
        (g711.PT_PCMU, 32767, 0x80),
        (g711.PT_PCMU, -32768, 0x00),
        (g711.PT_PCMA, 0, 0xD5),
        (g711.PT_PCMA, -1, 0x55),
        (g711.PT_PCMA, 32767, 0xAA),
        (g711.PT_PCMA, -32768, 0x2A),
    ],
)
def test_anchor_codes(pt: int, sample: int, code: int) -> None:
    assert int(g711.encode(np.array([sample], dtype=np.int16), pt)[0]) == code


@pytest.mark.parametrize(
    ("pt", "code", "value"),
    [
        (g711.PT_PCMU, 0xFF, 0),
        (g711.PT_PCMU, 0x7F, 0),
        (g711.PT_PCMU, 0x80, 32124),
        (g711.PT_PCMU, 0x00, -32124),
        (g711.PT_PCMA, 0xD5, 8),
        (g711.PT_PCMA, 0x55, -8),
        (g711.PT_PCMA, 0xAA, 32256),
        (g711.PT_PCMA, 0x2A, -32256),
    ],
)
def test_anchor_values(pt: int, code: int, value: int) -> None:
    assert int(g711.decode(np.array([code], dtype=np.uint8), pt)[0]) == value


@pytest.mark.parametrize("pt", [g711.PT_PCMU, g711.PT_PCMA])
def test_round_trip_is_idempotent_and_monotonic(pt: int) -> None:
    dec = g711.decode(ALL_CODES, pt)
    assert np.array_equal(
        g711.encode(dec, pt), g711.encode(g711.decode(g711.encode(dec, pt), pt), pt)
    )
    assert np.array_equal(g711.decode(g711.encode(dec, pt), pt), dec)
    # decoding the encoded ramp never goes backwards
    assert np.all(np.diff(g711.decode(g711.encode(ALL_SAMPLES, pt), pt).astype(np.int32)) >= 0)


def test_two_dimensional_and_mixed_codecs() -> None:
    rng = np.random.default_rng(1)
    samples = rng.integers(-32768, 32768, size=(7, 160)).astype(np.int16)
    pts = [0, 8, 8, 0, 0, 8, 0]
    rows = g711.codec_index(pts)
    codes = g711.encode_mixed(samples, rows)
    for r, pt in enumerate(pts):
        assert np.array_equal(codes[r], g711.encode(samples[r], pt))
    decoded = g711.decode_mixed(codes, rows)
    for r, pt in enumerate(pts):
        assert np.array_equal(decoded[r], g711.decode(codes[r], pt))
    assert g711.encode(samples, 0).shape == (7, 160)


def test_out_parameter_and_payload_matrix() -> None:
    payloads = [bytes([i]) * 160 for i in range(4)]
    m = g711.payloads_to_matrix(payloads)
    assert m.shape == (4, 160)
    out = np.empty((4, 160), dtype=np.int16)
    g711.decode(m, 0, out=out)
    assert int(out[0, 0]) == ref_ulaw_decode(0)
    assert g711.payloads_to_matrix([]).shape == (0, 160)


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (lambda a: g711.decode(a, 0), np.zeros(3, dtype=np.int16)),
        (lambda a: g711.encode(a, 0), np.zeros(3, dtype=np.int32)),
        (lambda a: g711.decode(a, 18), np.zeros(3, dtype=np.uint8)),
        (lambda a: g711.encode(a, 9), np.zeros(3, dtype=np.int16)),
        (lambda a: g711.codec_index(a), np.array([0, 3])),
        (lambda a: g711.payloads_to_matrix(a), [b"\x00" * 159]),
    ],
)
def test_bad_input_raises_value_error(call, arg) -> None:
    with pytest.raises(ValueError):
        call(arg)
