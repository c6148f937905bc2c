"""Capture what a Switch sends instead of putting it on the wire."""

from __future__ import annotations

from softswitch.server import Switch


def capture_sends(switch: Switch) -> list[bytes]:
    """From now on, what ``switch`` sends is appended to the returned list, not sent."""
    sent: list[bytes] = []
    switch.send_message = lambda data, dest: sent.append(data)
    return sent


def release_sends(switch: Switch) -> None:
    """Send for real again after :func:`capture_sends`."""
    switch.send_message = switch.transports.send
