"""sips: URIs: a sips: request in clear is recognised from its first line, and requests to
sips: targets go over TLS only, whatever the URI's transport parameter says."""

from __future__ import annotations

import pytest

from softswitch.sip.address import Address
from softswitch.sip.dialog import uri_address
from softswitch.sip.tls_sips import insecure_sips_request, sips_warning

UDP = Address("UDP", "192.0.2.1", 5060)
TCP = Address("TCP", "192.0.2.1", 40000, 3)
TLS = Address("TLS", "192.0.2.1", 40001, 4)


@pytest.mark.parametrize(
    ("first_line", "source", "refused"),
    [
        (b"INVITE sips:100@pbx.test SIP/2.0", UDP, True),
        (b"OPTIONS SIPS:pbx.test SIP/2.0", TCP, True),  # schemes are case-insensitive
        (b"INVITE sips:100@pbx.test SIP/2.0", TLS, False),
        (b"INVITE sip:100@pbx.test SIP/2.0", UDP, False),
        (b"SIP/2.0 200 OK", UDP, False),  # a response
        (b"INVITE sip:sips:@x SIP/2.0", UDP, False),  # only the Request-URI's scheme counts
        (b"", UDP, False),
    ],
)
def test_a_sips_request_in_clear_is_recognised(
    first_line: bytes, source: Address, refused: bool
) -> None:
    data = first_line + b"\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\r\n"
    assert insecure_sips_request(data, source) is refused


def test_the_refusal_names_rfc_5630s_warning() -> None:
    assert sips_warning("192.0.2.9") == '381 192.0.2.9 "SIPS Required"'


@pytest.mark.parametrize(
    ("uri", "transport", "port"),
    [
        ("sips:100@192.0.2.7", "TLS", 5061),
        ("sips:100@192.0.2.7;transport=udp", "TLS", 5061),  # never downgraded
        ("sips:100@192.0.2.7:5080;transport=tcp", "TLS", 5080),
        ("sips:100@192.0.2.7;transport=ws", "WSS", 443),
        ("sip:100@192.0.2.7;transport=tcp", "TCP", 5060),
        ("sip:100@192.0.2.7", "UDP", 5060),
    ],
)
def test_requests_to_sips_targets_go_over_tls_only(uri: str, transport: str, port: int) -> None:
    dest = uri_address(uri)
    assert (dest.transport, dest.port) == (transport, port)
