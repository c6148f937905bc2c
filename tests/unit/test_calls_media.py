"""The leg SDP function: pass-through, with the NAT fix for private connection addresses."""

from __future__ import annotations

import pytest

from softswitch.calls.media import leg_sdp

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
)


def _sdp(addr: str) -> bytes:
    return SDP.replace(b"{addr}", addr.encode())


@pytest.mark.parametrize(
    ("c_addr", "source", "expected"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),  # loopback: untouched
        ("192.168.1.20", "192.168.1.20", "192.168.1.20"),  # a LAN phone: untouched
        ("192.168.1.20", "10.0.0.5", "192.168.1.20"),  # private signalling source: no evidence
        # Behind NAT: the public source wins. (Python counts the documentation ranges as
        # private, so a routable address stands in for "public" here.)
        ("192.168.1.20", "93.184.216.34", "93.184.216.34"),
        ("93.184.216.99", "93.184.216.34", "93.184.216.99"),  # a public media address is kept
        ("192.168.1.20", "phone.example.test", "192.168.1.20"),  # not an address
    ],
)
def test_connection_address(c_addr: str, source: str, expected: str) -> None:
    out = leg_sdp(_sdp(c_addr), source)
    assert f"c=IN IP4 {expected}\r\n".encode() in out
    assert f"o=- 1 1 IN IP4 {c_addr}".encode() in out  # the origin is not rewritten


def test_empty_body_passes() -> None:
    assert leg_sdp(b"", "93.184.216.34") == b""
