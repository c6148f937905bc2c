"""SRTP in the media engine's relay path (issue 19): an SRTP leg bridged to a plain RTP
leg over real UDP; both hear each other's tone (FFT), the SRTP leg's wire packets do not
decode as the tone, and plain or forged packets on the SRTP leg are dropped. Keys come from
the SDES offer/answer of the leg, in-process and in a media worker process."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from media import g711
from media.engine import EngineSettings, MediaEngine
from media.negotiation import NegotiatedLeg
from media.pool import MediaWorkerPool
from media.sdp import NegotiationError, parse_sdp
from media.sdpcrypto import accept_answer, answer_crypto, offer_crypto
from media.srtp import SrtpKeys, SrtpLeg
from tests.integration.rtpkit import HDR, Peer, b_leg, dominant, leg, new_peer, run, tone

pytestmark = pytest.mark.integration

SUITE = "AES_CM_128_HMAC_SHA1_80"


@dataclass
class SrtpPeer(Peer):
    """A phone that speaks SRTP: protects what it sends, unprotects what it receives."""

    srtp: SrtpLeg | None = None
    wire: list[bytes] = field(default_factory=list)  # what arrived, still protected

    def send_packet(
        self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None
    ) -> None:
        assert self.target is not None and self.srtp is not None
        header = HDR.pack(0x80, pt | (0x80 if marker else 0), self.seq, ts or self.ts, self.ssrc)
        self.sock.sendto(self.srtp.protect(header + payload), self.target)
        self.seq = (self.seq + 1) & 0xFFFF

    def drain(self) -> None:
        assert self.srtp is not None
        for _ in range(10_000):
            try:
                data, _ = self.sock.recvfrom(2048)
            except (BlockingIOError, ConnectionRefusedError):
                return
            self.wire.append(data)
            clear = self.srtp.unprotect(data)
            if clear is not None:
                self.received.append(clear)


@pytest.fixture
async def engine() -> AsyncIterator[MediaEngine]:
    base = random.randrange(30000, 60000, 2)
    eng = MediaEngine(EngineSettings(port_min=base, port_max=base + 999))
    await eng.start()
    yield eng
    await eng.close()


async def test_srtp_leg_bridged_to_plain_leg(engine: MediaEngine, peers: list[Peer]) -> None:
    engine_key, phone_key = os.urandom(30), os.urandom(30)
    a = SrtpPeer(srtp=SrtpLeg(SrtpKeys(SUITE, local_key=phone_key, remote_key=engine_key)))
    peers.append(a)
    b = new_peer(peers)
    ea, eb = leg(engine, a), b_leg(engine, b)
    ea.apply_keys(SrtpKeys(SUITE, local_key=engine_key, remote_key=phone_key))
    engine.bridge(ea, eb)
    await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
    assert abs(dominant(b.audio()) - 440) < 10  # the plain leg hears the SRTP phone
    assert abs(dominant(a.audio()) - 1000) < 10  # and the SRTP phone hears the plain leg
    assert ea.srtp is not None and ea.srtp.dropped == 0
    # On the wire the SRTP leg's packets are no PCMU tone (and carry the 10-byte tag).
    assert len(a.wire) >= 40
    assert all(len(p) == 12 + 160 + 10 for p in a.wire)
    wire_audio = np.concatenate(
        [g711.decode(np.frombuffer(p[12:172], np.uint8), 0) for p in a.wire]
    )
    assert abs(dominant(wire_audio) - 1000) > 50


async def test_plain_and_forged_packets_on_an_srtp_leg_are_dropped(
    engine: MediaEngine, peers: list[Peer]
) -> None:
    a, b = new_peer(peers), new_peer(peers)
    ea, eb = leg(engine, a), b_leg(engine, b)
    ea.apply_keys(SrtpKeys(SUITE, local_key=os.urandom(30), remote_key=os.urandom(30)))
    engine.bridge(ea, eb)
    await run([(a, tone(440, 1))], 20)  # plain RTP (or SRTP under the wrong key)
    assert b.received == []
    assert ea.srtp is not None and ea.srtp.dropped == 20
    assert ea.latched is None  # nothing unauthentic moved the leg's media
    assert ea.stats().packets_received == 0


@pytest.fixture(params=["engine", "worker"])
async def media(request: pytest.FixtureRequest) -> AsyncIterator[MediaEngine | MediaWorkerPool]:
    base = random.randrange(30000, 60000, 2)
    settings = EngineSettings(port_min=base, port_max=base + 199)
    if request.param == "engine":
        async with MediaEngine(settings) as eng:
            yield eng
    else:
        async with MediaWorkerPool(settings, workers=1) as pool:
            yield pool


async def test_sdes_keys_negotiated_on_both_legs_of_a_call(
    media: MediaEngine | MediaWorkerPool, peers: list[Peer]
) -> None:
    """The caller offers RTP/SAVP (required); the callee is offered SRTP (optional) and
    answers with keys: both legs encrypted with the keys of their own offer/answer."""
    a, b = SrtpPeer(), SrtpPeer()
    peers += [a, b]
    offer = parse_sdp(a.sdp())
    sent = offer_crypto(offer.media[0], "required")
    ea: NegotiatedLeg = media.allocate(offer.to_bytes(), srtp="required")
    a.srtp = SrtpLeg(accept_answer(sent, parse_sdp(ea.local_sdp).media[0], "required"))  # type: ignore[arg-type]
    a.connect(ea)  # type: ignore[arg-type]
    eb = media.allocate(None, near=ea, srtp="optional")
    ours = parse_sdp(eb.local_sdp)
    assert ours.media[0].proto == "RTP/AVP" and ours.media[0].attribute_values("crypto")
    answer = parse_sdp(b.sdp())
    keys = answer_crypto(ours.media[0], answer.media[0], "optional")
    assert keys is not None
    b.srtp = SrtpLeg(keys)
    eb.set_remote(answer.to_bytes())
    b.connect(eb)  # type: ignore[arg-type]
    media.bridge(ea, eb)
    await run([(a, tone(440, 1)), (b, tone(1000, 1))], 50)
    assert abs(dominant(b.audio()) - 440) < 10
    assert abs(dominant(a.audio()) - 1000) < 10
    assert a.srtp.dropped == 0 and b.srtp.dropped == 0


async def test_required_refuses_a_plain_offer_with_488(
    media: MediaEngine | MediaWorkerPool, peers: list[Peer]
) -> None:
    a = new_peer(peers)
    with pytest.raises(NegotiationError) as refused:
        media.allocate(a.sdp(), srtp="required")
    assert refused.value.status == 488
    plain = media.allocate(a.sdp(), srtp="optional")  # optional answers it in the clear
    assert b"a=crypto" not in plain.local_sdp
