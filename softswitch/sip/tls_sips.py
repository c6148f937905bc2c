"""``sips:`` URIs (RFC 3261 26.2.2, RFC 5630): a request for a sips: resource travels over
TLS on every hop, so one that arrives over UDP or TCP is refused rather than served in
clear: 480 (Temporarily Unavailable) with ``Warning: 381 ... "SIPS Required"``, the answer
RFC 5630 defines for a request that needs SIPS (a secure retry may then succeed); the
switch's own requests to sips: targets go over TLS only (``softswitch.sip.dialog``).

The check runs on the raw bytes before parsing and costs one bounded search of the first
bytes and a 5-byte comparison, so every plain request pays next to nothing for it.
"""

from __future__ import annotations

from typing import Final

from softswitch.sip.address import Address

__all__ = ["SECURE_TRANSPORTS", "SIPS_REFUSAL", "insecure_sips_request", "sips_warning"]

SECURE_TRANSPORTS: Final = frozenset({"TLS", "WSS"})
SIPS_REFUSAL: Final = (480, "Temporarily Unavailable")
_METHOD_END: Final = 32  # past any method name; a longer first token is not a request


def insecure_sips_request(data: bytes, source: Address) -> bool:
    """Whether ``data`` is a request for a sips: Request-URI that came over a transport
    other than TLS."""
    # The method is one short token: the Request-URI starts after the first space within
    # the first bytes (a response's "SIP/2.0 200" never has "sips:" there).
    space = data.find(b" ", 0, _METHOD_END)
    if space <= 0 or data[space + 1 : space + 6].lower() != b"sips:":
        return False
    return source.transport not in SECURE_TRANSPORTS


def sips_warning(host: str) -> str:
    """The Warning header value of the refusal (RFC 5630 section 3.3, warn-code 381)."""
    return f'381 {host} "SIPS Required"'
