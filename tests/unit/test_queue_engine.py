"""The sans-I/O queue engine: strategies, wrap-up, missed offers, timeouts, and (by
hypothesis) that no agent is ever offered two callers and no caller two agents outside
ring all and cascade."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.queues import CallQueue, Strategy
from softswitch.queues.engine import Action, Cancel, Connect, Exit, Offer, QueueEngine, events_of

AGENTS = ("101", "102", "103")


def queue(strategy: str = "linear_hunt", **extra: Any) -> CallQueue:
    agents = extra.pop("agents", [{"extension": e, "order": i} for i, e in enumerate(AGENTS)])
    return CallQueue.model_validate(
        {"name": "sales", "extension": "8000", "strategy": strategy, "agents": agents, **extra}
    )


def engine(*queues: CallQueue, available: tuple[str, ...] = AGENTS) -> QueueEngine:
    e = QueueEngine("acme", list(queues) or [queue()], random.Random(7))
    for agent in available:
        e.set_status(agent, "available", 0.0)
    return e


def offers(actions: list[Action]) -> list[str]:
    return [a.agent for a in actions if isinstance(a, Offer)]


def kinds(actions: list[Action]) -> list[str]:
    return [e.event for e in events_of(actions)]


def test_linear_hunt_rings_by_order_and_moves_on_after_a_miss() -> None:
    e = engine(queue("linear_hunt", agent_ring_timeout=10))
    assert offers(e.caller_arrived("c1", "sales", 100)) == ["101"]
    assert e.next_deadline() == 115  # the ring timeout and the grace for the ringing side
    assert e.tick(114) == []
    out = e.tick(115)
    assert kinds(out) == ["missed", "offered"] and offers(out) == ["102"]
    out = e.offer_failed("c1", "102", 111, "rejected")
    assert offers(out) == ["103"]
    out = e.offer_answered("c1", "103", 115)
    assert [a for a in out if isinstance(a, Connect)] == [Connect("c1", "sales", "103")]
    assert e.agent_state("103") == ("available", "in_call", "c1")
    assert e.waiting() == []


def test_ring_all_rings_every_free_agent_and_the_first_answer_wins() -> None:
    e = engine(queue("ring_all"))
    out = e.caller_arrived("c1", "sales", 0)
    assert offers(out) == list(AGENTS)
    assert {ev.reason for ev in events_of(out) if ev.event == "offered"} == {"ring_all"}
    out = e.offer_answered("c1", "102", 5)
    assert sorted(a.agent for a in out if isinstance(a, Cancel)) == ["101", "103"]
    late = e.offer_answered("c1", "101", 5.1)
    assert late == [Cancel("c1", "101", "gone")]
    # a second caller now rings only the two free agents
    assert offers(e.caller_arrived("c2", "sales", 6)) == ["101", "103"]


def test_linear_cascade_adds_the_next_agent_each_step() -> None:
    e = engine(queue("linear_cascade", agent_ring_timeout=10))
    out = e.caller_arrived("c1", "sales", 0)
    assert [(o.agent, o.delay, o.timeout) for o in out if isinstance(o, Offer)] == [
        ("101", 0, 30),
        ("102", 10, 30),
        ("103", 20, 30),
    ]
    e.offer_failed("c1", "102", 12, "rejected")  # the others ring on
    assert e.waiting()[0][3] == ("101", "103")
    assert e.tick(34) == []
    out = e.tick(35)  # nobody answered the round: missed, and a new round begins
    assert kinds(out)[:2] == ["missed", "missed"] and offers(out) == list(AGENTS)


def test_round_robin_starts_after_the_last_agent_offered() -> None:
    e = engine(queue("round_robin"))
    got = []
    for n in range(4):
        got += offers(e.caller_arrived(f"c{n}", "sales", n))
        e.offer_answered(f"c{n}", got[-1], n + 0.5)
        e.call_ended(f"c{n}", n + 0.6)
    assert got == ["101", "102", "103", "101"]


def served(e: QueueEngine, call: str, agent: str, start: float, talk: float) -> None:
    """Run one call to `agent` (others ringing first are made to fail busy)."""
    e.caller_arrived(call, "sales", start)
    while e.agent_state(agent)[1] != "ringing":
        e.offer_failed(call, e.waiting()[0][3][0], start, "busy")
    e.offer_answered(call, agent, start)
    e.call_ended(call, start + talk)


def test_longest_idle_fewest_calls_least_talk_and_random() -> None:
    e = engine(queue("longest_idle"))
    served(e, "a", "101", 10, 5)  # idle since 15
    served(e, "b", "102", 20, 5)  # idle since 25
    served(e, "c", "103", 30, 5)  # idle since 35
    assert offers(e.caller_arrived("x", "sales", 40)) == ["101"]

    f = engine(queue("fewest_calls"))
    served(f, "a", "101", 0, 1)
    served(f, "b", "101", 10, 1)
    served(f, "c", "102", 20, 1)
    served(f, "d", "103", 30, 1)
    assert offers(f.caller_arrived("x", "sales", 40)) == ["102"]  # 1 call, idle longer than 103

    t = engine(queue("least_talk_time"))
    served(t, "a", "101", 0, 50)
    served(t, "b", "102", 100, 5)
    served(t, "c", "103", 200, 20)
    assert offers(t.caller_arrived("x", "sales", 300)) == ["102"]

    r = engine(queue("random"))
    seen = set()
    for n in range(30):
        (agent,) = offers(r.caller_arrived(f"r{n}", "sales", n))
        seen.add(agent)
        r.caller_left(f"r{n}", n + 0.5)
    assert seen == set(AGENTS)


def test_wrap_up_holds_the_agent_back_until_it_ends() -> None:
    e = engine(queue("linear_hunt", wrap_up=30), available=("101",))
    e.caller_arrived("c1", "sales", 0)
    e.offer_answered("c1", "101", 2)
    out = e.call_ended("c1", 62)
    assert kinds(out) == ["completed", "wrapup_start"]
    assert offers(e.caller_arrived("c2", "sales", 70)) == []  # 101 is in wrap-up
    assert e.next_deadline() == 92
    assert e.tick(91.9) == []
    out = e.tick(92)
    assert kinds(out) == ["wrapup_end", "offered"] and offers(out) == ["101"]


def test_an_agent_who_misses_twice_goes_on_break() -> None:
    e = engine(
        queue("linear_hunt", agent_ring_timeout=10, missed_limit=2), available=("101", "102")
    )
    e.caller_arrived("c1", "sales", 0)  # 101
    e.tick(15)  # 101 missed once, 102 rings
    e.offer_failed("c1", "102", 16, "busy")  # busy does not count; round over, 101 again
    assert e.agent_state("101")[1] == "ringing"
    out = e.offer_failed("c1", "101", 20, "no_answer")
    statuses = [ev for ev in events_of(out) if ev.event == "agent_status"]
    assert [(s.agent, s.reason) for s in statuses] == [("101", "on_break:missed")]
    assert e.agent_state("101")[0] == "on_break"
    assert e.agent_state("102")[1] == "ringing"


def test_abandon_timeout_full_and_no_agents() -> None:
    e = engine(
        queue(
            "ring_all",
            ring_timeout=60,
            if_unanswered="forward",
            forward_to="8001",
            max_length=1,
            require_agents=True,
            unavailable_to="8002",
        )
    )
    e.caller_arrived("c1", "sales", 0)
    out = e.caller_arrived("c2", "sales", 1)  # full: forwarded where unavailable goes
    assert kinds(out) == ["entered", "exited"] and out[-1] == Exit(
        "c2", "sales", "forwarded", "8002"
    )
    assert offers(e.tick(25)) == list(AGENTS)  # the first round missed, the second rings
    assert offers(e.tick(50)) == list(AGENTS)  # a third round, until 75
    out = e.tick(60)
    assert not [a for a in out if isinstance(a, Exit)]  # ringing: if unanswered waits
    assert e.next_deadline() == 75
    out = e.tick(75)
    assert Exit("c1", "sales", "forwarded", "8001") in out
    assert all(e.agent_state(a)[1] == "idle" for a in AGENTS)
    e.caller_arrived("c3", "sales", 61)
    out = e.caller_left("c3", 70)
    assert kinds(out) == ["abandoned"] and not [a for a in out if isinstance(a, Exit)]
    for agent in AGENTS:
        e.set_status(agent, "logged_out", 80)
    out = e.caller_arrived("c4", "sales", 90)
    assert out[-1] == Exit("c4", "sales", "forwarded", "8002")


def test_position_and_estimated_wait() -> None:
    e = engine(queue("linear_hunt"), available=("101",))
    e.caller_arrived("a", "sales", 0)  # rings 101
    e.caller_arrived("b", "sales", 1)
    e.caller_arrived("c", "sales", 2)
    assert (e.position("b"), e.position("c")) == ((2, None), (3, None))  # no history yet
    e.offer_answered("a", "101", 3)
    e.call_ended("a", 123)  # a handle time of 120 s
    e.set_status("102", "available", 124)  # two agents logged in
    assert e.position("c") == (2, 2 * 120 / 2)  # b (ringing) is still ahead of c
    assert e.position("gone") is None


def test_an_agent_in_two_queues_takes_the_longest_waiting_caller() -> None:
    sales = queue("linear_hunt", agents=[{"extension": "101"}])
    support = queue("linear_hunt", agents=[{"extension": "101"}]).model_copy(
        update={"name": "support", "extension": "8001"}
    )
    e = engine(sales, support, available=())
    e.caller_arrived("s1", "sales", 10)
    e.caller_arrived("p1", "support", 5)
    assert offers(e.set_status("101", "available", 20)) == ["101"]
    assert e.agent_state("101") == ("available", "ringing", "p1")
    # priority breaks a tie of callers arriving in the same second
    sales2 = queue("linear_hunt", agents=[{"extension": "101", "priority": 2}])
    support2 = support.model_copy(
        update={
            "agents": sales2.agents[0].model_copy(update={"priority": 1}),
        }
    )
    support2 = CallQueue.model_validate(
        {**support.model_dump(), "agents": [{"extension": "101", "priority": 1}]}
    )
    e = engine(sales2, support2, available=())
    e.caller_arrived("s", "sales", 30.1)
    e.caller_arrived("p", "support", 30.7)
    e.set_status("101", "available", 31)
    assert e.agent_state("101")[2] == "p"


STEP = st.one_of(
    st.tuples(st.just("arrive"), st.sampled_from(["sales", "support"])),
    st.tuples(st.just("leave"), st.integers(0, 30)),
    st.tuples(st.just("answer"), st.integers(0, 30), st.sampled_from(AGENTS)),
    st.tuples(st.just("fail"), st.integers(0, 30), st.sampled_from(AGENTS)),
    st.tuples(st.just("end"), st.integers(0, 30)),
    st.tuples(
        st.just("status"),
        st.sampled_from(AGENTS),
        st.sampled_from(["available", "on_break", "logged_out"]),
    ),
    st.tuples(st.just("wait"), st.floats(0.1, 40)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    strategy=st.sampled_from(list(Strategy)),
    other=st.sampled_from(list(Strategy)),
    steps=st.lists(STEP, max_size=60),
)
def test_no_double_offer(strategy: Strategy, other: Strategy, steps: list[tuple[Any, ...]]) -> None:
    sales = queue(
        strategy.value,
        wrap_up=5,
        missed_limit=3,
        ring_timeout=90,
        if_unanswered="voicemail",
        forward_to="8001",
    )
    support = CallQueue.model_validate(
        {
            "name": "support",
            "extension": "8001",
            "strategy": other.value,
            "agents": [{"extension": "102", "order": 1}, {"extension": "103", "priority": 2}],
        }
    )
    e = engine(sales, support)
    now, n = 1.0, 0
    ringing: dict[str, str] = {}  # agent -> the call it rings for, from the actions alone
    for step in steps:
        kind = step[0]
        if kind == "arrive":
            out = e.caller_arrived(f"c{n}", step[1], now)
            n += 1
        elif kind == "leave":
            out = e.caller_left(f"c{step[1]}", now)
        elif kind == "answer":
            caller = e.callers.get(f"c{step[1]}")
            agent = step[2]
            if caller is not None and caller.offers and AGENTS.index(agent) > 0:
                agent = sorted(caller.offers)[0]  # mostly answer an offer that rings
            out = e.offer_answered(f"c{step[1]}", agent, now)
        elif kind == "fail":
            out = e.offer_failed(f"c{step[1]}", step[2], now, "rejected")
        elif kind == "end":
            out = e.call_ended(f"c{step[1]}", now)
        elif kind == "status":
            out = e.set_status(step[1], step[2], now)
        else:
            now += step[1]
            out = e.tick(now)
        e.check()
        for action in out:
            if isinstance(action, Offer):
                assert action.agent not in ringing, (action, ringing)
                ringing[action.agent] = action.call_id
            elif (
                isinstance(action, Cancel | Connect) and ringing.get(action.agent) == action.call_id
            ):
                del ringing[action.agent]
            elif getattr(action, "event", "") == "missed":
                ringing.pop(action.agent, None)  # type: ignore[union-attr]
        per_call: dict[str, int] = {}
        for call in ringing.values():
            per_call[call] = per_call.get(call, 0) + 1
        for call, count in per_call.items():
            queue_of = next(c for c in e.callers.values() if c.call_id == call).queue
            strat = e.queues[queue_of].strategy
            if strat not in (Strategy.RING_ALL, Strategy.LINEAR_CASCADE):
                assert count == 1, (call, ringing)
        # every event the engine logs is storable
        for ev in events_of(out):
            from storage.queue_events import queue_event_to_row

            queue_event_to_row(ev)
