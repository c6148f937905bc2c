"""Call-center statistics computed from the queue event log, as the hosted-PBX guide
(reference 002, "Call Center Reports") defines them.

A call is counted in a period when it *entered* the queue inside it; every figure of that
call (its wait, talk, wrap-up, the offers it made) goes with it, so the agents' figures add
up to their queue's. Agents' status times are the parts of their status intervals inside
the period.

Queue figures:
    volume (VOL)           calls that entered the queue
    offered (CO)           VOL less calls forwarded, sent to voicemail or refused (queue full,
                           no agents): the calls that were there to be dispatched to agents
    handled (CH)           calls an agent answered
    abandoned (AC)         callers who hung up while waiting (queue music or agents ringing)
    adjusted_abandoned     AC less those abandoned in under 10 seconds (AAC)
    adjusted_offered       CO less the calls abandoned in under 10 seconds (ACO)
    abandon_rate           AC / CO, percent (AR); adjusted_abandon_rate AAC / ACO (AAR)
    service_level          percent of handled calls answered within the queue's threshold,
                           less the abandon rate (SL; never below 0)
    dial_transfers         percent of VOL offered to at least one agent (DT)
    average_wait           mean time from entering to leaving the wait, any way
    average_answer_speed   mean wait of handled calls (AAS)
    average_talk           mean conversation of handled calls that ended (ATT)
    average_wrapup         mean after-call work per ended handled call (ACW)
    average_handle         average_talk + average_wrapup (AHT; hold is part of talk here)

Agent figures: handled, offered, missed (offers that went unanswered, not counting a
ring-all queue's simultaneous offers: MC), talk_time, average_talk/wrapup/handle,
logged_in (time not logged out: LI), available (AM), unavailable (UM: the rest of the
period), status_times per status and break reason, and from call records inbound
answered calls and minutes (IANS, IM) and outbound attempts, answers and minutes (OATT,
OANS, OM), off-net calls only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from softswitch.queues.period import Period
from storage.cdr import Cdr
from storage.queue_events import QueueEvent

__all__ = [
    "DEFAULT_SERVICE_LEVEL",
    "SHORT_ABANDON",
    "AgentFigures",
    "QueueFigures",
    "agent_figures",
    "queue_figures",
]

#: Service level threshold (seconds) of a queue that sets none, as the guide's default.
DEFAULT_SERVICE_LEVEL = 60.0
#: Abandons shorter than this are left out of the adjusted figures.
SHORT_ABANDON = 10.0
#: Exit reasons that take a call out of "calls offered" (never meant for an agent).
_NOT_OFFERED = frozenset({"forwarded", "voicemail", "full", "no_agents"})
#: The strategy an offer names when it rang agents at once (its misses are not counted).
SIMULTANEOUS = "ring_all"


@dataclass(slots=True)
class _Visit:
    """One stay of a call in one queue, rebuilt from its events."""

    queue: str
    call_id: str
    entered: float
    offers: int = 0
    answered: float | None = None
    agent: str = ""
    ended: float | None = None  # end of the wait other than by answer
    outcome: str = ""  # abandoned, or the exit reason
    completed: float | None = None
    wrapup: float = 0.0
    wrapup_started: float | None = None
    agent_offers: dict[str, int] = field(default_factory=dict)
    agent_missed: dict[str, int] = field(default_factory=dict)

    @property
    def wait(self) -> float | None:
        end = self.answered if self.answered is not None else self.ended
        return None if end is None else end - self.entered

    @property
    def talk(self) -> float | None:
        if self.answered is None or self.completed is None:
            return None
        return self.completed - self.answered


def _visits(events: Iterable[QueueEvent]) -> list[_Visit]:
    visits: list[_Visit] = []
    current: dict[tuple[str, str], _Visit] = {}
    strategy: dict[tuple[str, str, str], str] = {}
    for e in sorted(events, key=lambda e: e.at):
        if e.event == "agent_status":
            continue
        key = (e.queue, e.call_id)
        if e.event == "entered":
            back = current.get(key)
            if e.reason == "callback" and back is not None and back.outcome == "callback":
                back.ended, back.outcome = None, ""  # called back: the same call, waiting on
                continue
            visit = current[key] = _Visit(e.queue, e.call_id, e.at)
            visits.append(visit)
            continue
        found = current.get(key)
        if found is None:  # its entry is before the loaded events: not in the period
            continue
        visit = found
        if e.event == "offered":
            visit.offers += 1
            visit.agent_offers[e.agent] = visit.agent_offers.get(e.agent, 0) + 1
            strategy[(e.queue, e.call_id, e.agent)] = e.reason
        elif e.event == "missed":
            if strategy.get((e.queue, e.call_id, e.agent)) != SIMULTANEOUS:
                visit.agent_missed[e.agent] = visit.agent_missed.get(e.agent, 0) + 1
        elif e.event == "answered" and visit.answered is None and visit.ended is None:
            visit.answered, visit.agent = e.at, e.agent
        elif e.event in ("abandoned", "exited") and visit.answered is None:
            if visit.ended is None:
                visit.ended = e.at
                visit.outcome = "abandoned" if e.event == "abandoned" else e.reason
        elif e.event == "completed" and visit.answered is not None:
            visit.completed = e.at
        elif e.event == "wrapup_start":
            visit.wrapup_started = e.at
        elif e.event == "wrapup_end" and visit.wrapup_started is not None:
            visit.wrapup += e.at - visit.wrapup_started
            visit.wrapup_started = None
    return visits


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(part: float, whole: float) -> float | None:
    return 100.0 * part / whole if whole else None


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One queue's figures for a period (None where there is nothing to average)."""

    queue: str
    volume: int
    offered: int
    handled: int
    abandoned: int
    adjusted_abandoned: int
    adjusted_offered: int
    forwarded: int
    voicemail: int
    other_exits: int
    abandon_rate: float | None
    adjusted_abandon_rate: float | None
    service_level: float | None
    service_level_threshold: float
    dial_transfers: float | None
    average_wait: float | None
    average_answer_speed: float | None
    average_talk: float | None
    average_wrapup: float | None
    average_handle: float | None
    talk_time: float


