"""The garbage-collector schedule: young passes on a timer, full passes logged, the
interpreter's own settings given back on stop."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import structlog

from config.models import CollectorSettings
from softswitch.collector import CycleCollector


def test_young_and_full_passes_run_on_their_schedules_and_stop_restores_the_interpreter() -> None:
    before = gc.get_threshold()
    generations: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            generations.append(info["generation"])

    async def run() -> CycleCollector:
        collector = CycleCollector(
            CollectorSettings(young_threshold=50_000, young_interval=0.02, full_interval=0.05)
        )
        collector.start()
        assert gc.get_threshold()[0] == 50_000
        assert min(gc.get_threshold()[1:]) >= 1 << 30  # older generations: never by count
        assert gc.get_freeze_count() > 0  # start-up state is out of the collector's view
        gc.callbacks.append(seen)
        try:
            await asyncio.sleep(0.2)
        finally:
            gc.callbacks.remove(seen)
            collector.stop()
        return collector

    with structlog.testing.capture_logs() as logs:
        collector = asyncio.run(run())
    assert generations.count(0) >= 3  # the young timer (0.02 s) fired several times
    assert generations.count(2) == collector.passes >= 2  # the full timer (0.05 s)
    passes = [e for e in logs if e["event"] == "gc_full_pass"]
    assert len(passes) == collector.passes
    assert all(isinstance(e["ms"], float) and e["unreachable"] >= 0 for e in passes)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_zero_intervals_switch_the_schedules_off() -> None:
    before = gc.get_threshold()

    async def run() -> int:
        collector = CycleCollector(CollectorSettings(young_interval=0, full_interval=0))
        collector.start()
        await asyncio.sleep(0.05)
        collector.stop()
        return collector.passes

    assert asyncio.run(run()) == 0
    assert gc.get_threshold() == before
