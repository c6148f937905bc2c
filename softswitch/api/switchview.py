"""The narrow view of the running switch that the admin API reads and drives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from config.models import SwitchConfig
from storage.base import Store

if TYPE_CHECKING:
    from media.control import MediaControl
    from softswitch.calls.manager import CallManager
    from softswitch.calls.services import CallServices
    from softswitch.location import LocationService
    from softswitch.overload import OverloadGuard
    from softswitch.provisioning.runtime import ProvisioningRuntime
    from softswitch.routing_state import DisasterState
    from softswitch.sip.transaction import TransactionLayer
    from softswitch.voicemail.mailboxes import Mailboxes

__all__ = ["SwitchView"]


class SwitchView(Protocol):
    """The parts of `softswitch.server.Switch` the API reads and drives."""

    config: SwitchConfig
    store: Store
    location: LocationService
    calls: CallManager | None
    services: CallServices | None
    disaster_state: DisasterState
    overload: OverloadGuard
    provisioning: ProvisioningRuntime  # the stored model's service, applied live
    transactions: TransactionLayer
    media: MediaControl | None
    voicemail: Mailboxes  # mailboxes and their messages
    counters: Any  # SwitchCounters: received, malformed, responses_by_status
