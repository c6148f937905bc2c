"""Capture what a Switch sends instead of putting it on the wire.

The TransportManager is compiled (mypyc), so its methods cannot be replaced on an
instance; the switch's reference to it is swapped for a proxy instead.
"""

from __future__ import annotations

from typing import Any

from softswitch.server import Switch
from softswitch.sip.address import Address
from softswitch.sip.transport import TransportManager


class CapturingTransports:
    """Stands in for ``switch.transports``: ``send`` records, everything else passes on."""

    def __init__(self, real: TransportManager) -> None:
        self.real = real
        self.sent: list[bytes] = []

    def send(self, data: bytes, dest: Address) -> None:
        self.sent.append(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def capture_sends(switch: Switch) -> list[bytes]:
    """From now on, what ``switch`` sends is appended to the returned list, not sent."""
    proxy = CapturingTransports(switch.transports)
    switch.transports = proxy  # type: ignore[assignment]
    return proxy.sent


def release_sends(switch: Switch) -> None:
    """Send for real again after :func:`capture_sends`."""
    if isinstance(switch.transports, CapturingTransports):
        switch.transports = switch.transports.real
