"""The event stream (``/v1/events``): calls created, answered and ended; registrations
added and removed; conference joins and leaves; configuration changes.

Nothing on the switch's hot path publishes: while at least one client listens, a sampler
(`Sampler`, on the switch's loop) compares the switch's state every ``[api]
events_interval`` seconds with the previous sample and publishes the differences (a call
answered and ended between two samples shows only its end). A call's end is published
from its CDR (the switch's CDR listeners), so none is missed; configuration changes made
through the API are published directly. Each event names its tenant and the extensions
involved, and is delivered only to listeners whose login sees that tenant, those
extensions and the area (`EventBus`, in the API's process).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from softswitch.api.principal import Principal
from softswitch.api.roles import Area
from storage.cdr import Cdr

if TYPE_CHECKING:
    from config.models import SwitchConfig
    from softswitch.api.switchview import LiveSwitch

__all__ = ["Event", "EventBus", "Listener", "Sample", "Sampler", "call_ended", "config_changed"]

log = structlog.get_logger(__name__)

QUEUE_SIZE = 1000  # events a slow listener may fall behind before it is disconnected


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, as a listener receives it (``data`` is the payload)."""

    type: str  # call.created, call.answered, call.ended, registration.added, ...
    tenant: str
    area: Area  # the area a listener must be allowed to read
    data: dict[str, Any]
    parties: tuple[str, ...] = ()  # extensions involved: per-user scopes filter on these
    at: float = field(default_factory=time.time)

    def json(self) -> dict[str, Any]:
        return {"type": self.type, "tenant": self.tenant, "at": self.at, "data": self.data}

    def visible_to(self, principal: Principal, tenants: dict[str, Any]) -> bool:
        if not principal.sees_tenant(self.tenant) or not principal.may(self.area, "r"):
            return False
        tenant = tenants.get(self.tenant)
        allowed = principal.extensions(tenant) if tenant is not None else frozenset()
        return allowed is None or any(p in allowed for p in self.parties)


class Listener:
    __slots__ = ("principal", "queue")

    def __init__(self, principal: Principal) -> None:
        self.principal = principal
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)


class EventBus:
    """Fans events out to the listeners of this API (on the API's loop). ``feed(True)`` is
    called when the first listener subscribes and ``feed(False)`` when the last one goes:
    it starts and stops the switch's `Sampler` (on the switch's loop, or over the control
    channel when the API runs in its own process)."""

    def __init__(self, config: Callable[[], SwitchConfig], feed: Callable[[bool], None]) -> None:
        self._config = config
        self._feed = feed
        self._listeners: set[Listener] = set()
        self.published = 0

    def __len__(self) -> int:
        return len(self._listeners)

    def publish(self, event: Event) -> None:
        """Deliver to every listener allowed to see it."""
        if not self._listeners:
            return
        self.published += 1
        tenants = {t.name: t for t in self._config().tenants}
        for listener in list(self._listeners):
            if not event.visible_to(listener.principal, tenants):
                continue
            try:
                listener.queue.put_nowait(event)
            except asyncio.QueueFull:  # too slow: drop it rather than hold memory
                self.unsubscribe(listener)
                with contextlib.suppress(asyncio.QueueFull):
                    listener.queue.get_nowait()
                    listener.queue.put_nowait(None)

    def subscribe(self, principal: Principal) -> Listener:
        listener = Listener(principal)
        first = not self._listeners
        self._listeners.add(listener)
        if first:
            self._feed(True)
        return listener

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.discard(listener)
            if not self._listeners:
                self._feed(False)

    async def close(self) -> None:
        for listener in list(self._listeners):
            self.unsubscribe(listener)
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)


class Sampler:
    """Runs on the switch's loop while someone listens: compares the switch's state every
    ``interval`` seconds with the previous sample and publishes the differences."""

    def __init__(
        self, switch: LiveSwitch, interval: float, publish: Callable[[Event], None]
    ) -> None:
        self.switch = switch
        self.interval = interval
        self.publish = publish
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def feed(self, on: bool) -> None:
        """Start (``on``) or stop sampling."""
        if on and not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._sample_loop(), name="api-events-sampler"
            )
        elif not on and self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sample_loop(self) -> None:
        sample = Sample.take(self.switch)
        while True:
            await asyncio.sleep(self.interval)
            try:
                current = Sample.take(self.switch)
                for event in sample.changes(current):
                    self.publish(event)
                sample = current
            except Exception:  # a sampler bug must not end the stream silently
                log.exception("api.events_sample_failed")


