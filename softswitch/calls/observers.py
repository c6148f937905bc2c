"""What the call layer tells observers about its users' legs (busy lamps, RFC 4235).

A user's leg is the caller's leg of a call a user placed, or an outbound leg ringing one
of a user's registered devices. The call layer reports when such a leg starts (a caller's
call set up, a device ringing), is answered and ends; it defines the protocol here and
whoever shows lamps implements it, so the call layer imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from softswitch.calls.call import Leg

__all__ = ["CallObserver", "CallObservers", "UserLeg"]


@dataclass(frozen=True, slots=True)
class UserLeg:
    """One leg of a user, as a lamp shows it.

    ``leg_id`` is unique per leg (a call rings several devices of one user: one each);
    ``initiator``: the user placed the call; ``remote`` is the other party's number.
    """

    tenant: str
    domain: str
    user: str
    leg_id: str
    call_id: str
    local_tag: str
    initiator: bool
    remote: str


class CallObserver(Protocol):
    """Told of users' legs; called on the event loop, must not block."""

    def leg_started(self, leg: UserLeg) -> None:
        """The user's call is being set up (caller side) or a device of theirs rings."""

    def leg_answered(self, leg: UserLeg) -> None:
        """The leg is answered (a call in progress)."""

    def leg_ended(self, leg: UserLeg) -> None:
        """The leg is over (hung up, cancelled, refused, answered elsewhere)."""


class CallObservers:
    """The observers the call manager reports to; each leg's end is told once, and only
    for a leg whose start was told."""

    def __init__(self) -> None:
        self.observers: list[CallObserver] = []
        self._live: dict[Leg, UserLeg] = {}  # legs whose start was told

    def started(self, leg: Leg) -> None:
        if not self.observers or leg in self._live:
            return
        user = self._user_leg(leg)
        if user is None:
            return
        self._live[leg] = user
        for observer in self.observers:
            observer.leg_started(user)

    def answered(self, leg: Leg | None) -> None:
        user = self._live.get(leg) if leg is not None else None
        if user is None:
            return
        for observer in self.observers:
            observer.leg_answered(user)

    def ended(self, leg: Leg | None) -> None:
        user = self._live.pop(leg, None) if leg is not None else None
        if user is None:
            return
        for observer in self.observers:
            observer.leg_ended(user)

    def _user_leg(self, leg: Leg) -> UserLeg | None:
        call = leg.call
        if leg.inbound:
            if call.from_trunk or call.originated is not None:
                return None
            user, remote = call.caller_number, call.dialled
        elif leg.route is None and leg.target.startswith("user_devices"):
            user, remote = leg.label, call.caller_number
        else:
            return None
        return UserLeg(
            tenant=call.tenant,
            domain=call.domain,
            user=user,
            leg_id=f"{leg.call_id}-{leg.local_tag}",
            call_id=leg.call_id,
            local_tag=leg.local_tag,
            initiator=leg.inbound,
            remote=remote,
        )
