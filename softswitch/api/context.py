"""What the API works on: the running switch (a narrow view of it) and its own parts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from config.api import ApiSettings
from config.models import SwitchConfig, Tenant
from storage.base import Store

if TYPE_CHECKING:
    from media.control import MediaControl
    from softswitch.api.events import EventBus
    from softswitch.calls.manager import CallManager
    from softswitch.calls.services import CallServices
    from softswitch.location import LocationService
    from softswitch.overload import OverloadGuard
    from softswitch.routing_state import DisasterState
    from softswitch.sip.transaction import TransactionLayer

__all__ = ["ApiContext", "SwitchView"]


class SwitchView(Protocol):
    """The parts of `softswitch.server.Switch` the API reads and drives."""

    config: SwitchConfig
    store: Store
    location: LocationService
    calls: CallManager | None
    services: CallServices | None
    disaster_state: DisasterState
    overload: OverloadGuard
    transactions: TransactionLayer
    media: MediaControl | None
    counters: Any  # SwitchCounters: received, malformed, responses_by_status


@dataclass
class ApiContext:
    """Shared by every request of one API server (``request.app.state.ctx``)."""

    switch: SwitchView
    settings: ApiSettings
    events: EventBus
    started: float = field(default_factory=time.time)

    @property
    def store(self) -> Store:
        return self.switch.store

    def tenants(self) -> dict[str, Tenant]:
        """The tenants as the switch runs them now (provisioning may replace the list)."""
        return {t.name: t for t in self.switch.config.tenants}

    def tenant(self, name: str) -> Tenant | None:
        return next((t for t in self.switch.config.tenants if t.name == name), None)
