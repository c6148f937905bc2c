"""Banned source addresses (softswitch.security): the record the store keeps.

A row outlives its ban by the guard's ``offence_memory`` so that a repeat offender's next
ban is longer, also across a restart; lifting a ban deletes the row (the offences with it).
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BAN_COLUMNS", "Ban", "ban_from_row", "ban_to_row"]

BAN_COLUMNS: tuple[str, ...] = ("address", "reason", "offences", "banned_at", "expires_at")


@dataclass(frozen=True, slots=True)
class Ban:
    """One ban of a source address: why, how many bans it has had, from when until when."""

    address: str
    reason: str
    offences: int
    banned_at: float
    expires_at: float

    def active(self, now: float) -> bool:
        return now < self.expires_at


def ban_to_row(ban: Ban) -> tuple[str, str, int, float, float]:
    """The row of a ban; ValueError naming the field when it is not storable."""
    if not isinstance(ban, Ban):
        raise ValueError(f"expected a Ban, got {type(ban).__name__}")
    try:
        ipaddress.ip_address(ban.address)
    except ValueError:
        raise ValueError(f"address: {ban.address!r} is not an IP address") from None
    if not isinstance(ban.reason, str) or not ban.reason or len(ban.reason) > 200:
        raise ValueError(f"reason: must be 1-200 characters, got {ban.reason!r}")
    if isinstance(ban.offences, bool) or not isinstance(ban.offences, int) or ban.offences < 1:
        raise ValueError(f"offences: must be a positive integer, got {ban.offences!r}")
    for name in ("banned_at", "expires_at"):
        value = getattr(ban, name)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{name}: must be a finite time, got {value!r}")
    return ban.address, ban.reason, ban.offences, float(ban.banned_at), float(ban.expires_at)


def ban_from_row(row: tuple[Any, ...]) -> Ban:
    address, reason, offences, banned_at, expires_at = row
    return Ban(str(address), str(reason), int(offences), float(banned_at), float(expires_at))
