"""Mix-kernel time per tick: 1,000 participants in rooms of 3-50 (target < 1 ms).

Run: ``.venv/bin/python bench/mixer_bench.py [--participants 1000] [--ticks 2000]``.
Scenarios: conferences only (total-minus-self); the same plus monitored calls (the
per-pair matrix path) and non-unity gains/mutes; the cross-fade tick after a change.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from media.mixer import Mixer, MonitorMode


def build(participants: int, *, monitored_calls: int = 0, gains: bool = False) -> Mixer:
    """A mixer with ``participants`` spread over rooms of 3..50 (plus monitored calls)."""
    rng = random.Random(1)
    m = Mixer()
    n = room = 0
    while n < participants - 3 * monitored_calls:
        size = min(rng.randint(3, 50), participants - 3 * monitored_calls - n)
        for k in range(size):
            m.add(f"room{room}", f"r{room}p{k}")
            if gains and k % 5 == 0:
                m.set_gain(f"r{room}p{k}", 1.5)
            if gains and k % 7 == 0:
                m.set_talk(f"r{room}p{k}", False)
        n += size
        room += 1
    for c in range(monitored_calls):
        for role in ("caller", "agent", "sup"):
            m.add(f"call{c}", f"{role}{c}")
        m.set_monitor(f"sup{c}", list(MonitorMode)[c % 3], agent=f"agent{c}")
    return m


def per_tick(fn: Callable[[], object], ticks: int) -> tuple[float, float]:
    """(median, p99) seconds of ``fn`` over ``ticks`` calls."""
    times = np.empty(ticks)
    for i in range(ticks):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    return float(np.median(times)), float(np.percentile(times, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--ticks", type=int, default=2000)
    args = parser.parse_args()
    p = args.participants
    rng = np.random.default_rng(0)
    print(f"mix kernel, {p} participants, rooms of 3-50, 160 samples per tick")
    scenarios = {
        "conferences (total-minus-self)": build(p),
        "conferences + gains/mutes": build(p, gains=True),
        "conferences + 50 monitored calls": build(p, monitored_calls=50),
    }
    for name, m in scenarios.items():
        frames = rng.integers(-8000, 8000, (m.rows, 160)).astype(np.int16)
        out = np.empty_like(frames)
        m.mix(frames, out=out)  # compile the plan outside the timing
        median, p99 = per_tick(partial(m.mix, frames, out=out), args.ticks)
        print(f"  {name:36s} median {median * 1e3:6.3f} ms  p99 {p99 * 1e3:6.3f} ms")
    m = build(p)
    frames = rng.integers(-8000, 8000, (m.rows + 1, 160)).astype(np.int16)
    toggle = [False]

    def changing_tick() -> None:
        toggle[0] = not toggle[0]
        m.set_talk("r0p0", toggle[0])  # forces re-plan + cross-fade every tick
        m.mix(frames)

    median, p99 = per_tick(changing_tick, max(50, args.ticks // 10))
    print(
        f"  {'change every tick (re-plan + fade)':36s} median {median * 1e3:6.3f} ms  "
        f"p99 {p99 * 1e3:6.3f} ms"
    )


if __name__ == "__main__":
    main()
