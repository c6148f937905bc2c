"""A per-tick trace of the media engine, switched on to find out why a tick was late.

``SOFTSWITCH_TICK_TRACE=DIR`` in a media process's environment makes its engine record one
row per frame tick and write them to ``DIR/ticks-<pid>.csv`` when the engine closes (the
rows of the last ``MAX_ROWS`` ticks; ``bench/ticktrace_report.py`` summarises the file).
A row tells the two kinds of late tick apart:

* woken late: the main thread was runnable but not running before the tick (``runq_ms``,
  from ``/proc/thread-self/schedstat``: time spent waiting on a run queue), or the loop
  was busy with something else (``cpu_ms``: the thread's CPU time since the last tick
  ended, e.g. commands or polls), or neither (sleeping: the timer, or the GIL held by one
  of the process's other threads, whose CPU time is ``others_ms``, or a page read back
  from disk: ``faults``, the thread's major page faults, or on a virtual machine the
  hypervisor running another guest: ``steal_ms``, all CPUs' steal time since the previous
  tick started, in the kernel's 10 ms steps);
* slow inside: the phases' times (plan, drain, decode, players, recordings, send, DTMF,
  RTCP) and what they handled (datagrams read, legs decoded and generated, recordings,
  blocks handed to the disk thread), the garbage collections that ran (``gc_ms``,
  ``gc_gen``) and again ``runq_ms`` (preempted in the middle of the tick).

Off (the default), the engine pays one ``is None`` test per phase.
"""

from __future__ import annotations

import gc
import os
import resource
import threading
import time
from collections import deque
from pathlib import Path

__all__ = ["ENV", "PHASES", "TickTrace", "from_environment"]

ENV = "SOFTSWITCH_TICK_TRACE"
MAX_ROWS = 100_000  # about half an hour of ticks
PHASES = ("plan", "drain", "decode", "players", "record", "send", "dtmf", "rtcp")
PLAN, DRAIN, DECODE, PLAYERS, RECORD, SEND, DTMF, RTCP = range(len(PHASES))
_COUNTS = ("reads", "decoders", "generators", "recordings", "blocks")
READS, DECODERS, GENERATORS, RECORDINGS, BLOCKS = range(len(_COUNTS))
_HEADER = (
    ["tick", "at", "late_ms", "gap_ms", "cpu_ms", "others_ms", "runq_ms", "faults", "steal_ms"]
    + ["gc_ms", "gc_gen"]
    + ["commands", "polls", "poll_reads", "poll_ms"]
    + ["tick_ms", "tick_cpu_ms", "tick_runq_ms", "tick_gc_ms", "tick_gc_gen"]
    + [f"{p}_ms" for p in PHASES]
    + list(_COUNTS)
)


