"""SIP-specific event notification (RFC 6665), notifier side, sans-I/O.

The subscription table answers SUBSCRIBE requests (create, refresh, unsubscribe), keeps
each subscription's dialog (RFC 3261 12 via :class:`~softswitch.sip.dialog.Dialog`, so
NOTIFYs get the right Request-URI, route set, tags and a CSeq that grows per dialog),
expires subscriptions on a clock and builds the NOTIFYs with their ``Subscription-State``.
It neither sends nor authenticates: the caller decides who the subscriber is and which
resource the Request-URI names, sends what it is handed, and tells the table how each
NOTIFY ended (a 481, a timeout or any other failure ends the subscription, RFC 6665
4.2.2). Driven like the other cores::

    outcome = table.subscribe(request, subscriber=..., resource=..., peer=..., contact=..., now=t)
    notify = table.notify(sub, via, body, content_type, now=t)   # then send it
    deadline = table.get_timer(); expired = table.handle_timer(now)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from softswitch.sip.address import Address
from softswitch.sip.dialog import Dialog, uri_address
from softswitch.sip.message import SipParseError, SipRequest, new_tag
from softswitch.sip.timers import TimerEntry, TimerHeap

__all__ = [
    "EventPackage",
    "SubscribeOutcome",
    "Subscription",
    "SubscriptionLimits",
    "SubscriptionState",
    "SubscriptionTable",
]


@dataclass(frozen=True, slots=True)
class EventPackage:
    """An event package the notifier serves: its name (the ``Event`` token), the body
    type of its NOTIFYs and its default subscription duration (RFC 6665 7.2)."""

    name: str
    content_type: str
    default_expires: int = 3600


@dataclass(frozen=True, slots=True)
class SubscriptionLimits:
    """Bounds on subscriptions: durations granted (a shorter one than ``min_expires`` gets
    423 with Min-Expires, a longer one is cut to ``max_expires``), and how many one
    subscriber and the whole table may hold."""

    min_expires: int = 60
    max_expires: int = 3600
    per_subscriber: int = 100
    total: int = 100_000

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.max_expires:
            raise ValueError("subscription limits: need 0 < min_expires <= max_expires")
        if self.per_subscriber < 1 or self.total < 1:
            raise ValueError("subscription limits: per_subscriber and total must be >= 1")


class SubscriptionState(StrEnum):
    ACTIVE = "active"
    TERMINATED = "terminated"


class Subscription:
    """One subscription: its dialog, what it watches and until when.

    ``subscriber`` is who asked (an address-of-record), ``resource`` what the package
    reports on (the caller's key, e.g. ``"acme/101"``); ``version`` counts the NOTIFYs that
    carried state (the dialog package's ``version``); ``app_data`` is the caller's.
    """

    __slots__ = (
        "_timer",
        "app_data",
        "dialog",
        "event_id",
        "expires_at",
        "package",
        "peer",
        "reason",
        "resource",
        "state",
        "subscriber",
        "version",
    )

    def __init__(
        self,
        package: EventPackage,
        event_id: str | None,
        dialog: Dialog,
        subscriber: str,
        resource: str,
        peer: Address,
        expires_at: float,
    ) -> None:
        self.package = package
        self.event_id = event_id
        self.dialog = dialog
        self.subscriber = subscriber
        self.resource = resource
        self.peer = peer
        self.expires_at = expires_at
        self.state = SubscriptionState.ACTIVE
        self.reason: str | None = None
        self.version = 0
        self.app_data: Any = None
        self._timer: TimerEntry | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """(Call-ID, our tag, their tag): how requests in its dialog find it."""
        dialog = self.dialog
        return dialog.call_id, dialog.local_tag, dialog.remote_tag or ""

    @property
    def active(self) -> bool:
        return self.state is SubscriptionState.ACTIVE

    def destination(self) -> Address:
        """Where its NOTIFYs go: the first route, else where the SUBSCRIBE came from (the
        phone behind NAT is reachable there, as the registrar's bindings are)."""
        if self.dialog.route_set:
            try:
                return uri_address(self.dialog.next_hop_uri())
            except SipParseError:
                pass
        return self.peer

    def __repr__(self) -> str:
        return f"<Subscription {self.package.name} {self.resource} {self.state.value}>"


@dataclass(slots=True)
class SubscribeOutcome:
    """The table's answer to one SUBSCRIBE.

    ``status``/``reason``/``headers`` make the response (``to_tag`` is the tag a 2xx must
    carry). ``subscription`` is set for a 2xx: ``created`` tells a new one from a refresh,
    and a subscription no longer ``active`` (unsubscribe, fetch) wants its final NOTIFY
    and is already out of the table.
    """

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    subscription: Subscription | None = None
    created: bool = False
    to_tag: str | None = None


def _event_of(request: SipRequest) -> tuple[str, str | None] | None:
    """The package and ``id`` of the Event header (RFC 6665 8.2.1), or None if absent."""
    value = request.get("Event")
    if value is None:
        return None
    token, _, params = value.partition(";")
    event_id = None
    for param in params.split(";"):
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "id":
            event_id = param_value.strip() or None
    return token.strip().lower(), event_id


class SubscriptionTable:
    """Every subscription of the notifier; see the module docstring."""

    def __init__(
        self, packages: Iterable[EventPackage], limits: SubscriptionLimits | None = None
    ) -> None:
        self.packages: dict[str, EventPackage] = {p.name: p for p in packages}
        self.limits = limits or SubscriptionLimits()
        self._by_key: dict[tuple[str, str, str], Subscription] = {}
        self._by_resource: dict[tuple[str, str], dict[tuple[str, str, str], Subscription]] = {}
        self._by_subscriber: dict[str, int] = {}
        self._heap = TimerHeap()

    # ----------------------------------------------------------------- introspection
    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(list(self._by_key.values()))

    def watching(self, package: str, resource: str) -> list[Subscription]:
        """The active subscriptions to ``package`` for ``resource``."""
        found = self._by_resource.get((package, resource))
        return list(found.values()) if found else []

    def watched(self, package: str, resource: str) -> bool:
        """Whether any subscription to ``package`` watches ``resource`` now."""
        return bool(self._by_resource.get((package, resource)))

    def count_of(self, subscriber: str) -> int:
        return self._by_subscriber.get(subscriber, 0)

    @property
    def allow_events(self) -> str:
        """The ``Allow-Events`` value: the packages served."""
        return ", ".join(self.packages)

    def find(self, request: SipRequest) -> Subscription | None:
        """The subscription whose dialog ``request`` (with a To tag) is in, if any."""
        to, from_ = request.to, request.from_
        if to is None or from_ is None or not to.tag:
            return None
        return self._by_key.get((request.call_id or "", to.tag, from_.tag or ""))

    # ----------------------------------------------------------------- SUBSCRIBE
    def package_of(self, request: SipRequest) -> EventPackage | None:
        """The package a SUBSCRIBE asks for, None when absent or not served (489)."""
        event = _event_of(request)
        return None if event is None else self.packages.get(event[0])

    def subscribe(
        self,
        request: SipRequest,
        *,
        subscriber: str,
        resource: str,
        peer: Address,
        contact: str,
        now: float,
    ) -> SubscribeOutcome:
        """Answer a SUBSCRIBE from ``subscriber`` (already authenticated) for ``resource``.

        Raises SipParseError for a request whose dialog headers cannot be read.
        """
        event = _event_of(request)
        package = None if event is None else self.packages.get(event[0])
        if event is None or package is None:
            return SubscribeOutcome(489, "Bad Event", [("Allow-Events", self.allow_events)])
        event_id = event[1]
        accept = request.get_all("Accept")
        if accept and not _accepts(accept, package.content_type):
            return SubscribeOutcome(406, "Not Acceptable", [("Accept", package.content_type)])
        requested = request.expires
        if requested is None:
            requested = package.default_expires
        limits = self.limits
        if 0 < requested < limits.min_expires:
            return SubscribeOutcome(
                423, "Interval Too Brief", [("Min-Expires", str(limits.min_expires))]
            )
        granted = min(requested, limits.max_expires)
        to = request.to
        if to is not None and to.tag:
            return self._refresh(request, package, event_id, subscriber, granted, now)
        if granted and (
            self._by_subscriber.get(subscriber, 0) >= limits.per_subscriber
            or len(self._by_key) >= limits.total
        ):
            return SubscribeOutcome(403, "Too Many Subscriptions")
        tag = new_tag()
        dialog = Dialog.from_uas(request, tag, contact)
        sub = Subscription(package, event_id, dialog, subscriber, resource, peer, now + granted)
        headers = [("Expires", str(granted)), ("Contact", contact)]
        outcome = SubscribeOutcome(200, "OK", headers, sub, True, tag)
        if granted == 0:
            # A fetch (RFC 6665 4.4.3): one NOTIFY with the state, then it is over.
            sub.state = SubscriptionState.TERMINATED
            sub.reason = "timeout"
            return outcome
        self._add(sub)
        return outcome

    def _refresh(
        self,
        request: SipRequest,
        package: EventPackage,
        event_id: str | None,
        subscriber: str,
        granted: int,
        now: float,
    ) -> SubscribeOutcome:
        sub = self.find(request)
        if (
            sub is None
            or sub.package is not package
            or sub.event_id != event_id
            or sub.subscriber != subscriber
        ):
            return SubscribeOutcome(481, "Subscription Does Not Exist")
        if not sub.dialog.accept_cseq(request):
            return SubscribeOutcome(500, "CSeq Out of Order")
        sub.dialog.refresh_target(request)
        headers = [("Expires", str(granted)), ("Contact", sub.dialog.local_contact)]
        outcome = SubscribeOutcome(200, "OK", headers, sub, False, sub.dialog.local_tag)
        if granted == 0:
            self.terminate(sub, "timeout")
            return outcome
        sub.expires_at = now + granted
        self._arm(sub)
        return outcome

    # ----------------------------------------------------------------- NOTIFY
    def notify(
        self,
        sub: Subscription,
        via: str,
        body: bytes,
        now: float,
        *,
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> SipRequest:
        """The next NOTIFY of ``sub`` carrying ``body`` (its state now), with
        ``Subscription-State`` active and the seconds left, or terminated with its reason.
        Counts ``version`` up."""
        if sub.state is SubscriptionState.ACTIVE:
            left = max(0, int(sub.expires_at - now + 0.5))
            state = f"active;expires={left}"
        else:
            state = f"terminated;reason={sub.reason or 'noresource'}"
        event = sub.package.name
        if sub.event_id is not None:
            event += f";id={sub.event_id}"
        sub.version += 1
        return sub.dialog.build_request(
            "NOTIFY",
            via,
            body=body,
            content_type=content_type or sub.package.content_type,
            headers=(("Event", event), ("Subscription-State", state), *headers),
        )

    def notify_ended(self, sub: Subscription, status: int) -> bool:
        """How a NOTIFY of ``sub`` ended (its final status; 408 for a timeout, 503 for a
        transport failure). True: the subscription is over (RFC 6665 4.2.2: the
        subscriber does not know it any more, or cannot be reached)."""
        if 200 <= status < 300 or status in (401, 407):
            return False
        self.terminate(sub, "deactivated")
        return True

    def terminate(self, sub: Subscription, reason: str) -> None:
        """End ``sub`` (out of the table; its final NOTIFY says ``reason``)."""
        if sub.state is SubscriptionState.TERMINATED:
            return
        sub.state = SubscriptionState.TERMINATED
        sub.reason = reason
        self._remove(sub)

    # ----------------------------------------------------------------- expiry
    def get_timer(self) -> float | None:
        """When the next subscription expires, if any."""
        return self._heap.next_deadline()

    def handle_timer(self, now: float) -> list[Subscription]:
        """End the subscriptions that expired by ``now`` (reason ``timeout``) and return
        them: each wants its final NOTIFY."""
        expired: list[Subscription] = []
        heap = self._heap
        while True:
            sub = heap.pop_due(now)
            if sub is None:
                return expired
            sub._timer = None
            if sub.active:
                self.terminate(sub, "timeout")
                expired.append(sub)

    # ----------------------------------------------------------------- the table
    def _add(self, sub: Subscription) -> None:
        self._by_key[sub.key] = sub
        self._by_resource.setdefault((sub.package.name, sub.resource), {})[sub.key] = sub
        self._by_subscriber[sub.subscriber] = self._by_subscriber.get(sub.subscriber, 0) + 1
        self._arm(sub)

    def _remove(self, sub: Subscription) -> None:
        if self._by_key.pop(sub.key, None) is None:
            return
        watchers = self._by_resource.get((sub.package.name, sub.resource))
        if watchers is not None:
            watchers.pop(sub.key, None)
            if not watchers:
                del self._by_resource[(sub.package.name, sub.resource)]
        left = self._by_subscriber.get(sub.subscriber, 1) - 1
        if left > 0:
            self._by_subscriber[sub.subscriber] = left
        else:
            self._by_subscriber.pop(sub.subscriber, None)
        if sub._timer is not None:
            self._heap.cancel(sub._timer)
            sub._timer = None

    def _arm(self, sub: Subscription) -> None:
        if sub._timer is not None:
            self._heap.cancel(sub._timer)
        sub._timer = self._heap.push(sub.expires_at, sub)


def _accepts(accept: list[str], content_type: str) -> bool:
    """Whether the Accept values admit ``content_type`` (``*/*`` and ``type/*`` too)."""
    main = content_type.split("/", 1)[0]
    for value in accept:
        media = value.split(";", 1)[0].strip().lower()
        if media in (content_type, "*/*", f"{main}/*"):
            return True
    return False
