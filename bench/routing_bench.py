"""Micro-benchmark of ``routing.engine.plan_call``.

A DID routes to a user with 20 answering rules over 20 time frames (days of the week,
recurring dates, holidays of several countries, unions) in three timezones; calls arrive at
random moments over two years, so most calls walk most of the rules before one matches. The
user forwards on no answer to a second user with sim-ring. Prints p50/p99/max per call in
microseconds, measured one call at a time with ``perf_counter_ns``.

    python bench/routing_bench.py [--calls 20000] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.routing import TenantRouting
from routing.engine import compile_routing, plan_call
from routing.facts import CallFacts

ZONES = ("Europe/Brussels", "America/New_York", "Asia/Tokyo")


def _frames() -> list[dict[str, object]]:
    frames: list[dict[str, object]] = []
    for i in range(6):  # weekly schedules with split shifts
        frames.append(
            {
                "name": f"hours-{i}",
                "timezone": ZONES[i % 3],
                "when": {
                    "kind": "days_of_week",
                    "days": {
                        d: [
                            {"start": f"{7 + i % 3:02d}:00", "end": "12:00"},
                            {"start": "13:00", "end": f"{16 + i % 3:02d}:30"},
                        ]
                        for d in ("mon", "tue", "wed", "thu", "fri")[: 2 + i % 4]
                    },
                },
            }
        )
    for i, rec in enumerate(("daily", "weekly", "monthly", "yearly", "none", "weekly")):
        frames.append(
            {
                "name": f"dates-{i}",
                "timezone": ZONES[i % 3],
                "when": {
                    "kind": "specific_dates",
                    "periods": [
                        {
                            "start": f"2024-0{1 + i}-0{1 + i}T0{i}:15:00",
                            "end": f"2024-0{1 + i}-0{1 + i}T0{i + 1}:45:00",
                            "recurrence": rec,
                            **({"ends": "2027-12-31"} if rec != "none" else {}),
                        }
                    ],
                },
            }
        )
    for i, (country, subdiv) in enumerate(
        (("US", None), ("BE", None), ("DE", "BY"), ("JP", None), ("GB", "ENG"))
    ):
        frames.append(
            {
                "name": f"holidays-{i}",
                "timezone": ZONES[i % 3],
                "when": {
                    "kind": "holidays",
                    "country": country,
                    **({"subdiv": subdiv} if subdiv else {}),
                    "ranges": [{"start": "08:00", "end": "18:00"}],
                },
            }
        )
    for i in range(3):  # unions of weekly + dates + holidays
        frames.append(
            {
                "name": f"custom-{i}",
                "timezone": ZONES[i % 3],
                "when": {
                    "kind": "custom",
                    "parts": [
                        {
                            "kind": "days_of_week",
                            "days": {"sat": [{"start": "10:00", "end": "11:00"}]},
                        },
                        {"kind": "holidays", "country": "FR", "names": ["National Day"]},
                        {
                            "kind": "specific_dates",
                            "periods": [
                                {
                                    "start": "2024-12-24T12:00:00",
                                    "end": "2024-12-24T18:00:00",
                                    "recurrence": "yearly",
                                }
                            ],
                        },
                    ],
                },
            }
        )
    assert len(frames) == 20
    return frames


def build_config() -> TenantRouting:
    frames = _frames()
    rules = []
    for i, frame in enumerate(frames):
        rule: dict[str, object] = {"time_frame": frame["name"]}
        if i % 4 == 0:
            rule["forward"] = {"when_unanswered": {"kind": "user", "target": "200"}}
        elif i % 4 == 1:
            rule["simring"] = {
                "extra": [{"kind": "number", "target": "+32470123456", "delay": 10}],
                "answer_confirmation": True,
            }
        elif i % 4 == 2:
            rule["forward"] = {"always": {"kind": "voicemail", "target": "100"}}
        else:
            rule["dnd"] = "busy"
            rule["forward"] = {"when_busy": {"kind": "queue", "target": "500"}}
        rules.append(rule)
    return TenantRouting.model_validate(
        {
            "time_frames": frames,
            "users": {
                "100": {
                    "rules": rules,
                    "default_rule": {
                        "simring": {"extra": [{"kind": "extension", "target": "200", "delay": 5}]},
                        "forward": {"when_unanswered": {"kind": "user", "target": "200"}},
                    },
                    "block": {"blocked": ["+19005550100", "+1900*"]},
                },
                "200": {
                    "default_rule": {
                        "forward": {"when_unanswered": {"kind": "user", "target": "100"}}
                    }
                },
            },
            "queues": ["500"],
            "dids": [{"number": "+12127881500", "treatment": "user", "destination": "100"}],
            "block": {"blocked": ["+12125550199"]},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    config = build_config()
    compiled = compile_routing(config)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()
    moments = [start + rng.random() * 2 * 365 * 86400 for _ in range(args.calls)]
    registered = {"100": 2, "200": 1}
    facts = [
        CallFacts("+13125550000", "+12127881500", t, registered=registered, from_trunk=True)
        for t in moments
    ]
    for f in facts[:2000]:  # warm up: holiday sets per year, caches
        plan_call(compiled, f)
    for year in (2025, 2026, 2027):
        plan_call(compiled, CallFacts("+1", "+12127881500", dt.datetime(year, 7, 4, tzinfo=dt.UTC)))
    samples = []
    gc.disable()
    try:
        clock = time.perf_counter_ns
        for f in facts:
            t0 = clock()
            plan_call(compiled, f)
            samples.append(clock() - t0)
    finally:
        gc.enable()
    samples.sort()
    us = [s / 1000 for s in samples]
    p50 = us[len(us) // 2]
    p99 = us[int(len(us) * 0.99)]
    print(f"plan_call: 20 rules over 20 time frames, {len(us)} calls")
    mean = statistics.fmean(us)
    print(f"  p50 {p50:.1f} us  p99 {p99:.1f} us  max {us[-1]:.1f} us  mean {mean:.1f} us")
    print(f"  target p99 <= 50 us: {'met' if p99 <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
