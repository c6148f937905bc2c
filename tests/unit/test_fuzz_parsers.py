"""Bounded fuzzing of the hostile-input parsers (issue 19): SIP, SDP, a=crypto, digest.

Seeds are valid inputs; hypothesis mutates them (insert, delete, flip, truncate, splice
special bytes) and also throws plain random bytes. The targets (tests/fuzz/targets.py)
assert the only outcomes allowed. A longer run: README "Fuzzing" (atheris).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import TARGETS

SIP_SEEDS = (
    b"INVITE sip:100@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:200@example.com>;tag=a\r\nTo: <sip:100@example.com>\r\n"
    b"Call-ID: c1@h\r\nCSeq: 1 INVITE\r\nContact: <sip:200@127.0.0.1:5070>\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
    b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/TLS h;branch=z9hG4bK2\r\n"
    b"From: <sips:a@h>;tag=1\r\nTo: <sips:a@h>;tag=2\r\nCall-ID: x\r\nCSeq: 2 REGISTER\r\n"
    b'WWW-Authenticate: Digest realm="h", nonce="n", qop="auth"\r\nContent-Length: 0\r\n\r\n',
)
SDP_SEEDS = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 10000 RTP/SAVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31\r\n"
    b"m=video 0 RTP/AVP 96\r\n",
    b"v=0\no=x 2 3 IN IP6 ::1\ns=s\nc=IN IP6 ::1\nt=0 0\nm=audio 4000/2 RTP/AVP 0\n",
)
CRYPTO_SEEDS = (
    b"1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31|1:4",
    b"2 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd KDR=1",
)
DIGEST_SEEDS = (
    b'Digest username="100", realm="h", nonce="abc", uri="sip:h", response="0123456789abcdef'
    b'0123456789abcdef", qop=auth, nc=00000001, cnonce="x\\"y", algorithm=MD5',
    b'Digest realm="h",nonce="n",opaque="",stale=TRUE,algorithm=SHA-256,qop="auth,auth-int"',
)
SEEDS = {"sip": SIP_SEEDS, "sdp": SDP_SEEDS, "crypto": CRYPTO_SEEDS, "digest": DIGEST_SEEDS}
SPECIAL = (b"\r\n", b"\n", b"\0", b":", b";", b",", b"=", b'"', b"\\", b"|", b"/", b"\xff", b" ")


@st.composite
def mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 4))
        if kind == 0:
            data[pos:pos] = draw(st.sampled_from(SPECIAL)) * draw(st.integers(1, 3))
        elif kind == 1:
            del data[pos : pos + draw(st.integers(1, 24))]
        elif kind == 2 and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif kind == 3:
            del data[pos:]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
    return bytes(data)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_pass(target: str) -> None:
    for seed in SEEDS[target]:
        TARGETS[target](seed)


@pytest.mark.parametrize("target", sorted(TARGETS))
@FUZZ
@given(data=st.data())
def test_mutated_inputs(target: str, data: st.DataObject) -> None:
    TARGETS[target](data.draw(mutated(SEEDS[target])))


@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400))
def test_random_bytes(target: str, data: bytes) -> None:
    TARGETS[target](data)
