"""Call-rate benchmark: SIPp UAC -> system under test -> SIPp UAS, signalling only.

Short calls (INVITE, 180, 200, ACK, hold -d ms, BYE). Against our switch the caller also
answers the 407 digest challenge every INVITE gets; the Kamailio proxy (`--system kamailio`,
bench/kamailio/proxy.cfg: tm + sl + rr + maxfwd, relaying everything to the UAS) and the Sippy
B2BUA (`--system sippy`, PyPI `sippy`, its b2bua_simple) do no authentication, so their
scenario has one INVITE transaction fewer.

The ladder raises the offered rate by `--factor` until a run is not clean (more than 0.1 % of
the calls failed, or the achieved rate fell below 95 % of the offered one), bisects between the
last clean and the first unclean rate `--refine` times, then confirms the best rate with one
more run. Every run prints one JSON line. The achieved rate is the
successful calls over the run's wall time less the mean call length (the tail of the last call).

The added delay is measured at half the best rate with -trace_msg on both SIPp (same
machine, same clock): for each call, the first send of the caller's last INVITE (the
authorised one against the switch) to the first receipt of the INVITE at the UAS. The SDP
o= session id carries the SIPp call number, so the two are paired even through a B2BUA that
changes Call-ID and tags.

    .venv/bin/python -m bench.call_bench
    .venv/bin/python -m bench.call_bench --system softswitch,kamailio,sippy
    .venv/bin/python -m bench.call_bench --memory-calls 2000

Over 600 lines because it is one bench with its own command line: the SIPp runs and their
traces, the delay and memory measurements, and the three systems it drives side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from peers.sipp import SCENARIOS, SippResult, run_sipp, sipp_binary, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port

HERE = Path(__file__).resolve().parent
BENCH_SCENARIOS = HERE / "scenarios"
CALLER, CALLEE, DOMAIN = "100", "200", "pbx.test"
MAX_FAILED_FRACTION = 0.001
MIN_ACHIEVED_FRACTION = 0.95


# --- processes: CPU and memory from /proc ------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Kamailio forks its workers; our switch is one process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree: list[int] = []
    todo = [pid]
    while todo and len(tree) < 10_000:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _tree_kib(pid: int, file: str, key: str) -> int:
    """Sum of one `key: N kB` line of /proc/PID/`file` over a process and its descendants."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/{file}") as handle:
                for line in handle:
                    if line.startswith(key):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def tree_peak_rss_kib(pid: int) -> int:
    """Sum of the peak resident set sizes (VmHWM) of a process and its live descendants.

    Exact for one process (our switch, Sippy); for a forking server (Kamailio) pages shared
    between its processes are counted once per process, so this is an upper bound."""
    return _tree_kib(pid, "status", "VmHWM:")


def tree_pss_kib(pid: int) -> int:
    """Proportional set size of the process tree: shared pages (Kamailio's shm) count once."""
    return _tree_kib(pid, "smaps_rollup", "Pss:")


# --- systems under test -------------------------------------------------------------------


class SystemUnderTest(Protocol):
    """What the bench needs from a system: where to send calls and how to account for it.

    `service` is what the caller dials; `pid` 0 means a process the bench cannot see (a
    remote switch): no CPU or memory figures."""

    name: str
    scenario: Path
    target: str
    service: str

    @property
    def pid(self) -> int: ...

    def stop(self) -> object: ...


def _register_callee(switch_port: int, uas_port: int, password: str, work: Path) -> None:
    injection = write_users(work / "callee.csv", user_rows([(CALLEE, DOMAIN, password)]))
    result = run_sipp(
        "register.xml",
        f"127.0.0.1:{switch_port}",
        calls=1,
        rate=1,
        injection=injection,
        local_port=uas_port,
        timeout=15,
        keys={"c1": "1", "c2": "2", "expires": "3600"},
    )
    if not result.ok:
        raise RuntimeError(f"the UAS could not register as {CALLEE}: {result.errors}")


