"""The narrow views of the running switch: what the API process reads (`SwitchView`) and
what the switch's side of `softswitch.api.live` drives (`LiveSwitch`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from config.models import SwitchConfig
from storage.base import Store
from storage.cdr import Cdr

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

__all__ = ["LiveSwitch", "SwitchView"]


class SwitchView(Protocol):
    """What the API's requests use directly, wherever the API runs: the configuration as
    provisioned now, the Store, the provisioning service (changes are stored through it,
    then applied by the switch) and the mailboxes (in the Store and on disk). The switch
    itself is one; the API's own process has its own (`softswitch.api.child`). Live state
    is reached through `softswitch.api.live.Live` only."""

    @property
    def config(self) -> SwitchConfig: ...

    @property
    def store(self) -> Store: ...

    @property
    def provisioning(self) -> ProvisioningRuntime: ...  # the stored model's service

    @property
    def voicemail(self) -> Mailboxes: ...  # mailboxes and their messages


class LiveSwitch(SwitchView, Protocol):
    """The parts of `softswitch.server.Switch` read and driven on its own loop for the API
    (`softswitch.api.live.SwitchLive`, the event sampler, /metrics)."""

    location: LocationService
    calls: CallManager | None
    services: CallServices | None
    disaster_state: DisasterState
    overload: OverloadGuard
    transactions: TransactionLayer
    media: MediaControl | None
    counters: Any  # SwitchCounters: received, malformed, responses_by_status
    cdr_listeners: list[Callable[[Cdr], None]]  # called with each finished call's CDR
