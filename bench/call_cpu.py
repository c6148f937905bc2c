"""CPU time per call at a fixed rate, split by thread and into user and system time:
workload 2's path (a carrier trunk to a DID, signalling only), the switch run plainly.

`bench.call_cost` counts instructions at 5 calls/s, which do not vary with the machine; this
measures what a call costs when calls come fast, which instruction counts can miss (cache
misses, wake-ups, lock hand-offs between threads). Compare two builds by alternating runs of
each in one sitting, on a quiet machine:

    .venv/bin/python -m bench.call_cpu --rate 400 --seconds 8 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.call_bench import Callee, settle
from bench.call_cost import _start_switch
from bench.systems import (
    CALL_USERS,
    CALLER,
    DID,
    DOMAIN,
    NOAUTH_SCENARIO,
    register_callee,
    trunk_toml,
)
from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import SwitchConfigFile, free_port


def thread_cpu(pid: int) -> dict[tuple[int, str], float]:
    """CPU seconds of each thread of `pid`: {(thread id, "user" | "system"): seconds}."""
    tick = os.sysconf("SC_CLK_TCK")
    times: dict[tuple[int, str], float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a thread that ended meanwhile
        times[(int(tid), "user")] = int(fields[11]) / tick
        times[(int(tid), "system")] = int(fields[12]) / tick
    return times


def per_call_us(
    pid: int, before: dict[tuple[int, str], float], after: dict[tuple[int, str], float], calls: int
) -> dict[str, int]:
    """Microseconds per call: the main thread's and the other threads' user and system time."""
    split: dict[str, float] = {}
    for (tid, kind), seconds in after.items():
        spent = seconds - before.get((tid, kind), 0.0)
        key = f"{'main' if tid == pid else 'threads'}_{kind}"
        split[key] = split.get(key, 0.0) + spent
    figures = {key: round(1e6 * value / max(1, calls)) for key, value in sorted(split.items())}
    figures["total"] = sum(figures.values())
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=400.0, help="calls per second")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one run")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs (after one warm-up)")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="callcpu-"))
    config = SwitchConfigFile(
        work / "switch",
        users=list(CALL_USERS),
        domain=DOMAIN,
        port=free_port(),
        log_level="WARNING",
        media_anchor="never",
    )
    path = config.write()
    path.write_text(path.read_text() + "\n".join(trunk_toml()) + "\n")
    proc = _start_switch(path, path.parent, config.port, [sys.executable, "-m", "softswitch.cli"])
    target = f"127.0.0.1:{config.port}"
    uas_port = free_port()
    callee: Callee | None = None
    try:
        register_callee(target, uas_port, work)
        callee = Callee(target, uas_port, work / "uas")
        injection = write_users(work / "caller.csv", user_rows([(CALLER, DOMAIN, "pw" + CALLER)]))
        count = int(args.rate * args.seconds)
        for run in range(args.repeats + 1):
            settle(proc.pid)
            before = thread_cpu(proc.pid)
            result = run_sipp(
                NOAUTH_SCENARIO,
                target,
                calls=count,
                rate=args.rate,
                injection=injection,
                call_id=f"run{run}-%u@%s",
                extra=["-s", DID, "-d", "0"],
                timeout=args.seconds + 120,
            )
            time.sleep(2)  # the last CDRs written (the writer batches a second of them)
            if run == 0:
                continue  # warm-up: imports, caches, the first CDR batch
            figures = per_call_us(proc.pid, before, thread_cpu(proc.pid), result.successful)
            report = {
                "rate": args.rate,
                "calls": result.successful,
                "failed": result.failed,
                "us_per_call": figures,
                "load": os.getloadavg()[0],
            }
            print(json.dumps(report), flush=True)
    finally:
        if callee is not None:
            callee.stop()
        proc.terminate()
        proc.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
