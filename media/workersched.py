"""How a media worker keeps its frame ticks on time: CPU priority and garbage collection.

Traced (``SOFTSWITCH_TICK_TRACE``, see :mod:`media.ticktrace`) with 200 callers leaving
voicemail on a busy two-core machine, nearly every late tick was one whose thread had been
runnable but not running: waiting on the run queue behind other processes (SIPp's sender
threads, compilers), before the tick or in the middle of it, for up to tens of
milliseconds, while the tick's own work took 2-5 ms. No change inside the tick helps with
that; the scheduler has to prefer the media loop. So the worker asks for real-time
round-robin scheduling (as media servers usually run), else a higher nice priority, else
carries on as it is; its threads too, since the loop waits for the GIL they hold. It takes
about a quarter of a core for 200 recorded callers, far from starving anyone, and Linux
keeps 5 % of every second for ordinary tasks whatever real-time tasks do
(``sched_rt_runtime_us``).

The rest was the collector: a pass over the two young generations took 6.5 ms while 200
calls were set up. CPython starts one whenever its count says so, which may be just before
a tick; here they run right after a tick, with the frame's slack ahead of them.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Callable

import structlog

__all__ = ["NICE", "RT_PRIORITY", "collect_after_ticks", "collect_fully", "raise_priority"]

log = structlog.get_logger(__name__)

RT_PRIORITY = 10  # SCHED_RR priority of the loop's thread (1-99): above every ordinary task
NICE = -10  # else: the nice value asked for
FULL_GC_INTERVAL = 300.0  # seconds between full collections (see collect_fully)
NEVER = 1 << 30  # a threshold no count reaches
_AFTER_TICK = 0.001  # seconds after a tick's time that a young collection runs


def raise_priority() -> str:
    """Give the calling thread (the loop's; threads it starts later inherit it) the CPU
    before ordinary tasks; what it got: ``realtime``, ``nice`` or ``unchanged``."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(RT_PRIORITY))
        return "realtime"
    except (AttributeError, OSError):
        pass  # not Linux, or neither root, CAP_SYS_NICE nor an RLIMIT_RTPRIO allows it
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) > NICE:
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
        return "nice"
    except (AttributeError, OSError):
        return "unchanged"


def take_over_collection() -> int:
    """Collect and freeze what start-up built, then leave CPython to start only the
    youngest generation's passes; the middle one's are :func:`collect_after_ticks`' and the
    oldest :func:`collect_fully`'s. The count of young passes between middle ones."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, NEVER, NEVER)
    return middle


async def collect_after_ticks(next_tick: Callable[[], float | None], every: int) -> None:
    """Collect the middle generation just after a tick, once ``every`` young passes ran
    since the last: CPython's own rhythm, moved to where the frame has slack."""
    while True:
        due = next_tick()
        wait = _AFTER_TICK if due is None else max(0.0, due - time.monotonic()) + _AFTER_TICK
        await asyncio.sleep(wait)
        if gc.get_count()[1] >= every:
            gc.collect(1)


async def collect_fully() -> None:
    """The oldest generation collected on a timer, not by CPython's count.

    With the default policy a full collection walks every object of every endpoint
    whenever enough new ones outlived two young collections, which a burst of calls set
    up does: 18 ms right after 400 calls were set up, and late ticks for every leg. So
    what start-up built is frozen out of the collector's view (:func:`take_over_collection`)
    and the old generation is collected every few minutes, each pass logged.
    """
    while True:
        await asyncio.sleep(FULL_GC_INTERVAL)
        started = time.perf_counter()
        found = gc.collect()
        log.info(
            "media_worker_gc_full_pass",
            unreachable=found,
            ms=round(1000 * (time.perf_counter() - started), 1),
        )
