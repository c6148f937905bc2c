"""CPU cost of one authenticated registration, counted rather than timed: the switch under
callgrind while SIPp registers distinct users with digest (tests/sipp/register.xml: REGISTER,
401, REGISTER, 200) at a low fixed rate. The figure to compare two builds by (workload 1's
companion, as `bench.call_cost` is workload 2's): instructions do not vary with the load of
the machine the way CPU time does.

    .venv/bin/python -m bench.register_cost --users 500
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.call_cost import SETTLE, IdleFirst, _start_switch
from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import SwitchConfigFile, free_port, numbered_users

DOMAIN = "pbx.test"


def _register(target: str, users: Path, count: int, rate: float, tag: str) -> int:
    result = run_sipp(
        "register.xml",
        target,
        calls=count,
        rate=rate,
        injection=users,
        keys={"c1": "1", "c2": "2", "expires": "3600"},
        call_id=f"{tag}-%u@%s",
        extra=["-nr"],  # no retransmissions: a slow profiled switch gets the same messages
        timeout=count / rate + 120,
    )
    if result.failed or result.successful != count:
        raise RuntimeError(f"{tag}: {result.successful}/{count} registrations, {result.errors}")
    return result.successful


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500, help="registrations measured")
    parser.add_argument("--rate", type=float, default=20.0, help="registrations per second")
    parser.add_argument("--idle", type=float, default=20.0, help="idle seconds measured")
    parser.add_argument(
        "--population", type=int, default=0, help="users provisioned (default: --users)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="measure first registrations (a new binding each), as workload 1's first pass",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="registercost-"))
    people = numbered_users(max(args.users, args.population), password="pw")
    users = write_users(
        work / "users.csv",
        user_rows((u.extension, DOMAIN, u.password) for u in people[: args.users]),
    )
    config = SwitchConfigFile(
        work / "switch", users=people, domain=DOMAIN, port=free_port(), log_level="WARNING"
    )
    path = config.write()
    with path.open("a") as toml:  # a profiled switch is slow: its overload guard would shed
        toml.write("\n[overload]\nmax_queue_delay = 0\n")
    dumps = work / "callgrind.out"
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={dumps}",
        sys.executable,
        "-m",
        "softswitch.cli",
    ]
    proc = _start_switch(path, path.parent, config.port, wrapper)
    target = f"127.0.0.1:{config.port}"
    try:
        # Every user registered once first: the measured round refreshes bindings, as phones
        # do all day, with the switch's caches and the database warm. With --fresh the
        # measured round adds each user's first binding instead.
        if not args.fresh:
            _register(target, users, args.users, args.rate, "warm")
        time.sleep(SETTLE)
        # What the switch does without traffic (timers, write-behind, pollers), which a low
        # rate would otherwise charge to the registrations: measured first, in this run.
        meter = IdleFirst(proc.pid, dumps, args.idle)
        started = time.monotonic()
        count = _register(target, users, args.users, args.rate, "cost")
        elapsed = time.monotonic() - started
        time.sleep(SETTLE)  # the bindings' write-behind
        total, window = meter.measured()
        report = {
            "registrations": count,
            "fresh": args.fresh,
            "population": len(people),
            "rate": args.rate,
            "elapsed_s": round(elapsed, 1),
            "instructions": total,
            "instructions_per_registration": round(total / count),
            "idle_per_s": round(meter.idle_per_s),
            "window_s": round(window, 1),
            "net_per_registration": round((total - meter.idle_per_s * window) / count),
            "dumps": str(work),
        }
        print(json.dumps(report))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
