"""Helpers for queue tests: read the queue event log of a running switch, and replay it to
check that every offer went to a free agent (no double offer, wrap-up respected) and to
the agent the queue's strategy names, from the state the log itself shows."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from config.queues import Strategy
from softswitch.queues.strategies import Candidate, pick
from storage import open_store
from storage.queue_events import QueueEvent

#: Strategies that offer a caller to one agent at a time.
ONE_AT_A_TIME = frozenset(Strategy) - {Strategy.RING_ALL, Strategy.LINEAR_CASCADE}


def load_events(database: str, tenant: str = "test") -> list[QueueEvent]:
    """The tenant's whole queue log, in the order it was written."""

    async def load() -> list[QueueEvent]:
        async with open_store(database) as store:
            return await store.load_queue_events(tenant, 0, time.time() + 60)

    return asyncio.run(load())


@dataclass
class _Agent:
    status: str = "logged_out"
    state: str = "idle"  # idle, ringing, in_call, wrap_up
    call_id: str = ""
    idle_since: float = 0.0
    calls: int = 0
    talk: float = 0.0
    answered_at: float = 0.0


@dataclass
class Replay:
    """What the replay found: offers checked against the strategy, and the problems."""

    checked: int = 0  # offers whose agent was compared with the strategy's pick
    offers: int = 0
    problems: list[str] = field(default_factory=list)


def replay(
    events: list[QueueEvent],
    orders: dict[str, int],
    strategies: dict[str, tuple[float, Strategy]],
    queue: str,
) -> Replay:
    """Replay the log; check the offers of `queue` made at or after a time in `strategies`
    (start time -> the strategy in force from then on). `orders`: the agents' order."""
    agents = {name: _Agent() for name in orders}
    ringing: dict[str, set[str]] = {}  # call -> agents ringing for it
    missed: set[str] = set()  # calls with a miss (their round has tried agents)
    last: tuple[int, str] | None = None
    found = Replay()
    batch: tuple[str, float] | None = None  # (call, time) of the offers being made
    batch_free: set[str] = set()
    batch_agents: list[str] = []

    def in_force(at: float) -> Strategy | None:
        current = None
        for start, strategy in sorted(strategies.values()):
            if at >= start:
                current = strategy
        return current

    def close_batch() -> None:
        nonlocal batch
        if batch is None:
            return
        strategy = in_force(batch[1])
        if strategy in (Strategy.RING_ALL, Strategy.LINEAR_CASCADE):
            if sorted(batch_agents) != sorted(batch_free):
                found.problems.append(
                    f"{strategy} offered {batch_agents} with {sorted(batch_free)} free"
                )
            by_order = sorted(batch_agents, key=lambda a: (orders[a], a))
            if batch_agents != by_order:
                found.problems.append(f"{strategy} offered out of order: {batch_agents}")
            found.checked += 1
        batch = None

    for e in events:
        if batch is not None and (e.event != "offered" or (e.call_id, e.at) != batch):
            close_batch()
        record = agents.get(e.agent)
        if e.event == "agent_status" and record is not None:
            record.status = e.status
        elif e.event == "offered" and record is not None:
            strategy = in_force(e.at)
            if e.queue == queue and strategy is not None:
                found.offers += 1
                free = {
                    name
                    for name, a in agents.items()
                    if a.status == "available" and a.state == "idle"
                }
                if e.agent not in free:
                    found.problems.append(
                        f"{e.agent} offered {e.call_id[:8]} while {record.status}/{record.state}"
                    )
                if strategy in ONE_AT_A_TIME and e.call_id not in missed:
                    candidates = [
                        Candidate(n, orders[n], agents[n].idle_since, agents[n].calls,
                                  agents[n].talk)
                        for n in sorted(free)
                    ]  # fmt: skip
                    if strategy is Strategy.RANDOM:
                        ok = e.agent in free
                    else:
                        chosen = pick(strategy, candidates, last_order=last, rng=random.Random())
                        ok = chosen is not None and chosen.extension == e.agent
                    found.checked += 1
                    if not ok:
                        state = {n: (a.idle_since, a.calls, round(a.talk, 2)) for n, a in
                                 agents.items() if n in free}  # fmt: skip
                        found.problems.append(
                            f"{strategy} offered {e.agent}, free {state}, last {last}"
                        )
                elif strategy in (Strategy.RING_ALL, Strategy.LINEAR_CASCADE):
                    if batch is None:
                        batch, batch_free, batch_agents = (e.call_id, e.at), free, []
                    batch_agents.append(e.agent)
            record.state, record.call_id = "ringing", e.call_id
            ringing.setdefault(e.call_id, set()).add(e.agent)
            if e.queue == queue:
                last = (orders[e.agent], e.agent)  # round robin goes on from here
        elif e.event == "missed" and record is not None:
            missed.add(e.call_id)
            ringing.get(e.call_id, set()).discard(e.agent)
            if record.state == "ringing":
                record.state, record.call_id = "idle", ""
        elif e.event == "answered" and record is not None:
            for other in ringing.pop(e.call_id, set()) - {e.agent}:
                agents[other].state, agents[other].call_id = "idle", ""
            record.state, record.call_id = "in_call", e.call_id
            record.calls += 1
            record.answered_at = e.at
        elif e.event in ("abandoned", "exited"):
            for other in ringing.pop(e.call_id, set()):
                agents[other].state, agents[other].call_id = "idle", ""
        elif e.event == "completed" and record is not None:
            record.talk += max(0.0, e.at - record.answered_at)
            record.state, record.call_id, record.idle_since = "idle", "", e.at
        elif e.event == "wrapup_start" and record is not None:
            record.state = "wrap_up"
        elif e.event == "wrapup_end" and record is not None:
            record.state, record.idle_since = "idle", e.at
    close_batch()
    return found
