"""The call-queue event log (migration 0009): what the store keeps for each queue event.

The log is append-only. A queued call is told by its events in order: ``entered``, then
``offered``/``missed`` per agent rung, then one end of its wait (``answered``,
``abandoned`` or ``exited`` with a reason), and for an answered call ``completed`` when the
agent's conversation ends. Agents add ``agent_status`` (available, on_break, logged_out,
with a reason) and ``wrapup_start``/``wrapup_end``. softswitch.queues.stats reads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AGENT_STATUSES",
    "EXIT_REASONS",
    "QUEUE_EVENTS",
    "QUEUE_EVENT_COLUMNS",
    "QueueEvent",
    "queue_event_from_row",
    "queue_event_to_row",
]

QUEUE_EVENT_COLUMNS: tuple[str, ...] = (
    "tenant",
    "queue",
    "call_id",
    "agent",
    "event",
    "reason",
    "at",
)

#: Every event kind and which of (queue, call_id, agent) it must name.
QUEUE_EVENTS: dict[str, tuple[bool, bool, bool]] = {
    "entered": (True, True, False),  # a caller joined the queue
    "offered": (True, True, True),  # an agent's phones started ringing; reason: strategy
    "missed": (True, True, True),  # the offer ended unanswered; reason: why
    "answered": (True, True, True),  # the agent took the call: the caller's wait ends
    "abandoned": (True, True, False),  # the caller hung up while waiting
    "exited": (True, True, False),  # the caller left the queue otherwise; reason: EXIT_REASONS
    "completed": (True, True, True),  # the agent's conversation ended
    "wrapup_start": (True, True, True),  # the agent's after-call work for call_id began
    "wrapup_end": (True, True, True),
    "agent_status": (False, False, True),
    # a caller who asked for it is called back; reason: calling, answered, given_up or
    # why a try failed (the answered call back is logged ``entered`` again, reason callback)
    "callback": (True, True, False),  # reason: "<status>" or "<status>:<why>"
}

#: Why a caller left the queue without an agent (``exited`` events).
EXIT_REASONS: frozenset[str] = frozenset(
    {
        "forwarded",  # to another destination (if unanswered, forward if unavailable)
        "voicemail",  # to the queue's voicemail
        "callback",  # asked to be called back (a later `entered` keeps their place)
        "exit_key",  # pressed an exit key
        "full",  # queue full or expected wait too long and nowhere to go: refused
        "no_agents",  # no agent logged in and the queue requires one
        "timeout",  # queue ring timeout with nowhere to go: the call was ended
        "shutdown",  # the switch stopped
    }
)

#: Agent statuses people set (``agent_status`` events; on_break takes a reason after ':').
AGENT_STATUSES: frozenset[str] = frozenset({"available", "on_break", "logged_out"})

_MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """One entry of the queue event log; empty text where a field does not apply."""

    tenant: str
    event: str
    at: float
    queue: str = ""
    call_id: str = ""
    agent: str = ""
    reason: str = ""

    @property
    def status(self) -> str:
        """For ``agent_status``: the status without its reason."""
        return self.reason.partition(":")[0]

    @property
    def status_reason(self) -> str:
        """For ``agent_status``: the reason given with the status ("lunch"), or ""."""
        return self.reason.partition(":")[2]


def _text(name: str, value: object, required: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be text, got {type(value).__name__}")
    if required and not value:
        raise ValueError(f"{name}: required for this event")
    if len(value) > _MAX_TEXT or "\x00" in value:
        raise ValueError(f"{name}: must be at most {_MAX_TEXT} characters without NUL")
    return value


def queue_event_to_row(event: QueueEvent) -> tuple[str, str, str, str, str, str, float]:
    """The row of an event; ValueError naming the field when it is not storable."""
    if not isinstance(event, QueueEvent):
        raise ValueError(f"expected a QueueEvent, got {type(event).__name__}")
    needs = QUEUE_EVENTS.get(event.event)
    if needs is None:
        raise ValueError(f"event: {event.event!r} is not one of {', '.join(QUEUE_EVENTS)}")
    needs_queue, needs_call, needs_agent = needs
    tenant = _text("tenant", event.tenant, True)
    queue = _text("queue", event.queue, needs_queue)
    call_id = _text("call_id", event.call_id, needs_call)
    agent = _text("agent", event.agent, needs_agent)
    reason = _text("reason", event.reason, event.event in ("exited", "agent_status"))
    if event.event == "exited" and reason not in EXIT_REASONS:
        raise ValueError(f"reason: {reason!r} is not one of {', '.join(sorted(EXIT_REASONS))}")
    if event.event == "agent_status" and event.status not in AGENT_STATUSES:
        raise ValueError(
            f"reason: status {event.status!r} is not one of {', '.join(sorted(AGENT_STATUSES))}"
        )
    at = event.at
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValueError(f"at: must be a finite time, got {at!r}")
    return tenant, queue, call_id, agent, event.event, reason, float(at)


def queue_event_from_row(row: tuple[Any, ...]) -> QueueEvent:
    tenant, queue, call_id, agent, event, reason, at = row
    return QueueEvent(
        tenant=str(tenant),
        event=str(event),
        at=float(at),
        queue=str(queue),
        call_id=str(call_id),
        agent=str(agent),
        reason=str(reason),
    )
