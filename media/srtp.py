"""SRTP (RFC 3711) protection of one leg's RTP and RTCP through libsrtp (``pylibsrtp``).

A leg that negotiated SDES keys (RFC 4568, see :mod:`media.sdpcrypto`) gets an
:class:`SrtpLeg`: the key we offered/answered protects what the engine sends, the peer's key
unprotects what it receives. Keys are plain bytes (master key + salt) so they travel with
the leg's set-up to a media worker as they are. A packet that fails authentication or
replay checks is dropped (``None``), never raised: a forged or replayed datagram on the
wire must cost as little as a malformed one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final

import pylibsrtp

__all__ = [
    "SUITES",
    "SrtpKeys",
    "SrtpLeg",
    "SrtpSuite",
    "new_master_key",
]


@dataclass(frozen=True, slots=True)
class SrtpSuite:
    """One SDES crypto-suite: its name in ``a=crypto`` and libsrtp's profile for it."""

    name: str
    profile: int
    key_length: int  # master key + master salt, bytes


#: Suites we offer, most preferred first (RFC 4568 section 6.2; RFC 7714 for GCM is left out
#: because SDES phones in the field rarely do it).
SUITES: Final[tuple[SrtpSuite, ...]] = (
    SrtpSuite("AES_CM_128_HMAC_SHA1_80", pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30),
    SrtpSuite("AES_CM_128_HMAC_SHA1_32", pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32, 30),
)


def suite_named(name: str) -> SrtpSuite | None:
    """The suite called ``name`` (case-sensitive, as RFC 4568 registers them), or None."""
    for suite in SUITES:
        if suite.name == name:
            return suite
    return None


def new_master_key(suite: SrtpSuite) -> bytes:
    """A fresh random master key and salt for ``suite``."""
    return os.urandom(suite.key_length)


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """What one leg needs for SRTP: the suite and both directions' master key + salt."""

    suite: str
    local_key: bytes  # protects what we send
    remote_key: bytes  # unprotects what the peer sends

    def __post_init__(self) -> None:
        suite = suite_named(self.suite)
        if suite is None:
            raise ValueError(f"unknown SRTP crypto-suite {self.suite!r}")
        for what, key in (("local_key", self.local_key), ("remote_key", self.remote_key)):
            if len(key) != suite.key_length:
                raise ValueError(f"{what} must be {suite.key_length} bytes, not {len(key)}")


class SrtpLeg:
    """Protects outgoing and unprotects incoming RTP/RTCP of one leg."""

    def __init__(self, keys: SrtpKeys) -> None:
        suite = suite_named(keys.suite)
        assert suite is not None  # SrtpKeys checked it
        self.keys = keys
        self._tx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=keys.local_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=suite.profile,
            )
        )
        self._rx = pylibsrtp.Session(
            pylibsrtp.Policy(
                key=keys.remote_key,
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                srtp_profile=suite.profile,
            )
        )
        self.dropped = 0  # inbound packets that failed authentication or replay checks

    def protect(self, packet: bytes) -> bytes:
        """The SRTP form of an RTP packet we send."""
        return bytes(self._tx.protect(packet))

    def unprotect(self, packet: bytes) -> bytes | None:
        """The RTP packet inside a received SRTP packet, or None if it is not authentic."""
        try:
            return bytes(self._rx.unprotect(packet))
        except pylibsrtp.Error:
            self.dropped += 1
            return None

    def protect_rtcp(self, packet: bytes) -> bytes:
        """The SRTCP form of an RTCP packet we send."""
        return bytes(self._tx.protect_rtcp(packet))

    def unprotect_rtcp(self, packet: bytes) -> bytes | None:
        """The RTCP packet inside a received SRTCP packet, or None if it is not authentic."""
        try:
            return bytes(self._rx.unprotect_rtcp(packet))
        except pylibsrtp.Error:
            self.dropped += 1
            return None
