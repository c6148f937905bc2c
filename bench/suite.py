"""The operator bench suite: the standard workloads against our switch and, in the same run on
the same machine with the same SIPp scenarios, against Kamailio and the Sippy B2BUA.

    .venv/bin/python -m bench                      # everything (what `make bench` runs)
    .venv/bin/python -m bench --quick              # a short smoke run
    .venv/bin/python -m bench --workloads 2 --systems softswitch,kamailio
    .venv/bin/python -m bench --workloads 1 --host 192.0.2.10 --port 5060 --users 2000

Writes bench/results/bench-<time>.json (every raw figure) and -failures.png / -latency.png,
and prints a table. See the README's "Operator bench" section for how to read them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import report
from bench.api_bench import API_WORKLOAD
from bench.systems import references_missing
from bench.workloads import WORKLOADS as SIP_WORKLOADS
from bench.workloads import Options, Outcome, Workload

WORKLOADS = (*SIP_WORKLOADS, API_WORKLOAD)

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = {
    "users": 200,
    "cdrs": 20_000,
    "duration": 1.0,
    "hold": 3.0,
    "concurrent": 20,
    "max_rate": 40.0,
    "confirm": 2,
    "repeats": 2,
    "budget": 60.0,
}
FULL = {
    "users": 10_000,
    "cdrs": 1_000_000,
    "duration": 5.0,
    "hold": 60.0,
    "concurrent": 2000,
    "max_rate": 5000.0,
    "confirm": 2,
    "repeats": 3,
    "budget": 300.0,
}


class Progress:
    """One line per step: a bar of the (workload, system) pairs done and the time so far."""

    def __init__(self, total: int, width: int = 20) -> None:
        self.total, self.width, self.done = max(1, total), width, 0
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = int(time.monotonic() - self.started)
        print(
            f"[{bar}] {self.done}/{self.total} {elapsed // 60}:{elapsed % 60:02d}  {text}",
            flush=True,
        )
        self.done += 1


def _local_ip_towards(host: str, port: int) -> str:
    """The address this machine uses to reach `host` (SIPp must put it in Via and Contact)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, port))  # UDP connect sends nothing
        address: str = probe.getsockname()[0]
        return address


def _versions() -> dict[str, str]:
    found: dict[str, str] = {"python": platform.python_version()}
    for name, args in (("sipp", ["sipp", "-v"]), ("kamailio", ["kamailio", "-v"])):
        binary = shutil.which(args[0]) or f"/usr/sbin/{args[0]}"
        try:
            out = subprocess.run(
                [binary, *args[1:]], capture_output=True, text=True, timeout=10, check=False
            )
            text = (out.stdout + out.stderr).strip().splitlines()
            found[name] = next((line.strip() for line in text if line.strip()), "")
        except OSError:
            found[name] = "not installed"
    try:
        from importlib.metadata import version

        found["sippy"] = version("sippy")
    except Exception:  # any lookup failure means "not installed"
        found["sippy"] = "not installed"
    return found


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a short run for a smoke test: small counts, one-second runs",
    )
    parser.add_argument(
        "--workloads",
        type=_csv,
        default=[w.key for w in WORKLOADS],
        help="comma-separated workload numbers 1-7 (default all)",
    )
    parser.add_argument(
        "--systems",
        type=_csv,
        default=["softswitch", "kamailio", "sippy"],
        help="softswitch, kamailio, sippy (default all installed)",
    )
    parser.add_argument("--users", type=int, help="registering users (workload 1), users (7)")
    parser.add_argument("--cdrs", type=int, help="calls of history the API lists (workload 7)")
    parser.add_argument("--duration", type=float, help="seconds of one ladder run")
    parser.add_argument("--hold", type=float, help="seconds calls are held (workload 4)")
    parser.add_argument("--concurrent", type=int, help="calls held at once (workload 4)")
    parser.add_argument("--max-rate", type=float, help="highest rate the ladder offers")
    parser.add_argument("--confirm", type=int, help="clean runs that confirm a ladder step")
    parser.add_argument("--repeats", type=int, help="runs at the best rate (median, spread)")
    parser.add_argument("--budget", type=float, help="seconds one ladder may take")
    parser.add_argument(
        "--kamailio-cores",
        type=lambda text: tuple(int(c) for c in _csv(text)),
        default=(0,),
        help="cores Kamailio is given, one worker pinned on each (default 0: one core, as "
        "our switch's one signalling thread)",
    )
    parser.add_argument("--host", help="a switch on another machine (only ours is benched)")
    parser.add_argument("--port", type=int, default=5060)
    parser.add_argument("--transport", default="udp", choices=["udp", "tcp"])
    parser.add_argument(
        "--local-ip",
        help="this machine's address for SIPp (default: the one that reaches --host, or 127.0.0.1)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="directory for the JSON and PNG files (default bench/results)",
    )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    unknown = set(args.workloads) - {w.key for w in WORKLOADS}
    if unknown:
        parser.error(f"--workloads: no workload {', '.join(sorted(unknown))} (1-7)")
    unknown = set(args.systems) - {"softswitch", "kamailio", "sippy"}
    if unknown:
        parser.error(f"--systems: unknown {', '.join(sorted(unknown))}")
    if args.users < 1 or args.concurrent < 1 or args.duration <= 0 or args.hold <= 0:
        parser.error("--users and --concurrent must be >= 1, --duration and --hold > 0")
    if args.transport != "udp" and not args.host:
        print(
            "note: the reference systems listen on UDP only; with --transport "
            f"{args.transport} only our switch is benched",
            flush=True,
        )
    return args


