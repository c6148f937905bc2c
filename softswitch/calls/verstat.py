"""A carrier's caller-ID verification result: the call is treated as spam when it failed.

A carrier that verifies STIR/SHAKEN signatures (RFC 8224) for us tells the outcome in the
``verstat`` parameter of the caller's number in P-Asserted-Identity or From (3GPP TS 24.229
7.2A.20, ATIS-1000074): ``TN-Validation-Passed``, ``TN-Validation-Failed`` or
``No-TN-Validation``. A failed verification makes routing apply the tenant's or user's
spam treatment (ring, voicemail, drop, screen); a phone's own INVITE is never judged so.
"""

from __future__ import annotations

import re

from softswitch.sip.message import SipRequest

__all__ = ["verification_failed"]

_FAILED = re.compile(r";\s*verstat\s*=\s*TN-Validation-Failed\b", re.IGNORECASE)


def verification_failed(request: SipRequest) -> bool:
    """Whether the carrier says the caller's number failed verification."""
    for name in ("P-Asserted-Identity", "From"):
        for value in request.get_all(name):
            if _FAILED.search(value):
                return True
    return False
