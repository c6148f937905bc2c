"""What the call layer tells observers about its users' legs (busy lamps, RFC 4235).

A user's leg is the caller's leg of a call a user placed, or an outbound leg ringing one
of a user's registered devices. The call layer reports when such a leg starts (a caller's
call set up, a device ringing), is answered and ends; it defines the protocol here and
whoever shows lamps implements it, so the call layer imports nothing above it.

A leg is told only to the observers that watch its user when it starts (``watches``): a
user nobody watches costs a call one dictionary lookup per observer, not a lamp update
per leg event (the call set-up cost, issue 14). A watch that begins during a call shows
the calls that start after it.
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

    def watches(self, tenant: str, user: str) -> bool:
        """Whether the observer follows ``user`` of ``tenant`` now (asked as a leg starts)."""

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
        # Legs whose start was told, with the observers told.
        self._live: dict[Leg, tuple[UserLeg, list[CallObserver]]] = {}

    def started(self, leg: Leg) -> None:
        if not self.observers or leg in self._live:
            return
        call = leg.call
        if leg.inbound:
            if call.from_trunk or call.originated is not None:
                return
            user, remote = call.caller_number, call.dialled
        elif leg.route is None and leg.target.startswith("user_devices"):
            user, remote = leg.label, call.caller_number
        else:
            return
        watching = [o for o in self.observers if o.watches(call.tenant, user)]
        if not watching:
            return
        told = self._user_leg(leg, user, remote)
        self._live[leg] = (told, watching)
        for observer in watching:
            observer.leg_started(told)

    def answered(self, leg: Leg | None) -> None:
        live = self._live.get(leg) if leg is not None else None
        if live is None:
            return
        for observer in live[1]:
            observer.leg_answered(live[0])

    def ended(self, leg: Leg | None) -> None:
        live = self._live.pop(leg, None) if leg is not None else None
        if live is None:
            return
        for observer in live[1]:
            observer.leg_ended(live[0])

    def _user_leg(self, leg: Leg, user: str, remote: str) -> UserLeg:
        call = leg.call
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
