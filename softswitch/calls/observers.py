"""What the call layer tells observers about its users' legs (busy lamps, RFC 4235).

A user's leg is the caller's leg of a call a user placed, or an outbound leg ringing one
of a user's registered devices. The call layer reports when such a leg starts (a caller's
call set up, a device ringing), is answered and ends; it defines the protocol here and
whoever shows lamps implements it, so the call layer imports nothing above it.

A leg is told only to the observers that watch its user when it starts (``watches``): a
user nobody watches costs a call one dictionary lookup per observer, not a lamp update
per leg event (the call set-up cost, issue 14). An observer that begins to watch a user
asks for the user's calls in progress (:meth:`CallObservers.watch`), so a lamp lit during
a call shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from softswitch.calls.leg import LegState

if TYPE_CHECKING:
    from softswitch.calls.call import Call, Leg

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

    def __init__(self, calls: Mapping[str, Call]) -> None:
        self.observers: list[CallObserver] = []
        self._calls = calls  # the calls in progress, by id
        # Legs whose start was told, with the observers told.
        self._live: dict[Leg, tuple[UserLeg, list[CallObserver]]] = {}

    def started(self, leg: Leg) -> None:
        if not self.observers or leg in self._live:
            return
        user = _user_of(leg)
        if user is None:
            return
        tenant = leg.call.tenant
        watching = [o for o in self.observers if o.watches(tenant, user)]
        if not watching:
            return
        told = self._user_leg(leg, user)
        self._live[leg] = (told, watching)
        for observer in watching:
            observer.leg_started(told)

    def watch(self, observer: CallObserver, tenant: str, user: str) -> None:
        """``observer`` begins to watch ``user``: tell it the user's legs in progress (those
        it was not told yet), each started and, when it is, answered."""
        for call in list(self._calls.values()):
            if call.tenant != tenant:
                continue
            for leg in (call.inbound, *call.outbound):
                if leg is None or _user_of(leg) != user:
                    continue
                if leg.state is LegState.ENDED or (
                    not leg.inbound and leg.state is LegState.TRYING
                ):
                    continue  # over, or a device not ringing yet (told when it rings)
                live = self._live.get(leg)
                if live is None:
                    live = self._live[leg] = (self._user_leg(leg, user), [observer])
                elif observer in live[1]:
                    continue
                else:
                    live[1].append(observer)
                observer.leg_started(live[0])
                if leg.state is LegState.ANSWERED:
                    observer.leg_answered(live[0])

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

    @staticmethod
    def _user_leg(leg: Leg, user: str) -> UserLeg:
        call = leg.call
        return UserLeg(
            tenant=call.tenant,
            domain=call.domain,
            user=user,
            leg_id=f"{leg.call_id}-{leg.local_tag}",
            call_id=leg.call_id,
            local_tag=leg.local_tag,
            initiator=leg.inbound,
            remote=call.dialled if leg.inbound else call.caller_number,
        )


def _user_of(leg: Leg) -> str | None:
    """The user whose leg ``leg`` is: the caller of a user's call, or the user a device
    leg rings; None for a leg of nobody's (a trunk, an application)."""
    call = leg.call
    if leg.inbound:
        if call.from_trunk or call.originated is not None:
            return None
        return call.caller_number
    if leg.route is None and leg.target.startswith("user_devices"):
        return leg.label
    return None
