"""The live state of a tenant's queues read back from the event log: who is waiting, and
each agent's status (set by people) and state (set by the switch).

The switch logs every change as it happens, so the log's tail is the live state; the CLI
reads it without talking to the running switch, and every node sharing the database sees
the same picture.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storage.queue_events import QueueEvent

__all__ = ["AgentNow", "CallerNow", "live_state"]


@dataclass(frozen=True, slots=True)
class CallerNow:
    """A caller waiting in a queue."""

    queue: str
    call_id: str
    entered: float
    ringing: tuple[str, ...]  # agents being offered the call now


@dataclass(frozen=True, slots=True)
class AgentNow:
    """An agent: status (available, on_break, logged_out) and state (idle, ringing,
    in_call, wrap_up), since when."""

    agent: str
    status: str
    reason: str
    state: str
    since: float
    queue: str
    call_id: str


def live_state(
    events: Iterable[QueueEvent], statuses: Iterable[QueueEvent]
) -> tuple[list[CallerNow], list[AgentNow]]:
    """Callers waiting (longest first) and agents (by extension), from the recent events
    and each agent's latest status event."""
    waiting: dict[tuple[str, str], float] = {}
    ringing: dict[tuple[str, str], list[str]] = {}
    state: dict[str, tuple[str, float, str, str]] = {}
    for e in sorted(events, key=lambda e: e.at):
        key = (e.queue, e.call_id)
        if e.event == "entered":
            waiting[key] = e.at
            ringing[key] = []
        elif e.event == "offered":
            ringing.setdefault(key, []).append(e.agent)
            state[e.agent] = ("ringing", e.at, e.queue, e.call_id)
        elif e.event == "missed":
            if e.agent in ringing.get(key, []):
                ringing[key].remove(e.agent)
            if state.get(e.agent, ("",))[0] == "ringing":
                state[e.agent] = ("idle", e.at, "", "")
        elif e.event == "answered":
            waiting.pop(key, None)
            for other in ringing.pop(key, []):
                if other != e.agent and state.get(other, ("",))[0] == "ringing":
                    state[other] = ("idle", e.at, "", "")
            state[e.agent] = ("in_call", e.at, e.queue, e.call_id)
        elif e.event in ("abandoned", "exited"):
            waiting.pop(key, None)
            for other in ringing.pop(key, []):
                if state.get(other, ("",))[0] == "ringing":
                    state[other] = ("idle", e.at, "", "")
        elif e.event == "completed":
            state[e.agent] = ("idle", e.at, "", "")
        elif e.event == "wrapup_start":
            state[e.agent] = ("wrap_up", e.at, e.queue, e.call_id)
        elif e.event == "wrapup_end":
            state[e.agent] = ("idle", e.at, "", "")
    callers = [
        CallerNow(q, c, at, tuple(ringing.get((q, c), ())))
        for (q, c), at in sorted(waiting.items(), key=lambda item: item[1])
    ]
    latest = {s.agent: s for s in statuses}
    agents = []
    for name in sorted(set(latest) | set(state)):
        status = latest.get(name)
        label, reason = (status.status, status.status_reason) if status else ("logged_out", "")
        changed = status.at if status else 0.0
        now_state, since, queue, call_id = state.get(name, ("idle", changed, "", ""))
        if now_state == "idle":
            since = max(since, changed)
        agents.append(AgentNow(name, label, reason, now_state, since, queue, call_id))
    return callers, agents