class TickTrace:
    """Rows of what each tick (and the loop between ticks) did; see the module docstring."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._rows: deque[tuple[float, ...]] = deque(maxlen=MAX_ROWS)
        # opened on the loop's thread: the file then describes that thread, not the process
        sched = f"/proc/self/task/{threading.get_native_id()}/schedstat"
        self._sched = os.open(sched, os.O_RDONLY) if os.path.exists(sched) else -1
        self._stat = os.open("/proc/stat", os.O_RDONLY) if os.path.exists("/proc/stat") else -1
        self._steal = self._stolen()
        self._tick = 0
        self._in_tick = False
        self._gc_started = 0.0
        self._gc_between = 0.0
        self._gc_gen_between = -1
        self._gc_in_tick = 0.0
        self._gc_gen_in_tick = -1
        # between ticks: commands applied, polls of the sockets
        self.commands = 0
        self.polls = 0
        self.poll_reads = 0
        self.poll_seconds = 0.0
        # per tick, set by the engine
        self.counts = [0] * len(_COUNTS)
        self._phases = [0.0] * len(PHASES)
        self._mark = 0.0
        self._start = 0.0
        self._late = 0.0
        self._cpu0 = 0.0
        self._runq0 = 0.0
        self._end = 0.0
        self._end_cpu = time.thread_time()
        self._end_process = time.process_time()
        self._process0 = 0.0
        self._end_runq = self._runq()
        self._end_faults = self._faults0 = self._faults()
        self._stolen_since = 0.0
        gc.callbacks.append(self._on_gc)

    def _runq(self) -> float:
        """Seconds the thread has spent runnable but not running (0 where unknown)."""
        if self._sched < 0:
            return 0.0
        fields = os.pread(self._sched, 128, 0).split()
        return int(fields[1]) / 1e9

    def _stolen(self) -> float:
        """Seconds of steal time of all CPUs so far (0 where unknown)."""
        if self._stat < 0:
            return 0.0
        fields = os.pread(self._stat, 256, 0).split(b"\n", 1)[0].split()
        return int(fields[8]) / 100 if len(fields) > 8 else 0.0

    @staticmethod
    def _faults() -> int:
        """The thread's major page faults so far (each one a wait for the disk)."""
        return resource.getrusage(getattr(resource, "RUSAGE_THREAD", 0)).ru_majflt

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
            return
        spent = now - self._gc_started
        generation = info.get("generation", 0)
        if self._in_tick:
            self._gc_in_tick += spent
            self._gc_gen_in_tick = max(self._gc_gen_in_tick, generation)
        else:
            self._gc_between += spent
            self._gc_gen_between = max(self._gc_gen_between, generation)

    def begin(self, start: float, deadline: float) -> None:
        """A tick starts at ``start`` (``time.monotonic()``) for ``deadline``."""
        self._tick += 1
        self._in_tick = True
        self._start = start
        self._late = start - deadline
        self._cpu0 = time.thread_time()
        self._process0 = time.process_time()
        self._runq0 = self._runq()
        self._faults0 = self._faults()
        steal = self._stolen()
        self._stolen_since, self._steal = steal - self._steal, steal
        for i in range(len(self.counts)):
            self.counts[i] = 0
        for i in range(len(self._phases)):
            self._phases[i] = 0.0
        self._mark = time.perf_counter()

    def phase(self, index: int) -> None:
        """The phase ``PHASES[index]`` ended now (time since the previous mark)."""
        now = time.perf_counter()
        self._phases[index] += now - self._mark
        self._mark = now

    def skip(self) -> None:
        """Time since the previous mark belongs to no phase."""
        self._mark = time.perf_counter()

    def end(self) -> None:
        """The tick ended: its row is recorded and the between-ticks counters reset."""
        end = time.monotonic()
        cpu = time.thread_time()
        runq = self._runq()
        ms = 1000.0
        gap = self._start - self._end if self._end else 0.0
        row = (
            float(self._tick),
            self._start,
            self._late * ms,
            gap * ms,
            (self._cpu0 - self._end_cpu) * ms,
            (self._process0 - self._end_process - (self._cpu0 - self._end_cpu)) * ms,
            (self._runq0 - self._end_runq) * ms,
            float(self._faults0 - self._end_faults),
            self._stolen_since * ms,
            self._gc_between * ms,
            float(self._gc_gen_between),
            float(self.commands),
            float(self.polls),
            float(self.poll_reads),
            self.poll_seconds * ms,
            (end - self._start) * ms,
            (cpu - self._cpu0) * ms,
            (runq - self._runq0) * ms,
            self._gc_in_tick * ms,
            float(self._gc_gen_in_tick),
            *(p * ms for p in self._phases),
            *(float(c) for c in self.counts),
        )
        self._rows.append(row)
        self._in_tick = False
        self._end, self._end_cpu, self._end_runq = end, cpu, runq
        self._end_process = time.process_time()
        self._end_faults = self._faults()
        self._gc_between = self._gc_in_tick = 0.0
        self._gc_gen_between = self._gc_gen_in_tick = -1
        self.commands = self.polls = self.poll_reads = 0
        self.poll_seconds = 0.0

    def close(self) -> Path:
        """Write the rows (CSV) and stop tracing; the file written."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        for fd in (self._sched, self._stat):
            if fd >= 0:
                os.close(fd)
        self._sched = self._stat = -1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w") as out:
            out.write(",".join(_HEADER) + "\n")
            for row in self._rows:
                out.write(",".join(f"{v:.3f}" if v % 1 else str(int(v)) for v in row) + "\n")
        return self.path


def from_environment() -> TickTrace | None:
    """A trace writing to ``$SOFTSWITCH_TICK_TRACE/ticks-<pid>.csv``, or None when unset."""
    folder = os.environ.get(ENV)
    if not folder:
        return None
    return TickTrace(Path(folder) / f"ticks-{os.getpid()}.csv")