@dataclass(slots=True)
class Sample:
    """The observable state of the switch at one moment."""

    calls: dict[str, tuple[str, str, dict[str, Any]]]  # id -> (tenant, state, summary)
    bindings: dict[tuple[str, str], tuple[str, dict[str, Any]]]  # key -> (tenant, summary)
    participants: dict[tuple[str, str, str], dict[str, Any]]  # (tenant, conf, id) -> info
    plans: dict[tuple[str, str], bool]  # (tenant, plan) -> enabled

    @classmethod
    def take(cls, switch: LiveSwitch) -> Sample:
        calls: dict[str, tuple[str, str, dict[str, Any]]] = {}
        if switch.calls is not None:
            for call in switch.calls.calls.values():
                summary = {
                    "id": call.id,
                    "caller": call.caller_number,
                    "dialled": call.dialled,
                    "callee": call.callee,
                    "direction": call.direction,
                }
                calls[call.id] = (call.tenant, call.state.value, summary)
        by_domain = {t.domain: t.name for t in switch.config.tenants}
        bindings: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        for b in switch.location.all_bindings():
            user, _, domain = b.aor.removeprefix("sip:").partition("@")
            tenant = by_domain.get(domain.lower())
            if tenant is not None:
                summary = {"aor": b.aor, "extension": user, "contact": b.contact}
                bindings[b.key] = (tenant, summary)
        participants: dict[tuple[str, str, str], dict[str, Any]] = {}
        if switch.services is not None:
            for conf in switch.services.conferences.active():
                for p in conf.participants:
                    participants[(conf.tenant, conf.name, p.id)] = {
                        "conference": conf.name,
                        "participant": p.id,
                        "number": p.number,
                        "name": p.name,
                    }
        plans = {(s.tenant, s.plan): s.enabled for s in switch.disaster_state.states()}
        return cls(calls, bindings, participants, plans)

    def changes(self, now: Sample) -> list[Event]:
        events: list[Event] = []
        for call_id, (tenant, state, summary) in now.calls.items():
            parties: tuple[str, ...] = (summary["caller"], summary["dialled"], summary["callee"])
            before = self.calls.get(call_id)
            if before is None:
                events.append(Event("call.created", tenant, Area.CALLS, summary, parties))
            if state == "answered" and (before is None or before[1] != "answered"):
                events.append(Event("call.answered", tenant, Area.CALLS, summary, parties))
        for key, (tenant, summary) in now.bindings.items():
            if key not in self.bindings:
                events.append(
                    Event(
                        "registration.added",
                        tenant,
                        Area.REGISTRATIONS,
                        summary,
                        (summary["extension"],),
                    )
                )
        for key, (tenant, summary) in self.bindings.items():
            if key not in now.bindings:
                events.append(
                    Event(
                        "registration.removed",
                        tenant,
                        Area.REGISTRATIONS,
                        summary,
                        (summary["extension"],),
                    )
                )
        for seat, info in now.participants.items():
            if seat not in self.participants:
                events.append(Event("conference.joined", seat[0], Area.CONFERENCES, info))
        for seat, info in self.participants.items():
            if seat not in now.participants:
                events.append(Event("conference.left", seat[0], Area.CONFERENCES, info))
        for (tenant, plan), enabled in now.plans.items():
            if self.plans.get((tenant, plan)) != enabled:  # a plan's state is stored on change
                events.append(config_changed(tenant, "disaster_plan", plan, enabled=enabled))
        return events


def call_ended(cdr: Cdr) -> Event:
    """The end of a call, from its CDR."""
    summary = {
        "id": cdr.call_id,
        "caller": cdr.caller_number,
        "dialled": cdr.dialled,
        "callee": cdr.destination,
        "direction": cdr.direction,
        "disposition": cdr.disposition,
        "duration": round(cdr.duration, 3),
    }
    parties = (cdr.caller_number, cdr.dialled, cdr.destination)
    return Event("call.ended", cdr.tenant, Area.CALLS, summary, parties)


def config_changed(tenant: str, kind: str, name: str, **data: Any) -> Event:
    """A configuration change (a disaster plan executed, an object provisioned...)."""
    return Event(
        "config.changed",
        tenant,
        Area.DISASTER_PLANS if kind == "disaster_plan" else Area.USERS,
        {"kind": kind, "name": name, **data},
        (),
    )
