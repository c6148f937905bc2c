"""The suite's workloads: each starts one system, drives it through the rate ladder (or holds
calls, or loads the media engine) and returns every figure as a JSON-ready dict.

1 registrations with MD5 digest; 2 call set-up, signalling only; 3 call set-up through the
full call path; 4 calls held open (memory per call); 5 anchored media; 6 conferences.

Over 600 lines because it holds the six workloads of the suite side by side, each a short
function over the same measuring helpers, so they read as one table.
"""

from __future__ import annotations

import csv
import io
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.call_bench import (
    DOMAIN,
    Bench,
    Callee,
    measure_memory,
    percentile,
    settle,
    tree_cpu_seconds,
    tree_peak_rss_kib,
    tree_pss_kib,
)
from bench.ladder import MAX_FAILED_FRACTION, LadderResult, LadderSettings, Trial, climb
from bench.systems import (
    AUTH_SCENARIO,
    CALL_USERS,
    DID,
    NOAUTH_SCENARIO,
    Running,
    full_path_toml,
    kamailio_proxy,
    kamailio_registrar,
    remote,
    sippy_b2bua,
    start_softswitch,
    trunk_toml,
)
from peers.sipp import SippResult, run_sipp, user_rows, write_users
from peers.switchproc import free_port, numbered_users

RTT_ARGS = ("-trace_rtt", "-rtt_freq", "1")  # every response time; a partial batch is lost
# Sippy sometimes sends a call's 180 after its 200; SIPp would abort that call as failed.
# Every system's caller in workloads 2 and 4 ignores such a stray response instead (the call
# must still complete), so a protocol quirk does not pass for a capacity limit.
TOLERANT = ("-default_behaviors", "all,-abortunexp")
TOLERANCE_NOTE = (
    "the caller ignores out-of-order responses instead of aborting the call "
    "(SIPp -default_behaviors all,-abortunexp): Sippy sends some 180s after "
    "the 200"
)


@dataclass
class Options:
    """The knobs of one suite run (see bench/suite.py for their command-line names)."""

    work: Path
    quick: bool
    users: int
    duration: float  # seconds of one ladder run
    hold: float  # workload 4
    concurrent: int  # workload 4
    max_rate: float
    confirm: int
    repeats: int
    budget: float  # seconds for one ladder
    transport: str = "udp"
    host: str | None = None
    # Kamailio runs one worker per core given, pinned there; SIPp and the rest use the others.
    kamailio_cores: tuple[int, ...] = (0,)
    port: int = 5060
    local_ip: str = "127.0.0.1"
    log: Callable[[str], None] = print
    cdrs: int = 1_000_000  # call history seeded for the admin API bench (workload 7)

    @property
    def remote_target(self) -> str | None:
        return f"{self.host}:{self.port}" if self.host else None

    def ladder(
        self,
        start: float,
        factor: float = 2.0,
        *,
        max_level: float | None = None,
        integral: bool = False,
    ) -> LadderSettings:
        return LadderSettings(
            start=min(start, max_level or self.max_rate),
            factor=factor,
            max_level=max_level or self.max_rate,
            confirm=self.confirm,
            refine=1 if self.quick else 2,
            repeats=self.repeats,
            budget_s=self.budget,
            integral=integral,
        )


@dataclass
class Outcome:
    """What one system did in one workload."""

    workload: str
    system: str
    status: str = "ok"  # ok, error, skipped, not available
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    ladder: LadderResult | None = None
    figures: dict[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "workload": self.workload,
            "system": self.system,
            "status": self.status,
            "reason": self.reason,
            "notes": self.notes,
            **self.figures,
        }
        if self.ladder is not None:
            out["summary"] = self.ladder.summary()
            out["trials"] = [t.as_json() for t in self.ladder.trials]
        return out


# --- shared measuring ---------------------------------------------------------------------


