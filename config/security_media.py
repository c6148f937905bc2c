"""Encryption policy of calls' legs: SRTP per tenant, user and trunk.

``off`` never offers nor answers SDES keys (an offer that insists on SRTP, RTP/SAVP, is
refused with 488); ``optional`` answers SRTP when the peer offers keys and offers keys
best-effort on RTP/AVP (what FreeSWITCH's ``rtp_secure_media=optional`` and most phones
do); ``required`` offers only RTP/SAVP and refuses a plain offer or answer with 488.
A trunk's policy governs the trunk's leg; the tenant's (or the user's own, when set) the
legs of the tenant's phones.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["SRTP_POLICIES", "SrtpPolicy"]

SrtpPolicy = Literal["off", "optional", "required"]
SRTP_POLICIES: tuple[SrtpPolicy, ...] = ("off", "optional", "required")
