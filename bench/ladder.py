"""The rate ladder: the highest load a system carries with < 0.1 % failures, found on a noisy
machine by stepping up, confirming each step, backing off on failure and repeating the best.

A workload supplies `attempt(level) -> Trial` (level: offered calls or registrations per
second, or concurrent media calls); the ladder knows nothing of SIP.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

MAX_FAILED_FRACTION = 0.001  # the "< 0.1 % failures"
MIN_ACHIEVED_FRACTION = 0.95  # a run that falls short of the offered rate is not clean


@dataclass
class Trial:
    """One run at one level, with the figures of the system under test during it."""

    level: float
    attempted: int
    successful: int
    failed: int
    elapsed_s: float
    achieved: float  # per second (or concurrent calls carried, for media)
    cpu_pct: float | None = None  # of one core, None when the process is not visible
    p50_ms: float | None = None  # SIPp response time of the run
    p99_ms: float | None = None
    passed: bool | None = None  # a workload's own verdict; None: failures and rate decide
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def failure_fraction(self) -> float:
        return self.failed / self.attempted if self.attempted else 1.0

    @property
    def clean(self) -> bool:
        if self.passed is not None:
            return self.passed
        return (
            self.failure_fraction < MAX_FAILED_FRACTION
            and self.successful >= (1 - MAX_FAILED_FRACTION) * self.attempted
            and self.achieved >= MIN_ACHIEVED_FRACTION * self.level
        )

    def as_json(self) -> dict[str, object]:
        return {
            **asdict(self),
            "clean": self.clean,
            "failure_fraction": round(self.failure_fraction, 6),
        }


@dataclass
class LadderSettings:
    """How to climb: `confirm` clean runs make a step; `repeats` runs at the best level give
    the median and spread; `refine` bisections between the best and the failing level."""

    start: float
    factor: float = 1.5
    max_level: float = 5000.0
    confirm: int = 2
    refine: int = 2
    repeats: int = 3
    max_trials: int = 30
    budget_s: float = 300.0
    integral: bool = False  # levels are counts (media calls), not rates

    def __post_init__(self) -> None:
        if not (1 < self.factor <= 4 and 0 < self.start <= self.max_level):
            raise ValueError("the ladder needs 1 < factor <= 4 and 0 < start <= max_level")
        if self.confirm < 1 or self.repeats < 1:
            raise ValueError("the ladder needs confirm >= 1 and repeats >= 1")


@dataclass
class LadderResult:
    """The best clean level, every trial, and the spread of the repeats at the best level."""

    best: float
    trials: list[Trial]

    def at_best(self) -> list[Trial]:
        return [t for t in self.trials if t.level == self.best and t.clean]

    def summary(self) -> dict[str, object]:
        """Median and spread (min, max) of the clean runs at the best level."""
        runs = self.at_best()

        def spread(values: list[float]) -> dict[str, float] | None:
            if not values:
                return None
            return {
                "median": round(statistics.median(values), 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
            }

        def figures(name: str) -> list[float]:
            values = (getattr(t, name, t.extra.get(name)) for t in runs)
            return [float(v) for v in values if isinstance(v, int | float)]

        return {
            "best_level": round(self.best, 1),
            "runs_at_best": len(runs),
            "failed_runs_at_best": sum(
                1 for t in self.trials if t.level == self.best and not t.clean
            ),
            "achieved": spread(figures("achieved")),
            "p50_ms": spread(figures("p50_ms")),
            "p99_ms": spread(figures("p99_ms")),
            "cpu_pct": spread(figures("cpu_pct")),
            # the calling SIPp's: near 100 % it, not the system under test, was the limit
            "uac_cpu_pct": spread(figures("uac_cpu_pct")),
            "trials": len(self.trials),
        }


def climb(attempt: Callable[[float], Trial], settings: LadderSettings) -> LadderResult:
    """Step up by `factor` while each level is confirmed clean, bisect back between the best
    clean and the first failing level, then repeat the best; repeats failing more than
    `repeats // 2` times back off to the next lower confirmed level. Bounded by `max_trials`
    and `budget_s`."""
    trials: list[Trial] = []
    started = time.monotonic()

    def room() -> bool:
        return len(trials) < settings.max_trials and time.monotonic() - started < settings.budget_s

    def level_of(value: float) -> float:
        return float(max(1, round(value))) if settings.integral else round(value, 1)

    def confirmed(level: float, runs: int) -> bool:
        for _ in range(runs):
            if not room():
                return False
            trial = attempt(level)
            trials.append(trial)
            if not trial.clean:
                return False
        return True

    clean_levels: list[float] = []  # confirmed, ascending
    failed_at: float | None = None
    level = level_of(settings.start)
    while room():
        if not confirmed(level, settings.confirm):
            failed_at = level
            break
        clean_levels.append(level)
        if level >= settings.max_level:
            break
        level = level_of(min(level * settings.factor, settings.max_level))
    for _ in range(settings.refine):
        if failed_at is None or not room():
            break
        low = clean_levels[-1] if clean_levels else 0.0
        middle = level_of((low + failed_at) / 2)
        if middle <= low or middle >= failed_at or failed_at - middle < 0.02 * failed_at:
            break
        if confirmed(middle, settings.confirm):
            clean_levels.append(middle)
        else:
            failed_at = middle
    # Repeat the best level until it has `repeats` clean runs; one noisy failure among them
    # is tolerated (and reported), more than repeats // 2 back off to the next level below.
    while clean_levels and room():
        best = clean_levels[-1]
        runs = [t for t in trials if t.level == best]
        clean = sum(1 for t in runs if t.clean)
        if len(runs) - clean > settings.repeats // 2:
            clean_levels.pop()
        elif clean >= settings.repeats:
            break
        else:
            trials.append(attempt(best))
    return LadderResult(best=clean_levels[-1] if clean_levels else 0.0, trials=trials)
