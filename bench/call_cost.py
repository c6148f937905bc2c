"""CPU cost of one call, counted rather than timed: the switch under a profiler, a fixed
number of SIPp calls (bench/scenarios/call_uac_auth.xml: INVITE, 407, INVITE, 180, 200,
ACK, BYE) at a low fixed rate, signalling only.

`--tool callgrind` (valgrind) counts the instructions the switch process executes for the
measured calls after a warm-up: the figure to compare two builds by on a machine whose
speed varies (wall-clock and CPU time do not). `--tool py-spy` records where the time
goes instead (a raw collapsed-stack file, best on the pure-Python build), and
`--tool cprofile` counts every Python function call of the measured calls (cProfile, switched
on and off by signals; a pstats file): on the pure-Python build, the call counts per call
tell two versions apart exactly.

    .venv/bin/python -m bench.call_cost --calls 200
    .venv/bin/python -m bench.call_cost --tool py-spy --calls 2000 --out calls.txt
    SOFTSWITCH_PURE_PYTHON=1 .venv/bin/python -m bench.call_cost --tool cprofile --out calls.prof
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.call_bench import BENCH_SCENARIOS, CALLEE, CALLER, DOMAIN, Callee, _register_callee
from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, free_port, options_ping

# The switch with cProfile armed: SIGUSR1 starts profiling, SIGUSR2 stops and writes argv[1].
_CPROFILE_BOOT = """
import cProfile, runpy, signal, sys
profile, out = cProfile.Profile(), sys.argv[1]
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
signal.signal(signal.SIGUSR2, lambda *_: (profile.disable(), profile.dump_stats(out)))
sys.argv = ["softswitch", *sys.argv[2:]]
runpy.run_module("softswitch.cli", run_name="__main__", alter_sys=True)
"""


def _start_switch(
    config: Path, cwd: Path, port: int, wrapper: list[str]
) -> subprocess.Popen[bytes]:
    command = [*wrapper, "run", "--config", str(config)]
    with (cwd / "switch.out").open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 300  # valgrind starts Python slowly
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"switch exited with {proc.returncode}")
        if options_ping(port) == 200:
            return proc
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("switch not ready")


def _calls(target: str, injection: Path, calls: int, rate: float, tag: str) -> int:
    result = run_sipp(
        BENCH_SCENARIOS / "call_uac_auth.xml",
        target,
        calls=calls,
        rate=rate,
        injection=injection,
        call_id=f"{tag}-%u@%s",
        # -nr: no retransmissions from the caller, so a slow profiled switch gets the same
        # messages per call as a fast one.
        extra=["-s", CALLEE, "-d", "0", "-nr"],
        timeout=calls / rate + 120,
    )
    if result.failed or result.successful != calls:
        raise RuntimeError(f"{tag}: {result.successful}/{calls} calls, {result.errors}")
    return result.successful


def _callgrind_total(output: Path) -> int:
    """The instruction count (Ir) of the callgrind dumps in `output`'s folder."""
    total = 0
    for dump in output.parent.glob(output.name + "*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
                break
    return total


# Seconds for the switch to finish what the last call left queued (the CDR writer batches
# one second of CDRs per transaction).
SETTLE = 3.0


def _control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def _dump(pid: int, dumps: Path, number: int) -> None:
    """Ask for callgrind dump ``number`` and wait until it is written out."""
    _control(pid, "-d")
    path = dumps.parent / f"{dumps.name}.{number}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if path.exists() and "\ntotals:" in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"callgrind dump {path} not written")


class IdleFirst:
    """Callgrind switched on for ``idle`` seconds without traffic (dumped: the idle rate),
    then left on for the measured traffic; :meth:`measured` dumps and switches it off."""

    def __init__(self, pid: int, dumps: Path, idle: float) -> None:
        self.pid = pid
        self.dumps = dumps
        _control(pid, "-i", "on")
        time.sleep(idle)
        _dump(pid, dumps, 1)
        self.started = time.monotonic()
        self.idle_total = _callgrind_total(dumps)
        self.idle_per_s = self.idle_total / idle

    def measured(self) -> tuple[int, float]:
        """The instructions since the idle dump and the seconds they took."""
        _dump(self.pid, self.dumps, 2)
        window = time.monotonic() - self.started
        _control(self.pid, "-i", "off")
        return _callgrind_total(self.dumps) - self.idle_total, window


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tool", choices=("callgrind", "py-spy", "cprofile"), default="callgrind")
    parser.add_argument("--calls", type=int, default=200, help="measured calls")
    parser.add_argument("--warmup", type=int, default=50, help="calls before measuring")
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second")
    parser.add_argument("--idle", type=float, default=20.0, help="callgrind: idle seconds")
    parser.add_argument("--out", type=Path, help="py-spy: where the profile goes")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="callcost-"))
    users = [PhoneUser(CALLER, "pw" + CALLER), PhoneUser(CALLEE, "pw" + CALLEE)]
    config = SwitchConfigFile(
        work / "switch",
        users=users,
        domain=DOMAIN,
        port=free_port(),
        log_level="WARNING",
        media_anchor="never",
    )
    path = config.write()
    # A profiled switch is many times slower: its overload guard would shed the calls.
    with path.open("a") as toml:
        toml.write("\n[overload]\nmax_queue_delay = 0\n")
    dumps = work / "callgrind.out"
    out = args.out or work / ("calls.prof" if args.tool == "cprofile" else "calls.txt")
    wrapper = [sys.executable, "-m", "softswitch.cli"]
    if args.tool == "callgrind":
        wrapper = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={dumps}",
            *wrapper,
        ]
    elif args.tool == "cprofile":
        wrapper = [sys.executable, "-c", _CPROFILE_BOOT, str(out.resolve())]
    proc = _start_switch(path, path.parent, config.port, wrapper)
    target = f"127.0.0.1:{config.port}"
    uas_port = free_port()
    spy: subprocess.Popen[bytes] | None = None
    callee: Callee | None = None
    try:
        _register_callee(config.port, uas_port, "pw" + CALLEE, work)
        callee = Callee(target, uas_port, work / "uas")
        injection = write_users(work / "caller.csv", user_rows([(CALLER, DOMAIN, "pw" + CALLER)]))
        _calls(target, injection, args.warmup, args.rate, "warm")
        meter: IdleFirst | None = None
        if args.tool == "callgrind":
            # The idle rate is measured first, in this run: after the calls it would be
            # charged for timer work the calls' busy loop had merely put off.
            time.sleep(SETTLE)  # the warm-up's last CDRs written
            meter = IdleFirst(proc.pid, dumps, args.idle)
        elif args.tool == "cprofile":
            os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(0.5)
        else:
            spy = subprocess.Popen(
                [
                    shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(proc.pid),
                    "-f",
                    "raw",
                    "-o",
                    str(out),
                    "-r",
                    "250",
                ]
            )
            time.sleep(1)
        started = time.monotonic()
        calls = _calls(target, injection, args.calls, args.rate, "cost")
        elapsed = time.monotonic() - started
        report: dict[str, object] = {
            "calls": calls,
            "rate": args.rate,
            "elapsed_s": round(elapsed, 1),
        }
        if meter is not None:
            # Until the last CDR is written (the writer batches a second of them).
            time.sleep(SETTLE)
            total, window = meter.measured()
            report.update(
                instructions=total,
                instructions_per_call=round(total / calls),
                idle_per_s=round(meter.idle_per_s),
                window_s=round(window, 1),
                net_per_call=round((total - meter.idle_per_s * window) / calls),
                dumps=str(work),
            )
        elif args.tool == "cprofile":
            os.kill(proc.pid, signal.SIGUSR2)
            time.sleep(2)
            report["profile"] = str(out)
        else:
            assert spy is not None
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            report["profile"] = str(out)
        print(json.dumps(report))
    finally:
        if callee is not None:
            callee.stop()
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