def response_times(workdir: Path) -> tuple[list[float], list[float]]:
    """SIPp's -trace_rtt files: (sorted response times in ms, completion times in ms)."""
    times: list[float] = []
    stamps: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        for row in csv.reader(io.StringIO(path.read_text(errors="replace")), delimiter=";"):
            try:
                stamps.append(float(row[0]))
                times.append(float(row[1]))
            except (IndexError, ValueError):
                continue  # the header
    return sorted(times), sorted(stamps)


def trial_from(
    level: float,
    attempted: int,
    result: SippResult,
    workdir: Path,
    cpu_s: float | None,
    **extra: object,
) -> Trial:
    """A ladder trial from a SIPp run and its response-time trace.

    The achieved rate is taken between the first and the last completion, so SIPp's start-up
    and the last call's length do not count against a short run."""
    times, stamps = response_times(workdir)
    span_s = (stamps[-1] - stamps[0]) / 1000 if len(stamps) > 1 else 0.0
    # Too few completions make a span too short to measure a rate by.
    achieved = (len(stamps) - 1) / span_s if len(stamps) >= 10 and span_s > 0 else result.rate
    shutil.rmtree(workdir, ignore_errors=True)
    trial = Trial(
        level=level,
        attempted=attempted,
        successful=result.successful,
        failed=max(result.failed, attempted - result.successful),
        elapsed_s=result.elapsed,
        achieved=round(achieved, 1),
        cpu_pct=None if cpu_s is None else round(100 * cpu_s / result.elapsed, 1),
        p50_ms=round(percentile(times, 0.5), 3) if times else None,
        p99_ms=round(percentile(times, 0.99), 3) if times else None,
        extra={"sipp_returncode": result.returncode, **extra},
    )
    if trial.failed:
        trial.extra["sipp_errors"] = result.errors[-600:]  # why, for the JSON reader
    return trial


def process_figures(pid: int) -> dict[str, object]:
    if not pid:
        return {"peak_rss_kib": None, "pss_kib_end": None}
    return {"peak_rss_kib": tree_peak_rss_kib(pid), "pss_kib_end": tree_pss_kib(pid)}


def report_trial(opts: Options, label: str, trial: Trial) -> None:
    cpu = "" if trial.cpu_pct is None else f" cpu {trial.cpu_pct:.0f}%"
    p99 = "" if trial.p99_ms is None else f" p99 {trial.p99_ms:g} ms"
    opts.log(
        f"    {label} {trial.level:g}: {'clean' if trial.clean else 'FAILED'} "
        f"achieved {trial.achieved:g} failed {trial.failed}/{trial.attempted}{p99}{cpu}"
    )


