"""SRTP legs (media/srtp.py) and the SDES offer/answer (media/sdpcrypto.py)."""

from __future__ import annotations

import struct

import pytest

from media.sdp import MediaDescription, NegotiationError, SdpError, parse_sdp
from media.sdpcrypto import (
    CryptoAttribute,
    accept_answer,
    answer_crypto,
    offer_crypto,
    parse_crypto,
)
from media.srtp import SrtpKeys, SrtpLeg

KEY = bytes(range(30))
OTHER = bytes(range(30, 60))


def rtp(seq: int, payload: bytes = b"\xff" * 160, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload


def pair(suite: str = "AES_CM_128_HMAC_SHA1_80") -> tuple[SrtpLeg, SrtpLeg]:
    a = SrtpLeg(SrtpKeys(suite, local_key=KEY, remote_key=OTHER))
    b = SrtpLeg(SrtpKeys(suite, local_key=OTHER, remote_key=KEY))
    return a, b


@pytest.mark.parametrize("suite", ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
def test_protected_rtp_round_trips_and_hides_the_payload(suite: str) -> None:
    a, b = pair(suite)
    for seq in range(1, 5):
        packet = rtp(seq)
        wire = a.protect(packet)
        assert wire[:12] == packet[:12]  # the header stays clear
        assert wire[12:172] != packet[12:]  # the payload does not
        assert b.unprotect(wire) == packet


def test_forged_and_replayed_packets_are_dropped_not_raised() -> None:
    a, b = pair()
    wire = a.protect(rtp(7))
    assert b.unprotect(wire) is not None
    assert b.unprotect(wire) is None  # replay
    forged = bytearray(a.protect(rtp(8)))
    forged[20] ^= 1
    assert b.unprotect(bytes(forged)) is None
    assert b.unprotect(b"garbage") is None
    assert b.dropped == 3


def test_rtcp_is_protected_too() -> None:
    a, b = pair()
    report = struct.pack("!BBHI", 0x80, 201, 1, 0x1234)  # empty receiver report
    wire = a.protect_rtcp(report)
    assert wire != report
    assert b.unprotect_rtcp(wire) == report
    assert b.unprotect_rtcp(wire[:-1]) is None


def test_keys_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown SRTP crypto-suite"):
        SrtpKeys("F8_128_HMAC_SHA1_80", KEY, OTHER)
    with pytest.raises(ValueError, match="remote_key must be 30 bytes"):
        SrtpKeys("AES_CM_128_HMAC_SHA1_80", KEY, b"short")


def test_crypto_attribute_round_trips() -> None:
    text = "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31"
    crypto = parse_crypto(text)
    assert (crypto.tag, crypto.suite, crypto.key, crypto.lifetime) == (
        1,
        "AES_CM_128_HMAC_SHA1_80",
        KEY,
        "2^31",
    )
    assert str(crypto) == text
    assert parse_crypto(str(CryptoAttribute(3, "AES_CM_128_HMAC_SHA1_32", KEY))).tag == 3


@pytest.mark.parametrize(
    "value",
    ["", "1", "1 AES_CM_128_HMAC_SHA1_80", "x AES inline:AAAA", "1 S uri:x", "1 S inline:***"],
)
def test_bad_crypto_attribute_is_an_sdp_error(value: str) -> None:
    with pytest.raises(SdpError):
        parse_crypto(value)


def audio(proto: str = "RTP/AVP", *crypto: str) -> MediaDescription:
    lines = [f"a=crypto:{c}" for c in crypto]
    head = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0"]
    sdp = "\r\n".join([*head, f"m=audio 10000 {proto} 0 101", *lines, ""])
    return parse_sdp(sdp).media[0]


def test_offer_and_answer_give_both_legs_matching_keys() -> None:
    offer = audio()
    sent = offer_crypto(offer, "required")
    assert sent is not None and offer.proto == "RTP/SAVP"
    assert len(offer.attribute_values("crypto")) == 2
    answer = audio("RTP/SAVP")
    theirs = answer_crypto(offer, answer, "optional")
    assert theirs is not None and answer.proto == "RTP/SAVP"
    ours = accept_answer(sent, answer, "required")
    assert ours is not None
    assert (ours.local_key, ours.remote_key) == (theirs.remote_key, theirs.local_key)
    a, b = SrtpLeg(ours), SrtpLeg(theirs)
    packet = rtp(1)
    assert b.unprotect(a.protect(packet)) == packet
    assert a.unprotect(b.protect(packet)) == packet


def test_optional_offers_keys_over_plain_rtp_and_accepts_a_plain_answer() -> None:
    offer = audio()
    sent = offer_crypto(offer, "optional")
    assert sent is not None and offer.proto == "RTP/AVP"
    assert accept_answer(sent, audio(), "optional") is None
    with pytest.raises(NegotiationError, match="SRTP required"):
        accept_answer(sent, audio(), "required")


def test_off_offers_nothing_and_strips_crypto() -> None:
    offer = audio("RTP/AVP", f"1 AES_CM_128_HMAC_SHA1_80 inline:{'A' * 40}")
    assert offer_crypto(offer, "off") is None
    assert offer.attribute_values("crypto") == [] and offer.proto == "RTP/AVP"


def test_required_refuses_a_plain_offer_with_488() -> None:
    with pytest.raises(NegotiationError) as caught:
        answer_crypto(audio(), audio(), "required")
    assert caught.value.status == 488


def test_savp_offer_is_refused_when_off_or_unusable() -> None:
    good = "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    with pytest.raises(NegotiationError, match="off"):
        answer_crypto(audio("RTP/SAVP", good), audio(), "off")
    unknown = "1 F8_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    with pytest.raises(NegotiationError, match="no usable"):
        answer_crypto(audio("RTP/SAVP", unknown), audio(), "optional")


def test_answer_picks_the_first_usable_line_and_plain_stays_plain() -> None:
    lines = (
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4",
        "2 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
    )
    answer = audio()
    keys = answer_crypto(audio("RTP/AVP", *lines), answer, "optional")
    assert keys is not None and keys.suite == "AES_CM_128_HMAC_SHA1_32"  # no MKI support
    assert answer.attribute_values("crypto")[0].startswith("2 AES_CM_128_HMAC_SHA1_32 ")
    assert answer_crypto(audio(), audio(), "optional") is None


def test_answer_with_a_tag_we_did_not_offer_is_refused() -> None:
    offer = audio()
    sent = offer_crypto(offer, "optional")
    bogus = audio("RTP/AVP", "9 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40)
    with pytest.raises(NegotiationError, match="tag 9"):
        accept_answer(sent, bogus, "optional")