def _queue(queue: str, visits: Sequence[_Visit], threshold: float) -> QueueFigures:
    volume = len(visits)
    handled = [v for v in visits if v.answered is not None]
    abandoned = [v for v in visits if v.outcome == "abandoned"]
    short = sum(1 for v in abandoned if (v.wait or 0.0) < SHORT_ABANDON)
    offered = sum(1 for v in visits if v.outcome not in _NOT_OFFERED)
    ended = [v for v in handled if v.talk is not None]
    talk = sum(v.talk or 0.0 for v in ended)
    wrapup = sum(v.wrapup for v in ended)
    abandon_rate = _pct(len(abandoned), offered)
    within = sum(1 for v in handled if (v.wait or 0.0) <= threshold)
    service = _pct(within, len(handled))
    if service is not None:
        service = max(0.0, service - (abandon_rate or 0.0))
    elif abandon_rate is not None:
        service = 0.0  # offered calls, none answered
    return QueueFigures(
        queue=queue,
        volume=volume,
        offered=offered,
        handled=len(handled),
        abandoned=len(abandoned),
        adjusted_abandoned=len(abandoned) - short,
        adjusted_offered=offered - short,
        forwarded=sum(1 for v in visits if v.outcome == "forwarded"),
        voicemail=sum(1 for v in visits if v.outcome == "voicemail"),
        other_exits=sum(
            1 for v in visits if v.outcome not in ("", "abandoned", "forwarded", "voicemail")
        ),
        abandon_rate=abandon_rate,
        adjusted_abandon_rate=_pct(len(abandoned) - short, offered - short),
        service_level=service,
        service_level_threshold=threshold,
        dial_transfers=_pct(sum(1 for v in visits if v.offers), volume),
        average_wait=_mean([w for v in visits if (w := v.wait) is not None]),
        average_answer_speed=_mean([v.wait or 0.0 for v in handled]),
        average_talk=talk / len(ended) if ended else None,
        average_wrapup=wrapup / len(ended) if ended else None,
        average_handle=(talk + wrapup) / len(ended) if ended else None,
        talk_time=talk,
    )


