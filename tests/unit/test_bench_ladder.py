"""The bench suite's pure parts: the rate ladder against a fake system with a known capacity,
the trial verdict, and the report's ratios and table."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.ladder import LadderSettings, Trial, climb
from bench.report import ratios, table


def system(
    capacity: float,
    flaky: Callable[[int], bool] = lambda n: False,
) -> tuple[Callable[[float], Trial], list[float]]:
    """A fake system that carries every rate up to `capacity` cleanly and fails above;
    `flaky(n)` makes the n-th run (from 0) fail anyway (a noisy neighbour)."""
    offered: list[float] = []

    def attempt(level: float) -> Trial:
        n = len(offered)
        offered.append(level)
        ok = level <= capacity and not flaky(n)
        calls = 100
        return Trial(
            level=level,
            attempted=calls,
            successful=calls if ok else 90,
            failed=0 if ok else 10,
            elapsed_s=1.0,
            achieved=level if ok else level / 2,
            cpu_pct=50.0,
            p50_ms=1.0,
            p99_ms=5.0,
        )

    return attempt, offered


@pytest.mark.parametrize(
    ("capacity", "settings", "best"),
    [
        # step up 100 -> 200 -> 400 (fails) -> bisect 300 (clean) -> 350 (fails)
        (320, LadderSettings(start=100, factor=2, max_level=10_000, refine=2), 300.0),
        # everything is clean: stop at the ceiling, which is tried even off the factor's grid
        (1e9, LadderSettings(start=100, factor=2, max_level=300, refine=2), 300.0),
        # even the first step fails: back off below it
        (40, LadderSettings(start=100, factor=2, max_level=1000, refine=2), 25.0),
        # integral levels (media calls)
        (7, LadderSettings(start=2, factor=2, max_level=100, refine=3, integral=True), 7.0),
    ],
)
def test_the_ladder_finds_the_highest_confirmed_clean_level(
    capacity: float, settings: LadderSettings, best: float
) -> None:
    attempt, offered = system(capacity)
    result = climb(attempt, settings)
    assert result.best == best
    assert len(result.trials) == len(offered) <= settings.max_trials
    # confirmed and repeated: `repeats` clean runs at the best level
    assert len(result.at_best()) == settings.repeats


def test_each_step_is_confirmed_before_the_ladder_climbs() -> None:
    attempt, offered = system(1e9)
    climb(attempt, LadderSettings(start=10, factor=2, max_level=40, confirm=2, repeats=2))
    assert offered == [10, 10, 20, 20, 40, 40]


def test_one_noisy_repeat_is_tolerated_and_reported() -> None:
    # Clean up to 400, but the run after the two confirmations of 400 (a repeat) fails.
    attempt, offered = system(1e9, flaky=lambda n: n == 6)
    result = climb(attempt, LadderSettings(start=100, factor=2, max_level=400, repeats=3))
    assert offered == [100, 100, 200, 200, 400, 400, 400, 400]
    assert result.best == 400
    assert result.summary()["failed_runs_at_best"] == 1


def test_repeats_failing_at_the_best_level_back_off() -> None:
    attempt, offered = system(1e9, flaky=lambda n: n in (6, 7))
    result = climb(attempt, LadderSettings(start=100, factor=2, max_level=400, repeats=3))
    assert offered == [100, 100, 200, 200, 400, 400, 400, 400, 200]
    assert result.best == 200
    assert len(result.at_best()) == 3


def test_the_ladder_is_bounded_in_runs() -> None:
    attempt, offered = system(1e9)
    climb(attempt, LadderSettings(start=1, factor=1.1, max_level=1e6, max_trials=5))
    assert len(offered) == 5


def test_the_summary_gives_median_and_spread_at_the_best_level() -> None:
    achieved = iter([100.0, 100.0, 96.0, 99.0, 104.0])

    def attempt(level: float) -> Trial:
        return Trial(
            level=level,
            attempted=1000,
            successful=1000,
            failed=0,
            elapsed_s=1,
            achieved=next(achieved),
            p50_ms=2.0,
            p99_ms=9.0,
        )

    result = climb(attempt, LadderSettings(start=100, max_level=100, repeats=5))
    summary = result.summary()
    assert summary["best_level"] == 100
    assert summary["achieved"] == {"median": 100.0, "min": 96.0, "max": 104.0}
    assert summary["cpu_pct"] is None  # not measured (a remote switch)


@pytest.mark.parametrize(
    ("failed", "achieved", "passed", "clean"),
    [
        (0, 100.0, None, True),
        (1, 100.0, None, True),  # 1 in 10,000 is below 0.1 %
        (10, 100.0, None, False),  # 0.1 % is not below 0.1 %
        (0, 94.0, None, False),  # fell short of the offered rate
        (0, 0.0, True, True),  # the workload's own verdict (media) wins
        (0, 100.0, False, False),
    ],
)
def test_a_trial_is_clean_below_one_failure_in_a_thousand(
    failed: int, achieved: float, passed: bool | None, clean: bool
) -> None:
    trial = Trial(
        level=100,
        attempted=10_000,
        successful=10_000 - failed,
        failed=failed,
        elapsed_s=100,
        achieved=achieved,
        passed=passed,
    )
    assert trial.clean is clean


def _result(workload: str, system: str, best: float, status: str = "ok") -> dict[str, object]:
    return {
        "workload": workload,
        "system": system,
        "status": status,
        "reason": "",
        "summary": {"best_level": best, "achieved": {"median": best, "min": best, "max": best}},
    }


def test_our_figure_is_given_as_a_ratio_to_each_reference() -> None:
    results = [
        _result("1", "softswitch", 1000),
        _result("1", "kamailio", 4000),
        _result("2", "softswitch", 300),
        _result("2", "kamailio", 600),
        _result("2", "sippy", 150),
        {"workload": "4", "system": "softswitch", "status": "ok", "bytes_per_call": 6000},
        {"workload": "4", "system": "sippy", "status": "ok", "bytes_per_call": 3000},
        _result("2", "broken", 0, status="error"),
    ]
    found = {(r["workload"], r["reference"]): r["ratio"] for r in ratios(results)}
    assert found == {
        ("1", "kamailio"): 0.25,
        ("2", "kamailio"): 0.5,
        ("2", "sippy"): 2.0,
        ("4", "sippy"): 2.0,
        ("2", "broken"): None,
    }
    text = table(results, {"1": "REGISTER/s", "2": "CPS"})
    assert "0.25" in text and "REGISTER/s" in text and "error" in text
