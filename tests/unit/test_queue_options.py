"""The queue options beyond strategies: callback (the caller keeps their place), maximum
expected wait, request confirmation, auto answer and agents that are single devices."""

from __future__ import annotations

import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from config.queues import CallQueue
from routing.plan import Ring, Target, TargetKind
from softswitch.apps.queue import _offer_node
from softswitch.queues.engine import Action, Callback, Exit, Offer, QueueEngine, events_of
from softswitch.queues.period import Period
from softswitch.queues.stats import queue_figures
from softswitch.sip.address import Address
from tests.unit.callkit import Net, place_call

AGENTS = ("101", "102")


def queue(**extra: Any) -> CallQueue:
    agents = extra.pop("agents", [{"extension": e, "order": i} for i, e in enumerate(AGENTS)])
    return CallQueue.model_validate(
        {"name": "sales", "extension": "8000", "strategy": "linear_hunt", "agents": agents} | extra
    )


def engine(q: CallQueue, available: tuple[str, ...] = AGENTS) -> QueueEngine:
    e = QueueEngine("acme", [q], random.Random(3))
    for agent in available:
        e.set_status(agent, "available", 0.0)
    return e


def of(kind: type, actions: list[Action]) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def test_a_caller_whose_expected_wait_is_too_long_goes_to_the_overflow() -> None:
    e = engine(queue(max_expected_wait=100, unavailable_to="2000"), available=("101",))
    # No handled calls yet: no estimate, every caller enters.
    assert of(Offer, e.caller_arrived("c1", "sales", 0)) == [Offer("c1", "sales", "101", 0, 20)]
    e.offer_answered("c1", "101", 5)
    e.call_ended("c1", 155)  # one handled call of 150 s: one agent, 150 s a caller
    out = e.caller_arrived("c2", "sales", 200)
    assert of(Exit, out) == [Exit("c2", "sales", "forwarded", "2000")]
    assert [(ev.event, ev.reason) for ev in events_of(out)] == [
        ("entered", ""),
        ("exited", "forwarded"),
    ]
    # With a second agent logged in the estimate halves (75 s): the caller enters.
    e.set_status("102", "available", 210)
    assert of(Exit, e.caller_arrived("c3", "sales", 220)) == []
    assert e.position("c3") == (1, 75.0)


def test_max_expected_wait_without_an_overflow_refuses_as_full() -> None:
    e = engine(queue(max_expected_wait=10), available=("101",))
    e.caller_arrived("c1", "sales", 0)
    e.offer_answered("c1", "101", 1)
    e.call_ended("c1", 61)
    assert of(Exit, e.caller_arrived("c2", "sales", 70)) == [Exit("c2", "sales", "full", None)]


def test_callback_keeps_the_callers_place_and_calls_them_back_on_their_turn() -> None:
    e = engine(queue(callback_key="5", callback_retry=30), available=("101",))
    e.caller_arrived("busy", "sales", 0)
    e.offer_answered("busy", "101", 1)  # 101 talks: everyone else waits
    e.caller_arrived("c1", "sales", 10)
    e.caller_arrived("c2", "sales", 20)
    out = e.callback_requested("c1", "+14155550100", 30)
    assert [(ev.event, ev.reason) for ev in events_of(out)] == [("exited", "callback")]
    assert e.position("c1") == (1, None) and e.position("c2") == (2, None)
    assert e.tick(10_000) == []  # away: no queue timeout, nothing rings while 101 talks
    # 101 is free: c1's turn: they are called back, and c2 behind them is not served
    # before them meanwhile (101 waits for c1).
    out = e.call_ended("busy", 100)
    assert of(Callback, out) == [Callback("c1", "sales", "+14155550100", 20)]
    assert of(Offer, out) == [] and e.tick(110) == []
    assert e.position("c1") == (1, 99.0)  # still first (one handled call of 99 s)
    out = e.callback_answered("c1", 115)
    assert [(ev.event, ev.reason) for ev in events_of(out)[:2]] == [
        ("callback", "answered"),
        ("entered", "callback"),
    ]
    assert of(Offer, out) == [Offer("c1", "sales", "101", 0, 20)]
    e.check()


