"""What the call layer reads off a call leg without the call: its state, and the SDP of a
response on it. The ``Leg`` itself lives with its ``Call`` in ``softswitch.calls.call``
(each refers to the other)."""

from __future__ import annotations

from enum import StrEnum

from softswitch.sip.message import SipResponse

__all__ = ["LegState", "response_sdp"]


class LegState(StrEnum):
    TRYING = "trying"  # INVITE sent (or received), nothing back yet
    RINGING = "ringing"  # a provisional response seen (CANCEL may now be sent)
    ANSWERED = "answered"  # 2xx sent/received, dialog confirmed or about to be
    ENDED = "ended"  # failed, cancelled or hung up


def response_sdp(response: SipResponse) -> bytes:
    """The SDP body of a response, or b''."""
    content_type = (response.get("Content-Type") or "").lower()
    return response.body if response.body and "application/sdp" in content_type else b""
