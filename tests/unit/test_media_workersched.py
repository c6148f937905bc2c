"""The media worker's CPU priority and its garbage collections between ticks."""

from __future__ import annotations

import asyncio
import gc
import os
import time

import pytest

from media import workersched


def _refuse(*_: object) -> None:
    raise PermissionError("not permitted")


def test_priority_is_realtime_when_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int, int]] = []
    monkeypatch.setattr(
        os, "sched_setscheduler", lambda pid, policy, param: asked.append((pid, policy, param[0]))
    )
    assert workersched.raise_priority() == "realtime"
    assert asked == [(0, os.SCHED_RR, workersched.RT_PRIORITY)]  # the calling thread


def test_priority_falls_back_to_nice_then_to_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_setscheduler", _refuse)
    monkeypatch.setattr(os, "getpriority", lambda *_: 0)
    niced: list[int] = []
    monkeypatch.setattr(os, "setpriority", lambda _which, _who, value: niced.append(value))
    assert workersched.raise_priority() == "nice"
    assert niced == [workersched.NICE]

    monkeypatch.setattr(os, "setpriority", _refuse)
    assert workersched.raise_priority() == "unchanged"


async def test_middle_generation_collected_after_a_tick_once_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = [(0, 3, 0)]
    collected: list[int] = []
    monkeypatch.setattr(gc, "get_count", lambda: counts[-1])

    def collect(generation: int = 2) -> int:
        collected.append(generation)
        return 0

    monkeypatch.setattr(gc, "collect", collect)
    ticks = 0

    def next_tick() -> float:
        nonlocal ticks
        ticks += 1
        return time.monotonic()  # a tick due now: the collector looks right after it

    task = asyncio.create_task(workersched.collect_after_ticks(next_tick, 10))
    try:
        while ticks < 3:
            await asyncio.sleep(0.001)
        assert collected == []  # 3 young passes of the 10 between middle ones
        counts.append((0, 10, 0))
        while not collected:
            await asyncio.sleep(0.001)
        assert set(collected) == {1}  # the middle generation, never a full pass
    finally:
        task.cancel()
