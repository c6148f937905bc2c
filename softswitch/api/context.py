"""What the API works on: the running switch (a narrow view of it) and its own parts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from config.api import ApiSettings
from config.models import Tenant
from softswitch.api.events import EventBus
from softswitch.api.switchview import SwitchView
from storage.base import Store

__all__ = ["ApiContext", "SwitchView"]


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
