"""Calls: the B2BUA (``Call``, ``Leg``) and the ``CallManager`` the switch hands call
traffic to, wiring one module per concern: ``admission``, ``planning``, ``legs``,
``relay``, ``caller``, ``transfer``, ``originate``, ``mediapath`` (anchored or
pass-through media), ``signalling``; plus pass-through SDP (``leg_sdp``) and CDR writing."""

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