def test_an_unanswered_callback_is_tried_again_then_given_up() -> None:
    e = engine(queue(callback_key="*", callback_attempts=2, callback_retry=30), available=())
    e.caller_arrived("c1", "sales", 0)
    e.callback_requested("c1", "+14155550100", 5)
    out = e.set_status("101", "available", 10)
    assert len(of(Callback, out)) == 1
    e.caller_arrived("c2", "sales", 20)  # behind c1: waits while c1's call back rings
    assert e.agent_state("101") == ("available", "idle", "")
    out = e.callback_failed("c1", 35, "no_answer")
    assert of(Offer, out) == [Offer("c2", "sales", "101", 0, 20)]  # meanwhile, c2 is served
    e.offer_answered("c2", "101", 36)
    e.call_ended("c2", 50)
    assert of(Callback, out) == [] and e.next_deadline() == 65
    assert len(of(Callback, e.tick(65))) == 1
    out = e.callback_failed("c1", 90, "busy")
    assert [(ev.event, ev.reason) for ev in events_of(out)] == [
        ("callback", "busy"),
        ("callback", "given_up"),
    ]
    assert e.waiting() == [] and e.next_deadline() is None


def test_callback_needs_the_queue_to_offer_it() -> None:
    e = engine(queue(), available=())
    e.caller_arrived("c1", "sales", 0)
    with pytest.raises(ValueError, match="queue: sales offers no callback"):
        e.callback_requested("c1", "+14155550100", 1)


def test_a_called_back_caller_is_one_call_in_the_statistics() -> None:
    e = engine(queue(callback_key="5"), available=())
    log = e.caller_arrived("c1", "sales", 1000)
    log += e.callback_requested("c1", "+14155550100", 1010)
    log += e.set_status("101", "available", 1100)
    log += e.callback_answered("c1", 1110)
    log += e.offer_answered("c1", "101", 1115)
    log += e.call_ended("c1", 1175)
    period = Period(0, 10_000, ZoneInfo("UTC"))
    (figures,) = queue_figures(events_of(log), period)
    assert (figures.volume, figures.handled, figures.other_exits) == (1, 1, 0)
    assert figures.average_wait == 115  # from the first entry to the answer


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"callback_key": "0", "exit_keys": {"0": "2000"}}, "callback_key 0 is an exit key too"),
        ({"callback_key": "x"}, "'x' is not a key"),
        (
            {"strategy": "ring_all", "agents": [{"extension": "101", "auto_answer": True}]},
            "agent 101: auto_answer",
        ),
        ({"max_expected_wait": 0}, "max_expected_wait"),
        ({"callback_attempts": 0}, "callback_attempts"),
    ],
)
def test_bad_options_are_refused_naming_the_field(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        queue(**settings)


def test_offers_carry_the_agents_device_confirmation_and_auto_answer() -> None:
    q = queue(
        agents=[
            {"extension": "101", "single_device": True, "request_confirmation": True},
            {"extension": "102", "order": 1, "auto_answer": True},
        ]
    )
    node = _offer_node([Offer("c1", "sales", "101", 0, 25), Offer("c1", "sales", "102", 5, 25)], q)
    assert isinstance(node, Ring) and node.timeout == 25
    first, second = node.targets
    assert (first.all_devices, first.answer_confirmation, first.auto_answer) == (False, True, False)
    assert (second.all_devices, second.answer_confirmation, second.auto_answer) == (
        True,
        False,
        True,
    )
    assert second.delay == 5
    assert "(main device)" in first.describe() and "press 1" in first.describe()
    assert "auto answer" in second.describe()


def test_an_auto_answer_offer_asks_the_phone_to_answer_by_itself() -> None:
    net = Net()
    net.register("102", "203.0.113.1")
    agent = net.register("200", "203.0.113.9")
    place_call(net, "102")
    (call,) = net.mgr.calls.values()
    net.mgr.ring_user(call, Target(TargetKind.USER_DEVICES, "200", auto_answer=True))
    net.advance(0.5)  # the dialog layer sends it
    (offer,) = net.requests(agent, "INVITE")
    assert offer.get("Call-Info") == "<sip:pbx.test>;answer-after=0"
    assert "info=alert-autoanswer" in (offer.get("Alert-Info") or "")
    plain = net.requests(Address("UDP", "203.0.113.1", 5060), "INVITE")
    assert plain and all(m.get("Call-Info") is None for m in plain)
