"""Overload control: which new calls are shed, why, and how the lag signal settles."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pydantic import ValidationError

from config.models import OverloadSettings
from softswitch.overload import OverloadGuard


@pytest.mark.parametrize(("settings", "in_setup", "transactions", "lag", "reason"), [
    ({}, 0, 0, 0.0, None),
    ({"max_calls_in_setup": 10}, 9, 0, 0.0, None),
    ({"max_calls_in_setup": 10}, 10, 0, 0.0, "calls_in_setup"),
    ({"max_transactions": 100}, 0, 100, 0.0, "transactions"),
    ({"max_loop_lag": 0.1}, 0, 0, 1.0, "loop_lag"),
    ({"max_loop_lag": None}, 0, 0, 5.0, None),
    ({"max_calls_in_setup": None, "max_transactions": None}, 10**6, 10**7, 0.0, None),
])
def test_overload_reasons(settings: dict[str, Any], in_setup: int, transactions: int,
                          lag: float, reason: str | None) -> None:
    guard = OverloadGuard(OverloadSettings(**settings))
    for _ in range(20):  # a sustained lag, not one sample
        guard.observe_lag(lag)
    assert guard.overloaded(in_setup, transactions) == reason
    assert guard.admit(in_setup, transactions) is (reason is None)
    assert guard.counters["shed"] == (0 if reason is None else 1)


def test_shedding_is_counted_per_reason_and_per_episode() -> None:
    guard = OverloadGuard(OverloadSettings(max_calls_in_setup=2))
    results = [guard.admit(n, 0) for n in (0, 1, 2, 3, 2, 1, 2)]
    assert results == [True, True, False, False, False, True, False]
    assert guard.counters == {"shed": 4, "episodes": 2, "calls_in_setup": 4}


def test_lag_has_hysteresis() -> None:
    guard = OverloadGuard(OverloadSettings(max_loop_lag=0.2))
    guard.observe_lag(0.15)
    assert not guard.lagging  # one late tick below the bound
    for _ in range(10):
        guard.observe_lag(0.5)
    assert guard.lagging
    trail = []
    for _ in range(30):
        guard.observe_lag(0.0)
        trail.append(guard.lagging)
    # Shedding stops only once the smoothed lag is under half the bound, then stays off.
    assert trail[0] and not trail[-1]
    assert trail == sorted(trail, reverse=True)
    assert guard.lag < 0.1


@pytest.mark.parametrize("field", ["max_calls_in_setup", "max_transactions", "max_loop_lag",
                                   "retry_after"])
def test_bad_settings_name_the_field(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        OverloadSettings.model_validate({field: 0})


async def test_the_loop_watch_samples_lag() -> None:
    guard = OverloadGuard(OverloadSettings(lag_interval=0.01, max_loop_lag=0.005))
    task = asyncio.create_task(guard.watch_loop())
    # Block the loop (as a burst of work would) a few ticks in a row.
    for _ in range(4):
        await asyncio.sleep(0.011)
        time.sleep(0.05)
    await asyncio.sleep(0.011)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert guard.lagging and guard.overloaded(0, 0) == "loop_lag"
