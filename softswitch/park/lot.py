"""Which call is parked in which orbit, and the orbits' busy lamps.

One lot per switch holds every tenant's orbits. An orbit holds at most one call; its lamp
(the ``dialog`` package resource of the orbit's extension) is ``confirmed`` while a call is
parked there and dark once it is retrieved, rung back or gone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from config.park import ParkSettings
from softswitch.notify.lamps import LampBoard, LampDialog

__all__ = ["OrbitTaken", "ParkedCall", "ParkingLot"]


class OrbitTaken(Exception):
    """The orbit already holds a call (or, the park code, every orbit does)."""


@dataclass(slots=True)
class ParkedCall:
    """A call waiting in ``orbit``; ``retrieved`` gets the retriever's session."""

    tenant: str
    orbit: str
    call_id: str
    remote: str  # the parked party's URI, shown on the lamp ("" unknown)
    parker: str  # the extension that parked it ("" if the caller dialled the park itself)
    retrieved: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ParkingLot:
    """The parked calls of every tenant (see the module docstring)."""

    def __init__(self, lamps: LampBoard | None = None) -> None:
        self.lamps = lamps
        self._orbits: dict[str, dict[str, ParkedCall]] = {}  # tenant -> orbit -> call
        self._watched: dict[str, frozenset[str]] = {}  # tenant -> orbits phones may watch

    def configure(self, tenant: str, settings: ParkSettings | None, domain: str = "") -> None:
        """Make the tenant's orbits watchable lamps (dropping orbits no longer configured)."""
        orbits = frozenset(settings.orbit_extensions()) if settings is not None else frozenset()
        old = self._watched.get(tenant, frozenset())
        self._watched[tenant] = orbits
        if self.lamps is None:
            return
        for orbit in old - orbits:
            self.lamps.remove_resource(tenant, orbit)
        for orbit in orbits - old:
            self.lamps.add_resource(tenant, orbit)

    def parked(self, tenant: str, orbit: str) -> ParkedCall | None:
        """The call parked in ``orbit`` now, if any."""
        return self._orbits.get(tenant, {}).get(orbit)

    def calls(self, tenant: str) -> list[ParkedCall]:
        """The tenant's parked calls, by orbit."""
        return [c for _, c in sorted(self._orbits.get(tenant, {}).items())]

    def free_orbit(self, tenant: str, settings: ParkSettings) -> str | None:
        """The first orbit holding no call."""
        taken = self._orbits.get(tenant, {})
        return next((o for o in settings.orbit_extensions() if o not in taken), None)

    def park(self, parked: ParkedCall) -> None:
        """Put ``parked`` in its orbit; its lamp lights. Raises OrbitTaken."""
        orbits = self._orbits.setdefault(parked.tenant, {})
        if parked.orbit in orbits:
            raise OrbitTaken(parked.orbit)
        orbits[parked.orbit] = parked
        if self.lamps is not None:
            dialog = LampDialog(
                f"park-{parked.orbit}", "confirmed", False, parked.call_id, "", parked.remote
            )
            self.lamps.show(parked.tenant, parked.orbit, dialog)

    def take(self, tenant: str, orbit: str) -> ParkedCall | None:
        """Take the call out of ``orbit`` (retrieved, rung back or gone); its lamp goes dark."""
        parked = self._orbits.get(tenant, {}).pop(orbit, None)
        if parked is not None and self.lamps is not None:
            self.lamps.clear(tenant, orbit, f"park-{orbit}")
        return parked