def plan(args: argparse.Namespace) -> list[tuple[Workload, str, str]]:
    """(workload, system, why it is skipped or "") in the order they run."""
    missing = references_missing()
    pairs = []
    for workload in WORKLOADS:
        if workload.key not in args.workloads:
            continue
        for system in workload.systems:
            if system not in args.systems:
                continue
            why = ""
            if workload.run is None:
                why = "not yet available: lands with the conference issue"
            elif system != "softswitch" and args.host:
                why = "remote target: only that switch is benched"
            elif system != "softswitch" and args.transport != "udp":
                why = "the reference configurations listen on UDP only"
            elif system in missing:
                why = missing[system]
            pairs.append((workload, system, why))
    return pairs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-suite-"))
    local_ip = args.local_ip or (
        _local_ip_towards(args.host, args.port) if args.host else "127.0.0.1"
    )
    opts = Options(
        work=work,
        quick=args.quick,
        users=args.users,
        duration=args.duration,
        hold=args.hold,
        concurrent=args.concurrent,
        max_rate=args.max_rate,
        confirm=args.confirm,
        repeats=args.repeats,
        budget=args.budget,
        transport=args.transport,
        host=args.host,
        port=args.port,
        local_ip=local_ip,
        kamailio_cores=args.kamailio_cores,
        cdrs=args.cdrs,
    )
    started = dt.datetime.now(dt.UTC)
    meta: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            "node": platform.node(),
            "cpus": os.cpu_count(),
            "load_at_start": os.getloadavg(),
        },
        "versions": _versions(),
        "options": {k: str(v) for k, v in vars(args).items()},
        "target": opts.remote_target or "local processes on 127.0.0.1",
    }
    pairs = plan(args)
    progress = Progress(len(pairs))
    results: list[dict[str, Any]] = []
    try:
        for workload, system, why in pairs:
            progress.step(f"workload {workload.key} ({workload.title}) - {system}")
            if why:
                outcome = Outcome(
                    workload.key,
                    system,
                    status="not available" if workload.run is None else "skipped",
                    reason=why,
                )
                print(f"    {outcome.status}: {why}", flush=True)
            else:
                assert workload.run is not None
                try:
                    outcome = workload.run(system, opts)
                except Exception as error:  # one system's failure ends only its row
                    outcome = Outcome(
                        workload.key,
                        system,
                        status="error",
                        reason=f"{type(error).__name__}: {error}"[:500],
                    )
                    print(f"    error: {outcome.reason}", flush=True)
            results.append(outcome.as_json())
        progress.step("report")
    finally:
        if os.environ.get("SOFTSWITCH_KEEP_BENCH") is None:
            shutil.rmtree(work, ignore_errors=True)
    meta["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta["machine"]["load_at_end"] = os.getloadavg()
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"bench-{started:%Y%m%d-%H%M%S}"
    units = {w.key: w.unit for w in WORKLOADS}
    titles = {w.key: w.title for w in WORKLOADS}
    json_path = report.write_json(stem.with_suffix(".json"), meta, results)
    pngs = report.write_plots(stem, results, titles)
    print()
    print(report.table(results, units))
    for ratio in report.ratios(results):
        if ratio["ratio"] is not None:
            caveat = (
                f"; {ratio['reference']} was not CPU-bound: a lower bound of its figure"
                if ratio["limits"]["theirs"] == "not CPU"
                else ""
            )
            print(
                f"workload {ratio['workload']}: ours / {ratio['reference']} = "
                f"{ratio['ratio']:.2f} ({ratio['figure']}: {ratio['ours']:g} vs "
                f"{ratio['theirs']:g}{caveat})"
            )
    if opts.remote_target:
        print(f"target {opts.remote_target} is remote: its CPU and memory are not measured")
    print(f"\nwrote {json_path}, {', '.join(str(p) for p in pngs)}")
    return {"json": json_path, "png": pngs, "results": results}


if __name__ == "__main__":
    main(sys.argv[1:])
