"""What the API works on: a narrow view of the switch, the switch's live state, its own parts.

The API runs in a process of its own when the switch's Store can be opened twice
(`softswitch.api.process`), else on the switch's loop (`softswitch.api.server`). Either way
a request reads the configuration, the Store, provisioning and mailboxes through
``switch`` (`SwitchView`: the switch itself, or the API process's own connection and
services), and the live switch only through ``live`` (`softswitch.api.live.Live`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from config.api import ApiSettings
from config.models import Tenant
from softswitch.api.events import EventBus
from softswitch.api.live import Live
from softswitch.api.switchview import SwitchView
from softswitch.api.tokencache import VerifiedTokens
from storage.base import Store

__all__ = ["ApiContext", "SwitchView"]


@dataclass
class ApiContext:
    """Shared by every request of one API server (``request.app.state.ctx``)."""

    switch: SwitchView
    settings: ApiSettings
    events: EventBus
    live: Live
    started: float = field(default_factory=time.time)
    # Bearer tokens verified in the last few seconds (forget them on revoke / login change).
    tokens: VerifiedTokens = field(default_factory=VerifiedTokens)

    @property
    def store(self) -> Store:
        return self.switch.store

    def tenants(self) -> dict[str, Tenant]:
        """The tenants as the switch runs them now (provisioning may replace the list)."""
        return {t.name: t for t in self.switch.config.tenants}

    def tenant(self, name: str) -> Tenant | None:
        return next((t for t in self.switch.config.tenants if t.name == name), None)
