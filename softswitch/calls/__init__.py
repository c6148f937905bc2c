"""Calls: the B2BUA (``Call``, ``Leg``), the ``CallManager`` the switch hands call
traffic to, the one place leg SDP is produced, and CDR writing."""

from softswitch.calls.call import Call, CallState, Leg
from softswitch.calls.cdr import CdrWriter, q850_cause
from softswitch.calls.leg import LegState
from softswitch.calls.manager import CallManager
from softswitch.calls.media import leg_sdp

__all__ = [
    "Call",
    "CallManager",
    "CallState",
    "CdrWriter",
    "Leg",
    "LegState",
    "leg_sdp",
    "q850_cause",
]
