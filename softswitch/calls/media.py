"""The one place where the SDP each leg sees is produced.

Today SDP passes through from leg to leg (the phones exchange RTP directly); the only change
is the connection address of a phone behind NAT: a private ``c=`` address from a phone whose
signalling came from a public address is replaced by that public address. The media issue
will anchor media here instead.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["leg_sdp"]

_CONNECTION = re.compile(rb"^(c=IN IP4 )([0-9.]+)(\r?)$", re.MULTILINE)


def _private(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_private and not ip.is_loopback


def leg_sdp(body: bytes, from_host: str) -> bytes:
    """The SDP to send on the other leg for ``body`` received from a party whose signalling
    came from ``from_host``."""
    if not body or not _private_needed(from_host):
        return body

    def fix(match: re.Match[bytes]) -> bytes:
        address = match.group(2).decode()
        if _private(address) and address != from_host:
            return match.group(1) + from_host.encode() + match.group(3)
        return match.group(0)

    return _CONNECTION.sub(fix, body)


def _private_needed(from_host: str) -> bool:
    # Only a public signalling source can tell us a private c= is unreachable.
    try:
        ip = ipaddress.ip_address(from_host)
    except ValueError:
        return False
    return ip.version == 4 and not ip.is_private and not ip.is_loopback
