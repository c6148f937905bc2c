"""Fuzz targets: what the switch does with untrusted bytes, with the only outcomes allowed.

Each target takes raw bytes and either returns or raises AssertionError (a finding); any
other exception escaping is a finding too. Shared by the bounded hypothesis tests in
tests/unit/test_fuzz_parsers.py and the longer atheris run (tests/fuzz/atheris_run.py).
"""

from __future__ import annotations

import contextlib

from media.sdp import NegotiationError, SdpError, answer_offer, parse_sdp
from media.sdpcrypto import answer_crypto, parse_crypto
from softswitch.sip.auth import parse_auth_header
from softswitch.sip.message import SipRequest, check_request, make_response, parse_message
from softswitch.sip.uri import SipParseError

__all__ = ["TARGETS", "crypto_attribute", "digest_header", "sdp_offer", "sip_message"]

_HEADERS = ("vias", "call_id", "cseq", "from_", "to", "contacts", "routes", "content_length")


def sip_message(data: bytes) -> None:
    """A datagram: parsed, or SipParseError with a 4xx/5xx; a readable request is answered."""
    try:
        message = parse_message(data)
    except SipParseError as exc:
        assert 400 <= exc.status <= 599, exc.status
        partial = exc.message
        if isinstance(partial, SipRequest) and partial.method != "ACK":
            with contextlib.suppress(SipParseError):
                make_response(partial, exc.status).to_bytes()
        return
    for name in _HEADERS:
        with contextlib.suppress(SipParseError):
            str(getattr(message, name))
    if isinstance(message, SipRequest):
        with contextlib.suppress(SipParseError):
            message.ruri  # noqa: B018
        refusal = check_request(message)
        assert refusal is None or 400 <= refusal[0] <= 599
        if refusal is not None and message.method != "ACK":
            with contextlib.suppress(SipParseError):
                make_response(message, refusal[0], refusal[1]).to_bytes()


def sdp_offer(data: bytes) -> None:
    """An SDP offer: SdpError, or parsed, round-tripped and answered (or 488)."""
    try:
        offer = parse_sdp(data)
    except SdpError:
        return
    again = parse_sdp(offer.to_bytes())
    assert again.to_str() == offer.to_str()
    try:
        answer, _streams = answer_offer(offer, address="127.0.0.1", port=20000)
    except NegotiationError as exc:
        assert exc.status == 488
        return
    parse_sdp(answer.to_bytes())
    for m_offer, m_answer in zip(offer.media, answer.media, strict=False):
        for policy in ("off", "optional", "required"):
            with contextlib.suppress(NegotiationError):
                answer_crypto(m_offer, m_answer, policy)


def crypto_attribute(data: bytes) -> None:
    """An a=crypto value: SdpError or a value that writes back and parses the same."""
    try:
        crypto = parse_crypto(data.decode("utf-8", "surrogateescape"))
    except SdpError:
        return
    assert parse_crypto(str(crypto)).key == crypto.key


def digest_header(data: bytes) -> None:
    """An Authorization/WWW-Authenticate value: ValueError or (scheme, params)."""
    try:
        scheme, params = parse_auth_header(data.decode("utf-8", "surrogateescape"))
    except ValueError:
        return
    assert isinstance(scheme, str)
    assert all(name == name.lower() for name in params)


TARGETS = {
    "sip": sip_message,
    "sdp": sdp_offer,
    "crypto": crypto_attribute,
    "digest": digest_header,
}
