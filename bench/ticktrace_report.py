"""Summarise a media engine's tick trace: why were its late ticks late?

Run a media process with ``SOFTSWITCH_TICK_TRACE=DIR`` (see :mod:`media.ticktrace`), then
``.venv/bin/python -m bench.ticktrace_report DIR/ticks-<pid>.csv [--late-ms 5]``.

Prints the spread of tick durations and of each phase, then every late tick (started more
than ``--late-ms`` after its deadline) and every long tick (ran longer than ``--late-ms``)
with the tick before it, and a cause for each:

* ``descheduled``: the loop's thread waited on a run queue for most of the lateness (another
  process had the CPU) -- nothing the engine does in that tick can help;
* ``loop busy``: the thread spent most of the lateness on CPU between ticks (commands,
  polls, statistics);
* ``gc``: a garbage collection took most of it;
* ``stolen``: the hypervisor ran another guest meanwhile (steal time, a virtual machine);
* ``overrun``: the tick before ended after this one's time (see why that one was long);
* ``asleep``: neither ran nor waited to run (the timer fired late, or another thread held
  the GIL).

A long tick is ``descheduled`` when it waited on a run queue for most of its time beyond
its own CPU time, else ``work in the tick``.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

from media.ticktrace import PHASES

_SHOW = (
    ["tick", "late_ms", "gap_ms", "cpu_ms", "others_ms", "runq_ms", "faults", "steal_ms"]
    + ["gc_ms", "gc_gen"]
    + ["commands", "polls", "poll_reads", "poll_ms", "tick_ms", "tick_cpu_ms", "tick_runq_ms"]
    + ["tick_gc_ms", "tick_gc_gen"]
    + [f"{p}_ms" for p in PHASES]
    + ["reads", "decoders", "generators", "recordings", "blocks"]
)


def _cause(late: float, gap: float, runq: float, cpu: float, gc: float, steal: float) -> str:
    """What most of a tick's lateness went to."""
    parts = {"overrun": late - gap, "descheduled": runq, "loop busy": cpu - gc, "gc": gc}
    parts["stolen"] = steal
    name, spent = max(parts.items(), key=lambda item: item[1])
    return name if spent >= late / 2 else "asleep"


@dataclass(frozen=True, slots=True)
class LateTick:
    """A late tick of a trace and whether the hypervisor ran another guest meanwhile."""

    tick: int
    at: float  # time.monotonic() when it started
    late_ms: float
    steal_ms: float  # all CPUs' steal time since the tick before began (10 ms steps)
    cause: str  # as the report names it

    @property
    def stolen(self) -> bool:
        """VM steal in its window: late while the hypervisor held a CPU, not (only) ours."""
        return self.steal_ms > 0


def late_ticks(
    path: Path, late_ms: float, since: float = float("-inf"), until: float = float("inf")
) -> list[LateTick]:
    """The ticks of a trace that started more than ``late_ms`` behind their deadline (the
    engine's own definition of late), those started between ``since`` and ``until``."""
    out = []
    for row in csv.DictReader(path.open()):
        r = {k: float(v) for k, v in row.items()}
        if r["late_ms"] > late_ms and since <= r["at"] <= until:
            steal = r.get("steal_ms", 0.0)
            cause = _cause(r["late_ms"], r["gap_ms"], r["runq_ms"], r["cpu_ms"], r["gc_ms"], steal)
            out.append(LateTick(int(r["tick"]), r["at"], r["late_ms"], steal, cause))
    return out


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    if not ordered:
        return "-"
    pick = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.99, 0.999)]
    return f"p50 {pick[0]:.2f}  p99 {pick[1]:.2f}  p99.9 {pick[2]:.2f}  max {ordered[-1]:.2f}"


def report(path: Path, late_ms: float) -> str:
    rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(path.open())]
    lines = [f"{path}: {len(rows)} ticks"]
    for name in ["late_ms", "tick_ms", "cpu_ms", "runq_ms", "tick_runq_ms", "poll_ms"] + [
        f"{p}_ms" for p in PHASES
    ]:
        lines.append(f"  {name:14s} {_percentiles([r[name] for r in rows])}")
    gcs = [r for r in rows if r["gc_gen"] >= 0 or r["tick_gc_gen"] >= 0]
    lines.append(
        f"  garbage collections seen in {len(gcs)} ticks; generation 2 in "
        f"{sum(1 for r in gcs if max(r['gc_gen'], r['tick_gc_gen']) >= 2)}"
    )
    late = [i for i, r in enumerate(rows) if r["late_ms"] > late_ms]
    long = [i for i, r in enumerate(rows) if r["tick_ms"] > late_ms]
    lines.append(f"late ticks: {len(late)}   long ticks: {len(long)}")
    causes: dict[str, int] = {}
    for i in sorted(set(late) | set(long)):
        r = rows[i]
        why = []
        if i in late:
            # time between the previous tick's end and this start, beyond the expected sleep
            steal = r.get("steal_ms", 0.0)  # traces from before the column have none
            cause = _cause(r["late_ms"], r["gap_ms"], r["runq_ms"], r["cpu_ms"], r["gc_ms"], steal)
            why.append("late: " + cause)
        if i in long:
            excess = r["tick_ms"] - r["tick_cpu_ms"]
            slow = r["tick_runq_ms"] >= excess / 2 and excess > 1
            why.append("long: " + ("descheduled" if slow else "work in the tick"))
        for part in why:
            causes[part] = causes.get(part, 0) + 1
        lines.append(f"tick {int(r['tick'])}: {', '.join(why)}")
        for j in (i - 1, i):
            if j >= 0:
                shown = [k for k in _SHOW if k in rows[j]]  # traces from before a column
                lines.append("   " + "  ".join(f"{k}={rows[j][k]:g}" for k in shown))
    lines.append("causes: " + ", ".join(f"{n} x {k}" for k, n in sorted(causes.items())))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trace", type=Path, nargs="+", help="ticks-<pid>.csv files")
    parser.add_argument("--late-ms", type=float, default=5.0, help="the engine's late_after")
    args = parser.parse_args()
    for path in args.trace:
        print(report(path, args.late_ms))


if __name__ == "__main__":
    main()
