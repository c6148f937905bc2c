"""``sips:`` URIs (RFC 3261 26.2.2, RFC 5630): a request for a sips: resource travels over
TLS on every hop, so one that arrives over UDP or TCP is refused rather than served in
clear: 480 (Temporarily Unavailable) with ``Warning: 381 ... "SIPS Required"``, the answer
RFC 5630 defines for a request that needs SIPS (a secure retry may then succeed); the
switch's own requests to sips: targets go over TLS only (``softswitch.sip.dialog``).

The check runs on the raw bytes before parsing and costs one bounded search of the first
line, so a flood of plain requests pays next to nothing for it.
"""

from __future__ import annotations

from typing import Final

from softswitch.sip.address import Address

__all__ = ["SECURE_TRANSPORTS", "SIPS_REFUSAL", "insecure_sips_request", "sips_warning"]

SECURE_TRANSPORTS: Final = frozenset({"TLS", "WSS"})
SIPS_REFUSAL: Final = (480, "Temporarily Unavailable")
_FIRST_LINE: Final = 512  # a request line longer than this is refused elsewhere anyway


def insecure_sips_request(data: bytes, source: Address) -> bool:
    """Whether ``data`` is a request for a sips: Request-URI that came over a transport
    other than TLS."""
    if source.transport in SECURE_TRANSPORTS:
        return False
    end = data.find(b"\r\n", 0, _FIRST_LINE)
    line = data[: end if end >= 0 else _FIRST_LINE]
    space = line.find(b" ")
    return space > 0 and line[space + 1 : space + 6].lower() == b"sips:"


def sips_warning(host: str) -> str:
    """The Warning header value of the refusal (RFC 5630 section 3.3, warn-code 381)."""
    return f'381 {host} "SIPS Required"'
