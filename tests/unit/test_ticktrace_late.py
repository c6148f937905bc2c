"""The late ticks of a tick trace and the VM steal in their windows, as the voicemail bench
reports them (bench/ticktrace_report.py, bench/voicemail_bench.py)."""

from __future__ import annotations

from pathlib import Path

from bench.ticktrace_report import late_ticks
from bench.voicemail_bench import Step

COLUMNS = ["tick", "at", "late_ms", "gap_ms", "cpu_ms", "runq_ms", "gc_ms", "steal_ms"]


def _trace(tmp_path: Path, rows: list[tuple[float, ...]]) -> Path:
    path = tmp_path / "ticks-1.csv"
    lines = [",".join(COLUMNS)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _step(late: int, traced: Path) -> Step:
    return Step(
        callers=2, ok_calls=2, filed=2, late_ticks=late, max_tick_ms=3.0, worst_error=0.1,
        cpu_seconds=1.0, call_seconds=10.0, wall=12.0, load_before=1.0, load_after=1.0,
        traced=late_ticks(traced, 5.0, since=100.0, until=200.0),
    )  # fmt: skip


def test_late_ticks_of_the_window_with_their_steal(tmp_path: Path) -> None:
    trace = _trace(
        tmp_path,
        [
            (1, 50.0, 30.0, 50.0, 0, 0, 0, 20.0),  # before the window
            (2, 120.0, 4.9, 24.0, 0, 0, 0, 0.0),  # not late: 5 ms is the engine's bound
            (3, 140.0, 12.0, 32.0, 0, 0, 0, 10.0),  # late, a guest ran meanwhile
            (4, 160.0, 8.0, 28.0, 0, 7.5, 0, 0.0),  # late, waited on the run queue
        ],
    )
    found = late_ticks(trace, 5.0, since=100.0, until=200.0)
    assert [(t.tick, t.stolen) for t in found] == [(3, True), (4, False)]
    assert found[1].cause == "descheduled"
    assert (
        _step(2, trace).verdict()
        == "FAIL: late ticks traced 1 with VM steal in their window, 1 without"
    )


def test_a_run_late_only_under_steal_says_so(tmp_path: Path) -> None:
    trace = _trace(tmp_path, [(3, 140.0, 12.0, 32.0, 0, 0, 0, 10.0)])
    assert _step(1, trace).verdict() == "FAIL: all 1 late ticks had VM steal in their window"
    assert _step(0, trace).verdict() == "pass"