def cdr_counts(config: Path) -> dict[str, int]:
    """CDRs our switch wrote, by disposition (`softswitch cdr export`)."""
    out = subprocess.run(
        [sys.executable, "-m", "softswitch.cli", "cdr", "export", "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    counts: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(out.stdout)):
        counts[row["disposition"]] = counts.get(row["disposition"], 0) + 1
    return counts


@contextmanager
def running(start: Callable[[], Running]) -> Iterator[Running]:
    system = start()
    try:
        yield system
    finally:
        system.stop()


# --- 1: registrations ---------------------------------------------------------------------


def registrations(system: str, opts: Options) -> Outcome:
    """Digest-authenticated REGISTERs of `users` distinct users, round robin over the runs."""
    users = numbered_users(opts.users)
    work = opts.work / f"w1-{system}"
    work.mkdir(parents=True, exist_ok=True)

    def start() -> Running:
        if opts.remote_target:
            return remote(
                opts.remote_target,
                scenario=AUTH_SCENARIO,
                service="",
                uas_port=None,
                work=work,
                transport=opts.transport,
                local_ip=opts.local_ip,
            )
        if system == "softswitch":
            return start_softswitch(work / "switch", users)
        return kamailio_registrar(work, users, opts.kamailio_cores)

    rows = user_rows((u.extension, DOMAIN, u.password) for u in users)
    # One phone address for all runs: a re-REGISTER updates a binding instead of adding one.
    local_port = free_port()
    state = {"offset": 0, "run": 0}

    def attempt(rate: float, target: str, pid: int) -> Trial:
        settle(pid)
        calls = max(1, int(rate * opts.duration))
        offset = state["offset"]
        state["offset"] = (offset + calls) % len(rows)
        state["run"] += 1
        injection = write_users(work / "users.csv", rows[offset:] + rows[:offset])
        workdir = work / f"run-{state['run']}"
        workdir.mkdir()
        cpu0 = tree_cpu_seconds(pid) if pid else 0.0
        sipp0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_sipp(
            "register.xml",
            target,
            calls=calls,
            rate=rate,
            transport=opts.transport,
            injection=injection,
            limit=max(200, int(rate)),
            timeout=calls / rate + 30,
            keys={"c1": "1", "c2": "2", "expires": "3600"},
            call_id=f"w1-{state['run']}-%u@%s",
            local_port=local_port,
            workdir=workdir,
            local_ip=opts.local_ip,
            extra=RTT_ARGS,
        )
        cpu = (tree_cpu_seconds(pid) - cpu0) if pid else None
        # SIPp shares the cores: its own CPU shows when it, not the registrar, is the limit.
        sipp1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        sipp_cpu = sipp1.ru_utime + sipp1.ru_stime - sipp0.ru_utime - sipp0.ru_stime
        trial = trial_from(
            rate, calls, result, workdir, cpu, uac_cpu_pct=round(100 * sipp_cpu / result.elapsed, 1)
        )
        report_trial(opts, "REGISTER/s", trial)
        return trial

    with running(start) as sut:
        ladder = climb(
            lambda rate: attempt(rate, sut.target, sut.pid), opts.ladder(20 if opts.quick else 250)
        )
        figures = {"users": opts.users, "transport": opts.transport, **process_figures(sut.pid)}
        return Outcome("1", system, notes=sut.notes, ladder=ladder, figures=figures)


# --- 2, 3, 4: calls -----------------------------------------------------------------------


def _call_system(system: str, workload: str, opts: Options, work: Path, uas_port: int) -> Running:
    full = workload == "3"
    scenario = AUTH_SCENARIO if full else NOAUTH_SCENARIO
    service = "200" if full else DID
    if opts.remote_target:
        return remote(
            opts.remote_target,
            scenario=scenario,
            service=service,
            uas_port=uas_port,
            work=work,
            transport=opts.transport,
            local_ip=opts.local_ip,
        )
    if system == "softswitch" and full:
        return start_softswitch(
            work / "switch",
            CALL_USERS,
            full_path_toml(),
            uas_port=uas_port,
            transport=opts.transport,
            anchor="always",
            notes=[
                "digest auth (407) on every INVITE, the tenant's routing rules (DIDs, "
                "block list, time frames, answering rules, sim-ring), media anchored "
                "(two RTP endpoints per call), CDR written per call"
            ],
        )
    if system == "softswitch":
        return start_softswitch(
            work / "switch",
            CALL_USERS,
            trunk_toml(),
            uas_port=uas_port,
            scenario=NOAUTH_SCENARIO,
            service=DID,
            transport=opts.transport,
            notes=[
                "calls arrive on an IP-authenticated trunk to a DID (no digest, the same "
                "SIPp scenario as the references); the switch has no option to turn off "
                "routing or CDR writing, so both still run"
            ],
        )
    if system == "kamailio":
        return kamailio_proxy(work, uas_port, opts.kamailio_cores)
    return sippy_b2bua(work, uas_port)


def calls(system: str, workload: str, opts: Options) -> Outcome:
    """Workload 2 or 3: the call set-up rate ladder (INVITE/180/200/ACK, BYE/200)."""
    work = opts.work / f"w{workload}-{system}"
    uas_port = free_port()
    with running(lambda: _call_system(system, workload, opts, work, uas_port)) as sut:
        callee = Callee(
            sut.target, uas_port, work / "uas", transport=opts.transport, local_ip=opts.local_ip
        )
        try:
            bench = Bench(
                sut,
                work / "runs",
                uas_port,
                0,
                opts.duration,
                transport=opts.transport,
                local_ip=opts.local_ip,
                sipp_args=TOLERANT if workload == "2" else (),
            )

            def attempt(rate: float) -> Trial:
                settle(sut.pid)
                workdir = work / f"run-{bench.counter + 1}"
                workdir.mkdir(parents=True)
                run, result = bench.run(rate, workdir=workdir, sipp_args=RTT_ARGS)
                trial = trial_from(
                    rate, run.calls, result, workdir, run.cpu_s if sut.pid else None, **run.extra
                )
                report_trial(opts, "CPS", trial)
                return trial

            ladder = climb(attempt, opts.ladder(10 if opts.quick else 50))
            figures = {"transport": opts.transport, **process_figures(sut.pid)}
        finally:
            callee.stop()
    notes = [*sut.notes, TOLERANCE_NOTE] if workload == "2" else sut.notes
    outcome = Outcome(workload, system, notes=notes, ladder=ladder, figures=figures)
    if sut.config is not None:
        outcome.figures["cdrs"] = cdr_counts(sut.config)
    return outcome


def held_calls(system: str, opts: Options) -> Outcome:
    """Workload 4: `concurrent` calls set up, held `hold` s, hung up; memory per call."""
    work = opts.work / f"w4-{system}"
    uas_port = free_port()
    with running(lambda: _call_system(system, "4", opts, work, uas_port)) as sut:
        callee = Callee(
            sut.target, uas_port, work / "uas", transport=opts.transport, local_ip=opts.local_ip
        )
        try:
            bench = Bench(
                sut,
                work / "runs",
                uas_port,
                0,
                2.0,
                transport=opts.transport,
                local_ip=opts.local_ip,
                sipp_args=TOLERANT,
            )
            rate = min(100.0, max(10.0, opts.concurrent / 10))
            opts.log(
                f"    holding {opts.concurrent} calls for {opts.hold:g} s (set up at {rate:g}/s)"
            )
            memory = measure_memory(bench, opts.concurrent, rate, hold_s=opts.hold)
            figures = {"transport": opts.transport, **memory, **process_figures(sut.pid)}
        finally:
            callee.stop()
    run = memory.get("memory_run")
    # Clean by failures alone: with calls held, the set-up rate says nothing.
    clean = (
        isinstance(run, dict)
        and isinstance(run.get("failed"), int)
        and run["failed"] <= MAX_FAILED_FRACTION * opts.concurrent
        and run.get("successful") == opts.concurrent - run["failed"]
    )
    opts.log(
        f"    {'clean' if clean else 'FAILED'}: {memory.get('bytes_per_call')} bytes/call, "
        f"{memory.get('held_cpu_pct')}% CPU while held"
    )
    notes = [
        *sut.notes,
        TOLERANCE_NOTE,
        "one level (--concurrent calls), not a ladder: "
        "each level holds its calls for --hold seconds",
    ]
    return Outcome(
        "4",
        system,
        notes=notes,
        figures=figures,
        status="ok" if clean else "failed",
        reason="" if clean else "calls failed while held",
    )


# --- 5: anchored media --------------------------------------------------------------------


def media(system: str, opts: Options) -> Outcome:
    """Workload 5: bridged PCMU calls through one media worker process (bench/media_bench)."""
    from bench.media_bench import run_step

    if opts.remote_target:
        return Outcome(
            "5",
            system,
            status="skipped",
            reason="the media load runs against a local media engine only",
        )

    def attempt(count: float) -> Trial:
        calls = int(count)
        step = run_step(
            calls,
            1 if opts.quick else 2,
            opts.duration,
            0.5 if opts.quick else 1.0,
            40000,
            True,
            0.0025,
            workers=1,
        )
        trial = Trial(
            level=calls,
            attempted=calls,
            successful=calls if step.passed else 0,
            failed=0 if step.passed else calls,
            elapsed_s=opts.duration,
            achieved=calls if step.passed else 0,
            cpu_pct=round(100 * step.engine_cpu, 1),
            p50_ms=round(step.median_delay_ms, 3),
            p99_ms=round(step.p99_added_ms, 3),
            passed=step.passed,
            extra={
                "packets_lost": step.loss,
                "late_ticks": step.late_ticks,
                "max_tick_ms": step.max_tick_ms,
            },
        )
        report_trial(opts, "media calls", trial)
        return trial

    ladder = climb(
        attempt,
        opts.ladder(5 if opts.quick else 50, max_level=10 if opts.quick else 1600, integral=True),
    )
    return Outcome(
        "5",
        system,
        ladder=ladder,
        notes=[
            "the media engine that anchored calls use, driven by our RTP generators (SIPp sends "
            "no RTP); level = concurrent bridged calls; a run passes with no "
            "packet lost, no late tick and p99 added jitter < 5 ms; p50 = median transit delay, "
            "p99 = p99 added jitter; CPU = the engine process"
        ],
    )


# --- 6: conference participants ---------------------------------------------------------


def conferences(system: str, opts: Options) -> Outcome:
    """Workload 6: participants in rooms of 3-50 mixed by one engine (bench/conference_bench)."""
    from bench.conference_bench import run_step as conference_step

    if opts.remote_target:
        return Outcome(
            "6",
            system,
            status="skipped",
            reason="the conference load runs against a local media engine only",
        )

    def attempt(count: float) -> Trial:
        participants = int(count)
        step = conference_step(
            participants,
            1 if opts.quick else 2,
            opts.duration,
            0.5 if opts.quick else 1.0,
            44000,
            0.0025,
        )
        trial = Trial(
            level=participants,
            attempted=participants,
            successful=participants if step.passed else 0,
            failed=0 if step.passed else participants,
            elapsed_s=opts.duration,
            achieved=participants if step.passed else 0,
            cpu_pct=round(100 * step.engine_cpu, 1),
            passed=step.passed,
            extra={
                "rooms": step.rooms,
                "late_ticks": step.late_ticks,
                "loss_in": step.loss_in,
                "loss_out": step.loss_out,
                "max_tick_ms": step.max_tick_ms,
            },
        )
        report_trial(opts, "participants", trial)
        return trial

    ladder = climb(
        attempt,
        opts.ladder(6 if opts.quick else 100, max_level=12 if opts.quick else 2000, integral=True),
    )
    return Outcome(
        "6",
        system,
        ladder=ladder,
        notes=[
            "the media engine's conference mixing with real RTP from our generators; level = "
            "participants across rooms of 3-50; a run passes with no late tick and no frame "
            "lost in or out; CPU = the engine process"
        ],
    )


# --- the table of workloads ---------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    unit: str  # of the ladder's level
    systems: tuple[str, ...]  # ours first, then the references
    run: Callable[[str, Options], Outcome] | None  # None: not available yet


WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "1", "registrations, MD5 digest", "REGISTER/s", ("softswitch", "kamailio"), registrations
    ),
    Workload(
        "2",
        "call set-up, signalling only",
        "CPS",
        ("softswitch", "kamailio", "sippy"),
        lambda s, o: calls(s, "2", o),
    ),
    Workload(
        "3", "call set-up, full call path", "CPS", ("softswitch",), lambda s, o: calls(s, "3", o)
    ),
    Workload("4", "calls held open", "calls", ("softswitch", "kamailio", "sippy"), held_calls),
    Workload("5", "anchored media (media engine)", "calls", ("softswitch",), media),
    Workload("6", "conference participants", "participants", ("softswitch",), conferences),
)

__all__ = ["WORKLOADS", "Options", "Outcome", "Workload"]
