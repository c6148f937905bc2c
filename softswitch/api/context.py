"""What the API works on: the running switch (a narrow view of it) and its own parts.

The API may run on its own thread and event loop (see `softswitch.api.server`): then it
has its own Store connection for what only needs the database (logins, audit, call
history), and whatever reads or drives the live switch runs on the switch's loop through
`softswitch.api.loops`, so the switch's objects are only ever touched from their own loop.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from config.api import ApiSettings
from config.models import Tenant
from softswitch.api.events import EventBus
from softswitch.api.loops import running_loop
from softswitch.api.registrations import RegistrationIndex
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
    started: float = field(default_factory=time.time)
    # Set while the API runs on its own thread: its loop and its Store connection.
    api_loop: asyncio.AbstractEventLoop | None = None
    api_store: Store | None = None
    # Bearer tokens verified in the last few seconds (forget them on revoke / login change).
    tokens: VerifiedTokens = field(default_factory=VerifiedTokens)
    # The tenants' AORs in extension order for the registrations list (switch loop only).
    registrations: RegistrationIndex = field(default_factory=RegistrationIndex)

    @property
    def store(self) -> Store:
        """The Store connection of the loop the caller runs on (a connection belongs to
        the loop that opened it)."""
        if self.api_store is not None and running_loop() is self.api_loop:
            return self.api_store
        return self.switch.store

    def tenants(self) -> dict[str, Tenant]:
        """The tenants as the switch runs them now (provisioning may replace the list)."""
        return {t.name: t for t in self.switch.config.tenants}

    def tenant(self, name: str) -> Tenant | None:
        return next((t for t in self.switch.config.tenants if t.name == name), None)
