"""Overload control: which new calls are shed, why, how the delay signal settles, and the
probe that measures the receive queue over real loopback UDP."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from pydantic import ValidationError

from config.models import OverloadSettings
from softswitch.overload import PROBE_PREFIX, OverloadGuard, QueueProbe
from softswitch.sip.address import Address
from softswitch.sip.message import SipRequest
from tests.unit.callkit import CALLER, SDP, Net, answer, place_call


@pytest.mark.parametrize(
    ("settings", "in_setup", "transactions", "delay", "reason"),
    [
        ({}, 0, 0, 0.0, None),
        ({"max_calls_in_setup": 10}, 9, 0, 0.0, None),
        ({"max_calls_in_setup": 10}, 10, 0, 0.0, "calls_in_setup"),
        ({"max_transactions": 100}, 0, 100, 0.0, "transactions"),
        ({"max_queue_delay": 0.1}, 0, 0, 1.0, "queue_delay"),
        ({"max_queue_delay": 0}, 0, 0, 5.0, None),  # 0: the check is off
        ({"max_calls_in_setup": 0, "max_transactions": 0}, 10**6, 10**7, 0.0, None),
    ],
)
def test_overload_reasons(
    settings: dict[str, Any], in_setup: int, transactions: int, delay: float, reason: str | None
) -> None:
    guard = OverloadGuard(OverloadSettings(**settings))
    for _ in range(20):  # a sustained delay, not one sample
        guard.observe_delay(delay)
    assert guard.overloaded(in_setup, transactions) == reason
    assert guard.admit(in_setup, transactions, now=0.0) is (reason is None)
    assert guard.counters["shed"] == (0 if reason is None else 1)


def test_shedding_is_counted_per_reason_and_per_episode() -> None:
    guard = OverloadGuard(OverloadSettings(max_calls_in_setup=2))
    # (calls in set-up, time): two bursts of shedding with a quiet spell between them.
    offered = [(0, 0.0), (2, 0.1), (3, 0.2), (1, 0.3), (2, 0.5), (2, 5.0), (2, 5.1)]
    results = [guard.admit(n, 0, now) for n, now in offered]
    assert results == [True, False, False, True, False, False, False]
    assert guard.counters == {"shed": 5, "episodes": 2, "calls_in_setup": 5}


def test_delay_has_hysteresis() -> None:
    guard = OverloadGuard(OverloadSettings(max_queue_delay=0.2))
    guard.observe_delay(0.15)
    assert not guard.delayed  # one late request below the bound
    for _ in range(10):
        guard.observe_delay(0.5)
    assert guard.delayed
    trail = []
    for _ in range(30):
        guard.observe_delay(0.0)
        trail.append(guard.delayed)
    # Shedding stops only once the smoothed delay is under half the bound, then stays off.
    assert trail[0] and not trail[-1]
    assert trail == sorted(trail, reverse=True)
    assert guard.delay < 0.1


@pytest.mark.parametrize(
    "field",
    ["max_calls_in_setup", "max_transactions", "max_queue_delay", "probe_interval", "retry_after"],
)
def test_bad_settings_name_the_field(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        OverloadSettings.model_validate({field: -1})


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_probe_times_the_receive_queue_over_loopback() -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(5)
    clock = _Clock()
    guard = OverloadGuard(OverloadSettings(max_queue_delay=0.2, probe_interval=0.1))
    probe = QueueProbe(guard, Address("UDP", "127.0.0.1", listener.getsockname()[1]), clock)
    try:
        for delay in (0.5, 0.6, 0.5, 0.7):  # a backlog: each probe waits in the queue
            probe.tick()
            data, (host, port) = listener.recvfrom(2048)
            assert data.startswith(PROBE_PREFIX)
            clock.now += delay
            assert probe.received(data, Address("UDP", host, port))
        assert guard.delayed and guard.overloaded(0, 0) == "queue_delay"
        # A copy of a probe from anyone else is not ours; a replay changes nothing.
        assert not probe.received(data, Address("UDP", "127.0.0.1", 9))
        assert not probe.received(PROBE_PREFIX + b"forged 1", Address("UDP", host, port))
        assert probe.received(data, Address("UDP", host, port))
        # The backlog clears: prompt probes bring the smoothed delay down again.
        for _ in range(20):
            probe.tick()
            data, (host, port) = listener.recvfrom(2048)
            clock.now += 0.001
            probe.received(data, Address("UDP", host, port))
            clock.now += 0.1
        assert not guard.delayed
    finally:
        probe.close()
        listener.close()


def test_a_probe_that_never_arrives_counts_as_delay() -> None:
    clock = _Clock()
    guard = OverloadGuard(OverloadSettings(max_queue_delay=0.2, probe_interval=0.1))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))  # a full queue: nothing is ever read
        probe = QueueProbe(guard, Address("UDP", "127.0.0.1", sink.getsockname()[1]), clock)
        for _ in range(30):
            probe.tick()
            clock.now += 0.1
        probe.close()
    assert guard.delayed


@pytest.mark.parametrize("ending", ["answered", "busy", "cancelled", "offline"])
def test_calls_in_setup_counts_only_unanswered_live_calls(ending: str) -> None:
    net = Net()
    phone = net.register("102", "203.0.113.1") if ending != "offline" else None
    first = place_call(net, "102")
    if phone is None:  # nothing to ring: the call failed at once
        assert net.mgr.calls_in_setup == 0 and net.cdrs
        return
    assert net.mgr.calls_in_setup == 1
    (ringing,) = net.requests(phone, "INVITE")
    if ending == "answered":
        answer(net, ringing, 200, phone, "ph", SDP)
        assert net.mgr.calls_in_setup == 0 and len(net.mgr) == 1
        return
    if ending == "busy":
        answer(net, ringing, 486, phone, "ph")
    else:
        answer(net, ringing, 180, phone, "ph")
        net.deliver(
            SipRequest(
                "CANCEL",
                first.uri,
                [
                    ("Via", first.get_all("Via")[0]),
                    ("Max-Forwards", "70"),
                    ("From", first.get("From") or ""),
                    ("To", first.get("To") or ""),
                    ("Call-ID", "call-1"),
                    ("CSeq", "2 CANCEL"),
                ],
            ),
            CALLER,
        )
    assert net.mgr.calls_in_setup == 0 and len(net.mgr) == 0