class OurSwitch:
    """The softswitch as its own process; the UAS registers as the callee."""

    name = "softswitch"
    scenario = BENCH_SCENARIOS / "call_uac_auth.xml"
    service = CALLEE

    def __init__(self, work: Path, uas_port: int, log_level: str = "WARNING") -> None:
        users = [PhoneUser(CALLER, "pw" + CALLER), PhoneUser(CALLEE, "pw" + CALLEE)]
        # Signalling only: SDP passes through, as through the proxy and Sippy.
        config = SwitchConfigFile(
            work / "switch",
            users=users,
            domain=DOMAIN,
            port=free_port(),
            log_level=log_level,
            media_anchor="never",
        )
        self.process = SwitchProcess(config.write(), port=config.port).start()
        self.target = f"127.0.0.1:{config.port}"
        try:
            _register_callee(config.port, uas_port, "pw" + CALLEE, work)
        except Exception:
            self.process.stop()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.stop()


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class Kamailio:
    """Kamailio (Debian `kamailio`): by default the stateful proxy relaying every request to
    the UAS (bench/kamailio/proxy.cfg); `config_text` runs another script (the registrar)."""

    name = "kamailio"
    scenario = BENCH_SCENARIOS / "call_uac_noauth.xml"
    service = CALLEE

    def __init__(
        self,
        work: Path,
        uas_port: int,
        children: int = 1,
        ready_timeout: float = 15.0,
        config_text: str | None = None,
        cores: Sequence[int] | None = None,
    ) -> None:
        binary = shutil.which("kamailio") or "/usr/sbin/kamailio"
        if not Path(binary).exists():
            raise RuntimeError("kamailio not found: apt-get install -y kamailio")
        # Given cores, one worker per core, pinned there: how an operator sizes it.
        if cores:
            children = len(cores)
        self.children = children
        self.cores = tuple(cores) if cores else None
        work.mkdir(parents=True, exist_ok=True)
        if config_text is None:
            template = (HERE / "kamailio" / "proxy.cfg").read_text()
            config_text = template.replace("__UAS_URI__", f"sip:127.0.0.1:{uas_port}")
        config = work / "kamailio.cfg"
        config.write_text(config_text)
        port = free_port()
        self.target = f"127.0.0.1:{port}"
        self.log = work / "kamailio.log"
        with self.log.open("ab") as out:
            # -DD: stay in the foreground (its workers are our grandchildren, found by PPID).
            self.proc = subprocess.Popen(
                [
                    binary,
                    "-f",
                    str(config),
                    "-DD",
                    "-E",
                    "-l",
                    f"udp:127.0.0.1:{port}",
                    "-n",
                    str(children),
                    # TLSF, the allocator an operator tuning for speed picks, for shared
                    # and private memory.
                    "-x",
                    "tlsf",
                    "-X",
                    "tlsf",
                    "-m",
                    "256",
                    "-M",
                    "16",
                    "-Y",
                    str(work),
                    "-P",
                    str(work / "kamailio.pid"),
                    "-w",
                    str(work),
                ],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=self._pin if self.cores else None,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"kamailio exited with {self.proc.returncode}: "
                    f"{self.log.read_text(errors='replace')[-3000:]}"
                )
            if _udp_port_taken(port) and len(process_tree(self.proc.pid)) > 1:
                time.sleep(0.3)  # the workers fork just after the socket is bound
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("kamailio did not bind its port in time")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pin(self) -> None:
        """In the child before exec: the main process and the workers it forks stay on
        ``cores``."""
        assert self.cores is not None
        os.sched_setaffinity(0, self.cores)

    def stop(self) -> None:
        # By PID; kamailio's main process takes its workers down.
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL if it has not exited within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Sippy:
    """The Sippy B2BUA (PyPI `sippy`, its `b2bua_simple`): two user agents per call, every
    INVITE sent on to the UAS. No authentication, no media relay."""

    name = "sippy"
    scenario = BENCH_SCENARIOS / "call_uac_noauth.xml"
    service = CALLEE

    def __init__(self, work: Path, uas_port: int, ready_timeout: float = 15.0) -> None:
        binary = Path(sys.executable).parent / "b2bua_simple"
        if not binary.exists():
            raise RuntimeError("sippy not installed: .venv/bin/pip install sippy")
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.target = f"127.0.0.1:{port}"
        self.log = work / "sippy.log"
        env = {**os.environ, "SIPLOG_BEND": "stderr", "SIPLOG_LVL": "ERR"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    str(binary),
                    "-f",
                    "-l",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-n",
                    f"127.0.0.1:{uas_port}",
                ],
                cwd=work,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sippy exited with {self.proc.returncode}: "
                    f"{self.log.read_text(errors='replace')[-3000:]}"
                )
            if _udp_port_taken(port):
                time.sleep(0.3)
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("sippy did not bind its port in time")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc)