def queue_figures(
    events: Iterable[QueueEvent],
    period: Period,
    thresholds: Mapping[str, float] | None = None,
    queues: Iterable[str] = (),
) -> list[QueueFigures]:
    """Each queue's figures over `period` (queues named in `queues` appear even when idle),
    by queue name. `thresholds`: service level threshold per queue, default 60 s."""
    by_queue: dict[str, list[_Visit]] = {q: [] for q in queues}
    for visit in _visits(events):
        if period.contains(visit.entered):
            by_queue.setdefault(visit.queue, []).append(visit)
    limits = thresholds or {}
    return [
        _queue(q, by_queue[q], float(limits.get(q, DEFAULT_SERVICE_LEVEL)))
        for q in sorted(by_queue)
    ]


@dataclass(frozen=True, slots=True)
class AgentFigures:
    """One agent's figures for a period (durations in seconds)."""

    agent: str
    handled: int
    offered: int
    missed: int
    talk_time: float
    average_talk: float | None
    average_wrapup: float | None
    average_handle: float | None
    logged_in: float
    available: float
    unavailable: float
    status_times: dict[str, float]
    inbound_answered: int
    inbound_time: float
    outbound_attempts: int
    outbound_answered: int
    outbound_time: float


def _status_times(
    agent_events: Sequence[QueueEvent], before: QueueEvent | None, period: Period, until: float
) -> dict[str, float]:
    """Seconds per status label ("available", "logged_out", "on_break", "on_break:lunch")."""
    times: dict[str, float] = {}
    label = before.reason if before is not None else "logged_out"
    since = period.start
    for e in agent_events:
        if e.at > since:
            times[label] = times.get(label, 0.0) + period.overlap(since, e.at)
            since = e.at
        label = e.reason
    if until > since:
        times[label] = times.get(label, 0.0) + period.overlap(since, until)
    return {k: v for k, v in sorted(times.items()) if v > 0}


def agent_figures(
    events: Iterable[QueueEvent],
    period: Period,
    before: Iterable[QueueEvent] = (),
    cdrs: Iterable[Cdr] = (),
    agents: Iterable[str] = (),
    now: float | None = None,
    queue: str | None = None,
) -> list[AgentFigures]:
    """Each agent's figures over `period`, by agent. `before`: each agent's last status
    event before the loaded events (Store.last_agent_statuses); `now` ends the last
    status when the period reaches into the future; `queue` narrows the call figures
    to one queue (status times are the agent's, whatever the queue)."""
    loaded = list(events)
    visits = [
        v
        for v in _visits(loaded)
        if period.contains(v.entered) and (queue is None or v.queue == queue)
    ]
    statuses: dict[str, list[QueueEvent]] = {}
    for e in loaded:
        if e.event == "agent_status":
            statuses.setdefault(e.agent, []).append(e)
    last = {e.agent: e for e in before}
    names = set(agents) | set(statuses) | set(last)
    for v in visits:
        names.update(v.agent_offers)
        if v.agent:
            names.add(v.agent)
    until = period.end if now is None else min(period.end, now)
    calls = [c for c in cdrs if period.contains(c.start)]
    result = []
    for agent in sorted(names):
        mine = [v for v in visits if v.agent == agent]
        ended = [v for v in mine if v.talk is not None]
        talk = sum(v.talk or 0.0 for v in ended)
        wrapup = sum(v.wrapup for v in ended)
        times = _status_times(
            sorted(statuses.get(agent, []), key=lambda e: e.at), last.get(agent), period, until
        )
        available = times.get("available", 0.0)
        inbound = [c for c in calls if c.direction == "inbound" and c.destination == agent]
        outbound = [c for c in calls if c.direction == "outbound" and c.caller_number == agent]
        result.append(
            AgentFigures(
                agent=agent,
                handled=len(mine),
                offered=sum(v.agent_offers.get(agent, 0) for v in visits),
                missed=sum(v.agent_missed.get(agent, 0) for v in visits),
                talk_time=talk,
                average_talk=talk / len(ended) if ended else None,
                average_wrapup=wrapup / len(ended) if ended else None,
                average_handle=(talk + wrapup) / len(ended) if ended else None,
                logged_in=sum(t for k, t in times.items() if k != "logged_out"),
                available=available,
                unavailable=sum(t for k, t in times.items() if k != "available"),
                status_times=times,
                inbound_answered=sum(1 for c in inbound if c.answer is not None),
                inbound_time=sum(c.billsec for c in inbound),
                outbound_attempts=len(outbound),
                outbound_answered=sum(1 for c in outbound if c.answer is not None),
                outbound_time=sum(c.billsec for c in outbound),
            )
        )
    return result
