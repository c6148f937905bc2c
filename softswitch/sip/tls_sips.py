"""``sips:`` URIs (RFC 3261 26.2.2, RFC 5630): a request for a sips: resource travels over
TLS on every hop, so one that arrives over UDP or TCP is refused rather than served in
clear: 480 (Temporarily Unavailable) with ``Warning: 381 ... "SIPS Required"``, the answer
RFC 5630 defines for a request that needs SIPS (a secure retry may then succeed); the
switch's own requests to sips: targets go over TLS only (``softswitch.sip.dialog``).

The check runs on the raw bytes before parsing and costs one bounded search of the first
bytes and a byte's comparison, so every plain request pays next to nothing for it.
"""

from __future__ import annotations

from typing import Final

from softswitch.sip.address import Address

__all__ = ["SECURE_TRANSPORTS", "SIPS_REFUSAL", "insecure_sips_request", "sips_warning"]

SECURE_TRANSPORTS: Final = frozenset({"TLS", "WSS"})
SIPS_REFUSAL: Final = (480, "Temporarily Unavailable")
_METHOD_END: Final = 32  # past any method name; a longer first token is not a request
_S: Final = 0x73  # "s"
_CAPITAL_S: Final = 0x53  # "S"


def insecure_sips_request(data: bytes, source: Address) -> bool:
    """Whether ``data`` is a request for a sips: Request-URI that came over a transport
    other than TLS."""
    # Asked for every message: the transport first (over TLS nothing is refused), then the
    # fourth byte of the Request-URI, which is "s" only in "sips:" ("sip:" has ":"), before
    # any slice is made.
    if source.transport in SECURE_TRANSPORTS:
        return False
    # The method is one short token: the Request-URI starts after the first space within
    # the first bytes (a response's "SIP/2.0 200" never has "sips:" there).
    space = data.find(b" ", 0, _METHOD_END)
    if space <= 0 or len(data) < space + 6:
        return False
    fourth = data[space + 4]
    if fourth != _S and fourth != _CAPITAL_S:
        return False
    return data[space + 1 : space + 6].lower() == b"sips:"


def sips_warning(host: str) -> str:
    """The Warning header value of the refusal (RFC 5630 section 3.3, warn-code 381)."""
    return f'381 {host} "SIPS Required"'