# --- the callee ---------------------------------------------------------------------------


class Callee:
    """A SIPp UAS (tests/sipp/call_uas.xml) answering every call on `port`, stopped by PID."""

    def __init__(
        self,
        target: str,
        port: int,
        work: Path,
        *,
        trace: bool = False,
        transport: str = "udp",
        local_ip: str = "127.0.0.1",
    ) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        args = [
            sipp_binary(),
            target,
            "-sf",
            str(SCENARIOS / "call_uas.xml"),
            "-t",
            {"udp": "u1", "tcp": "t1"}[transport],
            "-i",
            local_ip,
            "-p",
            str(port),
            "-m",
            "100000000",
            "-nostdin",
            "-recv_timeout",
            "10000",
            "-max_recv_loops",
            "10000",
            "-max_sched_loops",
            "10000",
            "-d",
            "0",
        ]
        if trace:
            args.append("-trace_msg")
        self.proc = subprocess.Popen(
            args,
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while transport == "udp" and not _udp_port_taken(port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        stop_process(self.proc)


# --- runs ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One UAC run at an offered rate."""

    offered: float
    calls: int
    successful: int
    failed: int
    elapsed_s: float
    achieved: float
    cpu_s: float
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return (
            self.failed <= MAX_FAILED_FRACTION * self.calls
            and self.successful >= (1 - MAX_FAILED_FRACTION) * self.calls
            and self.achieved >= MIN_ACHIEVED_FRACTION * self.offered
        )

    def as_json(self, system: str) -> dict[str, object]:
        return {
            "system": system,
            "offered": round(self.offered, 1),
            "calls": self.calls,
            "achieved": round(self.achieved, 1),
            "successful": self.successful,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 2),
            "cpu_us_per_call": round(1e6 * self.cpu_s / max(1, self.successful)),
            "cpu_pct": round(100 * self.cpu_s / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "clean": self.clean,
            **self.extra,
        }


class Bench:
    """Drives calls through one system under test; each run gets a fresh caller SIPp."""

    def __init__(
        self,
        system: SystemUnderTest,
        work: Path,
        uas_port: int,
        hold_ms: int,
        seconds: float,
        *,
        transport: str = "udp",
        local_ip: str = "127.0.0.1",
        sipp_args: Sequence[str] = (),
    ) -> None:
        self.system = system
        self.transport = transport
        self.local_ip = local_ip
        self.sipp_args = list(sipp_args)  # for every run of the caller
        self.work = work
        self.uas_port = uas_port
        self.hold_ms = hold_ms
        self.seconds = seconds
        work.mkdir(parents=True, exist_ok=True)
        self.injection = write_users(
            work / "caller.csv", user_rows([(CALLER, DOMAIN, "pw" + CALLER)])
        )
        self.counter = 0
        self.callee_pid = 0  # the UAS SIPp, for its CPU figure

    def run(
        self,
        rate: float,
        *,
        seconds: float | None = None,
        trace: bool = False,
        workdir: Path | None = None,
        hold_ms: int | None = None,
        calls: int | None = None,
        sipp_args: Sequence[str] = (),
    ) -> tuple[Run, SippResult]:
        self.counter += 1
        wanted = calls if calls is not None else max(1, int(rate * (seconds or self.seconds)))
        hold = self.hold_ms if hold_ms is None else hold_ms
        extra = ["-s", self.system.service, "-d", str(hold), *self.sipp_args, *sipp_args]
        if trace:
            extra.append("-trace_msg")
        budget = wanted / rate + hold / 1000 + 20
        pid = self.system.pid
        cpu0 = tree_cpu_seconds(pid) if pid else 0.0
        uas0 = tree_cpu_seconds(self.callee_pid) if self.callee_pid else 0.0
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = run_sipp(
            self.system.scenario,
            self.system.target,
            calls=wanted,
            rate=rate,
            injection=self.injection,
            limit=max(1000, int(rate * (2 + hold / 1000))),
            call_id=f"r{self.counter}-%u@%s",
            extra=extra,
            timeout=budget,
            workdir=workdir,
            transport=self.transport,
            local_ip=self.local_ip,
        )
        cpu = (tree_cpu_seconds(pid) - cpu0) if pid else 0.0
        # The load generators share the machine: their CPU shows when they, not the system
        # under test, are the limit.
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        uac_cpu = children1.ru_utime + children1.ru_stime - children0.ru_utime - children0.ru_stime
        uas_cpu = (tree_cpu_seconds(self.callee_pid) - uas0) if self.callee_pid else 0.0
        # The run's wall time ends with the last call's length: without it the achieved rate
        # of a short run would depend on how long one call takes rather than on throughput.
        length = sipp_duration_s(result.stats.get("CallLength(C)", ""))
        span = max(result.elapsed - length, 0.5 * result.elapsed)
        run = Run(
            offered=rate,
            calls=wanted,
            successful=result.successful,
            failed=result.failed + max(0, wanted - result.successful - result.failed),
            elapsed_s=result.elapsed,
            achieved=result.successful / span if span else 0.0,
            cpu_s=cpu,
            extra={
                "mean_call_ms": round(1000 * length, 1),
                "uac_cpu_pct": round(100 * uac_cpu / result.elapsed, 1),
                "uas_cpu_pct": round(100 * uas_cpu / result.elapsed, 1),
            },
        )
        return run, result


def sipp_duration_s(text: str) -> float:
    """A SIPp statistics duration `HH:MM:SS:micro` in seconds (0 when unreadable)."""
    parts = text.strip().split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return 0.0
    hours, minutes, seconds, micro = (int(p) for p in parts)
    return 3600 * hours + 60 * minutes + seconds + micro / 1e6


def settle(pid: int, idle_pct: float = 5.0, limit_s: float = 15.0) -> None:
    """Wait (bounded) until the system is idle: an overloaded run leaves transactions and
    retransmissions behind that would otherwise be billed to the next run."""
    if not pid:
        time.sleep(1)  # a remote system: no figure to watch, give it a moment
        return
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = tree_cpu_seconds(pid)
        time.sleep(0.5)
        if 100 * (tree_cpu_seconds(pid) - before) / 0.5 < idle_pct:
            return


def ladder(
    bench: Bench,
    *,
    start: float,
    factor: float,
    max_rate: float,
    refine: int,
    max_runs: int,
    budget_s: float,
) -> tuple[float, list[Run]]:
    """Step up until unclean, bisect back, confirm; the best confirmed clean achieved rate."""
    runs: list[Run] = []
    started = time.monotonic()

    def attempt(rate: float) -> Run:
        settle(bench.system.pid)
        run, _ = bench.run(rate)
        runs.append(run)
        print(json.dumps(run.as_json(bench.system.name)), flush=True)
        return run

    def room() -> bool:
        return len(runs) < max_runs and time.monotonic() - started < budget_s

    best_offered, best_achieved, failed_at = 0.0, 0.0, None
    rate = start
    while rate <= max_rate and room():
        run = attempt(rate)
        if not run.clean:
            failed_at = rate
            break
        best_offered, best_achieved = rate, run.achieved
        rate *= factor
    low = best_offered
    for _ in range(refine):
        if failed_at is None or not room():
            break
        middle = (low + failed_at) / 2 if low else failed_at / 2
        if failed_at - middle < 0.02 * failed_at:
            break
        run = attempt(middle)
        if run.clean:
            low, best_offered, best_achieved = middle, middle, run.achieved
        else:
            failed_at = middle
    # Confirm: the same offered rate once more; keep the lower of the two achieved rates.
    if best_offered and room():
        run = attempt(best_offered)
        if run.clean:
            best_achieved = min(best_achieved, run.achieved)
        else:
            best_offered = best_offered / factor
            best_achieved = 0.0
            if room():
                run = attempt(best_offered)
                best_achieved = run.achieved if run.clean else 0.0
    return best_achieved, runs


# --- added delay from SIPp message traces -------------------------------------------------

_BLOCK = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.M)
_SESSION = re.compile(r"^o=bench (\d+) ", re.M)
_CSEQ = re.compile(r"^CSeq:\s*(\d+)\s+INVITE", re.M | re.I)


def invite_times(trace: str, direction: str) -> dict[int, tuple[int, dt.datetime]]:
    """Per call number: (CSeq, time) of the first `sent`/`received` INVITE of highest CSeq."""
    found: dict[int, tuple[int, dt.datetime]] = {}
    parts = _BLOCK.split(trace)
    # split gives [preamble, stamp, body, stamp, body, ...]
    for stamp, body in zip(parts[1::2], parts[2::2], strict=False):
        header, _, message = body.lstrip("\n").partition("\n")
        if direction not in header or not message.lstrip().startswith("INVITE "):
            continue
        session, cseq = _SESSION.search(message), _CSEQ.search(message)
        if session is None or cseq is None:
            continue
        when = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f")
        number, seq = int(session.group(1)), int(cseq.group(1))
        known = found.get(number)
        if known is None or seq > known[0]:
            found[number] = (seq, when)
    return found


def added_delays_ms(uac_trace: str, uas_trace: str) -> list[float]:
    """INVITE-out at the UAS minus INVITE-in from the UAC, per call found in both traces."""
    sent = invite_times(uac_trace, "sent")
    received = invite_times(uas_trace, "received")
    millisecond = dt.timedelta(milliseconds=1)
    return sorted(
        (received[n][1] - sent[n][1]) / millisecond for n in sent.keys() & received.keys()
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted `values`."""
    if not values:
        return float("nan")
    rank = max(0, min(len(values) - 1, math.ceil(fraction * len(values)) - 1))
    return values[rank]


def _read_traces(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.glob("*_messages.log"))


def measure_delay(bench: Bench, rate: float, seconds: float) -> dict[str, object]:
    """A traced run at `rate`: INVITE relay delay percentiles in milliseconds."""
    uac_dir, uas_dir = bench.work / "trace-uac", bench.work / "trace-uas"
    uac_dir.mkdir(parents=True, exist_ok=True)
    # The ladder's overloaded runs leave transactions retransmitting for up to 32 s (Timers
    # B, F, H): measured meanwhile, the delay would be theirs, not this rate's.
    settle(bench.system.pid, idle_pct=2.0, limit_s=40.0)
    callee = Callee(bench.system.target, bench.uas_port, uas_dir, trace=True)
    bench.callee_pid = callee.proc.pid
    try:
        run, _ = bench.run(rate, seconds=seconds, trace=True, workdir=uac_dir)
    finally:
        callee.stop()
    delays = added_delays_ms(_read_traces(uac_dir), _read_traces(uas_dir))
    figures: dict[str, object] = {
        "system": bench.system.name,
        "delay_at_rate": round(rate, 1),
        "delay_run": run.as_json(bench.system.name),
        "samples": len(delays),
    }
    if delays:
        figures.update(
            {
                "p50_ms": round(percentile(delays, 0.50), 3),
                "p90_ms": round(percentile(delays, 0.90), 3),
                "p99_ms": round(percentile(delays, 0.99), 3),
                "max_ms": round(delays[-1], 3),
                "mean_ms": round(statistics.fmean(delays), 3),
            }
        )
    return figures


# --- memory per established call ----------------------------------------------------------


def measure_memory(bench: Bench, calls: int, rate: float, hold_s: float = 6.0) -> dict[str, object]:
    """Hold `calls` calls up at once for `hold_s` after the last is set up;
    (PSS with them up - PSS before) / calls, and the CPU the held calls cost."""
    pid = bench.system.pid
    ramp = calls / rate
    hold_ms = int(1000 * (ramp + hold_s))
    # Warm the process first so one-off allocations (imports, caches) are not billed per call.
    bench.run(rate, seconds=2)
    time.sleep(1)
    before = tree_pss_kib(pid) if pid else 0
    holder: dict[str, Run] = {}

    def drive() -> None:
        holder["run"], _ = bench.run(rate, calls=calls, hold_ms=hold_ms)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    settled = min(3.0, hold_s / 2)
    time.sleep(ramp + settled)  # every call set up, none hung up yet
    during = tree_pss_kib(pid) if pid else 0
    # CPU while the calls are only held (no set-up, no tear-down): what keeping them costs.
    held_for = max(0.0, hold_s - settled - 1)
    cpu0 = tree_cpu_seconds(pid) if pid else 0.0
    time.sleep(held_for)
    held_cpu = (tree_cpu_seconds(pid) - cpu0) if pid else 0.0
    thread.join(ramp + hold_ms / 1000 + 60)
    run = holder.get("run")
    return {
        "system": bench.system.name,
        "concurrent_calls": calls,
        "setup_rate": rate,
        "hold_s": hold_s,
        "pss_before_kib": before,
        "pss_with_calls_kib": during,
        "bytes_per_call": round(1024 * (during - before) / calls) if pid else None,
        "held_cpu_pct": round(100 * held_cpu / held_for, 1) if pid and held_for else None,
        "memory_run": run.as_json(bench.system.name) if run else None,
    }


# --- main ---------------------------------------------------------------------------------


def start_system(name: str, work: Path, uas_port: int, children: int) -> SystemUnderTest:
    if name == "softswitch":
        return OurSwitch(work / "softswitch", uas_port)
    if name == "kamailio":
        return Kamailio(work / "kamailio", uas_port, children=children)
    if name == "sippy":
        return Sippy(work / "sippy", uas_port)
    raise SystemExit(f"unknown system {name!r}")


def bench_system(name: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    uas_port = free_port()
    system = start_system(name, work, uas_port, args.kamailio_children)
    callee = None
    try:
        callee = Callee(system.target, uas_port, work / f"uas-{name}")
        bench = Bench(system, work / f"runs-{name}", uas_port, args.hold_ms, args.seconds)
        bench.callee_pid = callee.proc.pid
        figures: dict[str, object] = {"system": name}
        if args.memory_only:
            best, runs = args.start_rate, list[Run]()
        else:
            best, runs = ladder(
                bench,
                start=args.start_rate,
                factor=args.factor,
                max_rate=args.max_rate,
                refine=args.refine,
                max_runs=args.max_runs,
                budget_s=args.budget,
            )
            figures["best_clean_cps"] = round(best, 1)
            figures["runs"] = [r.as_json(name) for r in runs]
        if best and not args.no_delay and not args.memory_only:
            callee.stop()
            delay = measure_delay(bench, args.delay_rate or best / 2, args.delay_seconds)
            print(json.dumps(delay), flush=True)
            figures["delay"] = delay
            callee = Callee(system.target, uas_port, work / f"uas-{name}")
            bench.callee_pid = callee.proc.pid
        if args.memory_calls:
            memory = measure_memory(
                bench, args.memory_calls, args.memory_rate or max(50.0, best / 2)
            )
            print(json.dumps(memory), flush=True)
            figures["memory"] = memory
        figures["pss_kib_end"] = tree_pss_kib(system.pid)
        return figures
    finally:
        if callee is not None:
            callee.stop()
        system.stop()


def _systems(values: Iterable[str]) -> list[str]:
    names: list[str] = []
    for value in values:
        names += [v for v in value.split(",") if v]
    return names or ["softswitch"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--system",
        action="append",
        default=[],
        help="softswitch (default), kamailio, sippy; repeat or comma-separate",
    )
    parser.add_argument("--start-rate", type=float, default=100)
    parser.add_argument("--factor", type=float, default=1.5)
    parser.add_argument("--max-rate", type=float, default=5000)
    parser.add_argument("--refine", type=int, default=2, help="bisection steps after a failure")
    parser.add_argument("--max-runs", type=int, default=12)
    parser.add_argument("--budget", type=float, default=240, help="seconds for the ladder")
    parser.add_argument("--seconds", type=float, default=8, help="length of one run")
    parser.add_argument("--hold-ms", type=int, default=0, help="talk time of a short call")
    parser.add_argument("--delay-seconds", type=float, default=6)
    parser.add_argument(
        "--delay-rate",
        type=float,
        default=0.0,
        help="measure the added delay at this rate (default: half the best)",
    )
    parser.add_argument("--no-delay", action="store_true")
    parser.add_argument(
        "--memory-calls",
        type=int,
        default=0,
        help="also measure bytes per call with this many calls up at once",
    )
    parser.add_argument("--memory-rate", type=float, default=0.0)
    parser.add_argument("--memory-only", action="store_true")
    parser.add_argument("--kamailio-children", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write all figures to this file")
    args = parser.parse_args()
    if not (1 < args.factor <= 4 and 0 < args.start_rate <= args.max_rate):
        parser.error("need 1 < --factor <= 4 and 0 < --start-rate <= --max-rate")

    work = Path(tempfile.mkdtemp(prefix="call-bench-"))
    results = [bench_system(name, args, work) for name in _systems(args.system)]
    for figures in results:
        delay = figures.get("delay") or {}
        memory = figures.get("memory") or {}
        assert isinstance(delay, dict) and isinstance(memory, dict)
        print(
            f"{figures['system']}: highest clean rate {figures.get('best_clean_cps')} CPS; "
            f"added INVITE delay p99 {delay.get('p99_ms')} ms at {delay.get('delay_at_rate')}"
            f" CPS; bytes/call {memory.get('bytes_per_call')}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if os.environ.get("SOFTSWITCH_KEEP_BENCH") is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
