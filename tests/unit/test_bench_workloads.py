"""The suite's reading of a SIPp run: response times and the achieved rate from -trace_rtt."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.workloads import trial_from
from peers.sipp import SippResult


def _run(tmp_path: Path, completions: list[tuple[float, float]]) -> Path:
    """A SIPp work directory with one rtt trace: (completion time ms, response time ms)."""
    workdir = tmp_path / "run"
    workdir.mkdir()
    rows = "".join(f"{at:.3f};{rtt:g};1\n" for at, rtt in completions)
    (workdir / "register_1234_rtt.csv").write_text("Date_ms;response_time_ms;rtd_no\n" + rows)
    return workdir


def _result(successful: int, failed: int, elapsed: float) -> SippResult:
    return SippResult(
        returncode=0 if not failed else 1,
        successful=successful,
        failed=failed,
        elapsed=elapsed,
        rate=successful / elapsed,
        errors="boom",
    )


@pytest.mark.parametrize(("spacing_ms", "rate"), [(10.0, 100.0), (2.5, 400.0)])
def test_the_achieved_rate_is_taken_between_first_and_last_completion(
    tmp_path: Path, spacing_ms: float, rate: float
) -> None:
    completions = [(1000 + i * spacing_ms, 1 + i % 10) for i in range(100)]
    workdir = _run(tmp_path, completions)
    # SIPp's start-up makes the wall time longer than the calls' span.
    trial = trial_from(
        rate, 100, _result(100, 0, 100 * spacing_ms / 1000 + 0.4), workdir, cpu_s=0.5
    )
    assert trial.achieved == pytest.approx(rate * 99 / 100, rel=0.02)
    assert trial.clean
    assert (trial.p50_ms, trial.p99_ms) == (5, 10)
    assert trial.cpu_pct is not None and trial.cpu_pct > 0
    assert not workdir.exists()  # the traces are read once and removed


def test_calls_that_never_finished_count_as_failed(tmp_path: Path) -> None:
    workdir = _run(tmp_path, [(1000 + i, 1) for i in range(90)])
    trial = trial_from(100, 100, _result(90, 0, 1.0), workdir, cpu_s=None)
    assert trial.failed == 10 and not trial.clean
    assert trial.cpu_pct is None  # a process the bench cannot see
    assert trial.extra["sipp_errors"] == "boom"
