"""The queue log replay of the integration tests (tests/integration/queuekit.py) agrees
with the engine on every strategy, and catches an offer the strategy would not make."""

from __future__ import annotations

import dataclasses
import random

import pytest

from config.queues import CallQueue, Strategy
from softswitch.queues.engine import Action, QueueEngine, events_of
from tests.integration.queuekit import replay

ORDERS = {"101": 2, "102": 0, "103": 1}


def _day(strategy: Strategy) -> list[Action]:
    agents = [{"extension": e, "order": o} for e, o in ORDERS.items()]
    q = CallQueue.model_validate(
        {"name": "rota", "extension": "8100", "strategy": strategy, "agents": agents,
         "wrap_up": 1, "agent_ring_timeout": 5}
    )  # fmt: skip
    e = QueueEngine("test", [q], random.Random(5))
    log: list[Action] = []
    for agent in ORDERS:
        log += e.set_status(agent, "available", 1.0)
    rng = random.Random(11)
    now = 10.0
    talking: dict[str, float] = {}
    for i in range(20):
        log += e.caller_arrived(f"c{i}", "rota", now)
    while now < 200:
        now += 0.5
        for _queue, call, _at, ringing in e.waiting():
            if ringing and rng.random() < 0.5:
                log += e.offer_answered(call, ringing[0], now)
                talking[call] = now + rng.uniform(1, 6)
            elif rng.random() < 0.02:
                log += e.caller_left(call, now)
        for call, until in list(talking.items()):
            if until <= now:
                del talking[call]
                log += e.call_ended(call, now)
        log += e.tick(now)
    return log


@pytest.mark.parametrize("strategy", list(Strategy))
def test_the_replay_agrees_with_the_engine(strategy: Strategy) -> None:
    events = events_of(_day(strategy))
    found = replay(events, ORDERS, {"case": (5.0, strategy)}, "rota")
    assert not found.problems, found.problems
    assert found.checked >= 10


@pytest.mark.parametrize("strategy", [Strategy.LONGEST_IDLE, Strategy.FEWEST_CALLS])
def test_the_replay_catches_an_offer_against_the_strategy(strategy: Strategy) -> None:
    events = events_of(_day(strategy))
    offers = [i for i, e in enumerate(events) if e.event == "offered"]
    i = offers[len(offers) // 2]
    others = sorted(set(ORDERS) - {events[i].agent})
    events[i] = dataclasses.replace(events[i], agent=others[0])
    found = replay(events, ORDERS, {"case": (5.0, strategy)}, "rota")
    assert found.problems
