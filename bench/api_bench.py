"""Admin API bench (issue 17, "Performance"), workload 7 of the suite: our switch as its own
process with its API, a real HTTP client (httpx) over loopback, SIPp for the calls.

(a) list and search endpoints with `--users` (10,000) users, one registration each, and
    `--cdrs` (1,000,000) calls of history seeded straight into the Store: p50/p99 latency
    per endpoint, on SQLite and on PostgreSQL (a throw-away server, peers/postgres.py);
(b) call set-up while the API is busy: workload 2's ladder (carrier trunk to a DID,
    signalling only) without and with 50 API requests/s alongside (lists and gets, one
    write per second), best clean CPS, SIPp's p99 response time and the p99 added INVITE
    delay (caller to callee, from SIPp traces) at one fixed rate both ways (SQLite);
(c) a change applied: a number re-pointed over the API `--changes` (20) times while SIPp
    calls it at `--change-rate` (50) calls/s; per change, from the API's answer to the
    first call reaching the new target (p50/p99). The figure includes the wait for the next
    call (up to 1000 / rate ms).

    .venv/bin/python -m bench --workloads 7                # in the suite (make bench)
    .venv/bin/python -m bench.api_bench                    # on its own: bench/results/api-*.json
    .venv/bin/python -m bench.api_bench --users 1000 --cdrs 100000 --databases sqlite

The write (`api_client.repoint`), the endpoint sweep and the background load are in
bench/api_client.py; the seeded data and the arithmetic in bench/api_data.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog

from bench.api_client import (
    API_RATE,
    NUMBERS,
    ApiLoad,
    measure_endpoints,
    repoint,
)
from bench.api_data import (
    DOMAIN,
    Change,
    change_latencies_ms,
    invite_arrivals,
    latency_figures,
    seed_store,
)
from bench.call_bench import CALLER, Bench, Callee, measure_delay, settle, tree_cpu_seconds
from bench.ladder import LadderResult, climb
from bench.systems import CALL_USERS, DID, NOAUTH_SCENARIO, Running, register_callee
from bench.workloads import (
    RTT_ARGS,
    TOLERANT,
    Options,
    Outcome,
    Workload,
    process_figures,
    report_trial,
    trial_from,
)
from peers.postgres import (
    PostgresServer,
    PostgresUnavailable,
    create_database,
    drop_database,
    external_dsn,
)
from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import SwitchConfigFile, SwitchProcess, free_port, numbered_users

__all__ = ["API_WORKLOAD", "main", "run"]

# --- the switch with its API --------------------------------------------------------------


def _tenant_toml(gateway_port: int) -> list[str]:
    """The DID to the callee (workload 2's) and a side number, both re-pointed over the API
    (a PUT of the number), and the carrier trunk: inbound from loopback, its gateway the
    second SIPp UAS."""
    dids = ", ".join(
        f'{{ number = "{n}", treatment = "user", destination = "{CALL_USERS[1].extension}" }}'
        for n in NUMBERS
    )
    return [
        "[tenants.routing]",
        f"dids = [{dids}]",
        "[[tenants.trunks]]",
        'name = "carrier"',
        'inbound_addresses = ["127.0.0.0/8"]',
        "[[tenants.trunks.gateways]]",
        'host = "127.0.0.1"',
        f"port = {gateway_port}",
    ]


@dataclass
class ApiSwitch:
    """A running switch with its API, seeded; the SIPp UAS registered as the callee."""

    running: Running
    process: SwitchProcess
    api_url: str
    token: str
    uas_port: int
    gateway_port: int
    seeding: dict[str, float] = field(default_factory=dict)

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )


def _cli(config: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args, "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"softswitch {' '.join(args)}: {done.stderr.strip()[-500:]}")
    return done.stdout


@contextlib.contextmanager
def api_switch(work: Path, users: int, cdrs: int, database_url: str) -> Iterator[ApiSwitch]:
    """Seed the Store (users, a registration each, call history), make an operator token,
    start `softswitch run` with the API and register the callee; stopped by PID."""
    uas_port, gateway_port, api_port = free_port(), free_port(), free_port()
    phones = [*CALL_USERS, *numbered_users(users)]
    config = SwitchConfigFile(
        work,
        users=phones,
        domain=DOMAIN,
        database_url=database_url,
        log_level="WARNING",
        media_anchor="never",
        extra_toml=f'[api]\nenabled = true\nhost = "127.0.0.1"\nport = {api_port}\n',
    )
    path = config.write()
    path.write_text(path.read_text() + "\n".join(_tenant_toml(gateway_port)) + "\n")
    registered = [p.extension for p in phones[len(CALL_USERS) :]]
    seeding = asyncio.run(seed_store(path, config.database_url or "", cdrs, registered))
    _cli(path, "admin", "create", "bench", "--role", "operator", "--no-password")
    token = _cli(path, "token", "create", "bench", "--description", "api bench").strip()
    started = time.perf_counter()
    switch = SwitchProcess(path, port=config.port).start(ready_timeout=300)
    seeding["switch_start_s"] = round(time.perf_counter() - started, 2)
    target = f"127.0.0.1:{config.port}"
    try:
        # Just started with thousands of users and bindings to load: let it settle, so the
        # callee's REGISTER is not retransmitted into a second challenge.
        settle(switch.pid, idle_pct=10.0, limit_s=120.0)
        for attempt in range(3):
            try:
                register_callee(target, uas_port, work)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                time.sleep(2.0)
        running = Running(
            "softswitch",
            target,
            switch.pid,
            switch.stop,
            scenario=NOAUTH_SCENARIO,
            service=DID,
            config=path,
        )
        yield ApiSwitch(
            running, switch, f"http://127.0.0.1:{api_port}", token, uas_port, gateway_port, seeding
        )
    finally:
        switch.stop()


def _sqlite_url(work: Path) -> str:
    return f"sqlite:///{work / 'switch.db'}"


@contextlib.contextmanager
def databases(
    work: Path, wanted: list[str], log: Callable[[str], None]
) -> Iterator[list[tuple[str, str]]]:
    """(name, URL of an empty database) for each backend wanted: SQLite in `work`;
    PostgreSQL on SOFTSWITCH_TEST_PG_DSN's server or a throw-away one (durable, as an
    operator's), left out with a note when neither can be had."""
    found: list[tuple[str, str]] = []
    with contextlib.ExitStack() as stack:
        for name in wanted:
            if name == "sqlite":
                found.append((name, _sqlite_url(work / "sqlite")))
                continue
            try:
                dsn = external_dsn() or stack.enter_context(PostgresServer(durable=True)).dsn
                database = f"api_bench_{os.getpid()}"
                found.append((name, create_database(dsn, database)))
                # On a server of the operator's, the bench's database goes when it is done.
                stack.callback(drop_database, dsn, database)
            except (PostgresUnavailable, OSError) as exc:
                log(f"    postgresql left out: {exc}")
        yield found


def _idle_cpu_pct(pid: int, seconds: float = 3.0) -> float:
    before = tree_cpu_seconds(pid)
    time.sleep(seconds)
    return 100 * (tree_cpu_seconds(pid) - before) / seconds


def call_ladder(
    switch: ApiSwitch, opts: Options, work: Path, api_rate: float, delay_rate: float | None
) -> tuple[LadderResult, dict[str, Any]]:
    """Workload 2's ladder against the switch, with `api_rate` API requests/s alongside (0:
    none); then the added INVITE delay at `delay_rate` (default half the best rate)."""
    sut = switch.running
    load = ApiLoad(switch.client, api_rate).start() if api_rate else None
    # "Idle" between runs is the API load's own CPU, not zero.
    idle = 5.0 + (_idle_cpu_pct(sut.pid) if load else 0.0)
    figures: dict[str, Any] = {"api_rate": api_rate, "idle_cpu_pct": round(idle, 1)}
    callee = Callee(sut.target, switch.uas_port, work / "uas")
    try:
        bench = Bench(sut, work / "runs", switch.uas_port, 0, opts.duration, sipp_args=TOLERANT)
        bench.callee_pid = callee.proc.pid

        def attempt(rate: float) -> Any:
            settle(sut.pid, idle_pct=idle)
            workdir = work / f"run-{bench.counter + 1}"
            workdir.mkdir(parents=True)
            run_, result = bench.run(rate, workdir=workdir, sipp_args=RTT_ARGS)
            trial = trial_from(rate, run_.calls, result, workdir, run_.cpu_s, **run_.extra)
            report_trial(opts, f"CPS (API {api_rate:g}/s)", trial)
            return trial

        ladder = climb(attempt, opts.ladder(10 if opts.quick else 50))
    finally:
        callee.stop()
    best = ladder.best or 0.0
    rate = delay_rate or max(5.0, best / 2)
    try:
        delay = measure_delay(bench, rate, 3.0 if opts.quick else 8.0)
    finally:
        figures["api_load"] = load.stop() if load else None
    figures["invite_delay"] = {k: v for k, v in delay.items() if k != "delay_run"}
    opts.log(
        f"    API {api_rate:g}/s: best clean {best:g} CPS; added INVITE delay p99 "
        f"{delay.get('p99_ms')} ms at {rate:g} CPS"
    )
    return ladder, figures


# --- (c) a change applied -----------------------------------------------------------------


def change_latency(
    switch: ApiSwitch, work: Path, changes: int, rate: float, period: float
) -> dict[str, Any]:
    """Re-point the DID `changes` times (to the carrier, back to the user...) `period` s
    apart while SIPp calls it at `rate`; from each answer to the first call at the new
    target, read from both SIPp UASes' message traces."""
    sut = switch.running
    user_dir, gateway_dir = work / "uas-user", work / "uas-gateway"
    user = Callee(sut.target, switch.uas_port, user_dir, trace=True)
    gateway = Callee(sut.target, switch.gateway_port, gateway_dir, trace=True)
    injection = write_users(work / "caller.csv", user_rows([(CALLER, DOMAIN, "pw" + CALLER)]))
    results: list[Any] = []
    made: list[Change] = []
    (work / "caller").mkdir(parents=True, exist_ok=True)
    try:
        with switch.client() as client:
            # The user's, whatever a previous run left; timed: with thousands of users a
            # write takes seconds, and SIPp must go on calling until the last change.
            started = time.perf_counter()
            repoint(client, DID, False)
            write_s = time.perf_counter() - started
            seconds = 2.0 + changes * (period + 2 * write_s) + 1.0
            calls = int(rate * seconds)
            caller = threading.Thread(
                target=lambda: results.append(
                    run_sipp(
                        NOAUTH_SCENARIO,
                        sut.target,
                        calls=calls,
                        rate=rate,
                        injection=injection,
                        extra=["-s", DID, "-d", "0", *TOLERANT],
                        timeout=seconds + 30,
                        workdir=work / "caller",
                    )
                ),
                daemon=True,
            )
            caller.start()
            time.sleep(2.0)  # calls flow to the user
            for i in range(changes):
                forwarded = i % 2 == 0
                sent = time.time()
                answer = repoint(client, DID, forwarded)
                made.append(Change(sent, time.time(), forwarded, answer.status_code))
                time.sleep(period)
        caller.join(seconds + 60)
    finally:
        user.stop()
        gateway.stop()
    to_user = invite_arrivals(_traces(user_dir))
    to_gateway = invite_arrivals(_traces(gateway_dir))
    latencies = change_latencies_ms(made, to_gateway, to_user)
    seen = [v for v in latencies if v is not None]
    sipp = results[0] if results else None
    return {
        "changes": changes,
        "call_rate": rate,
        "period_s": period,
        "api_errors": [c.status for c in made if c.status >= 300],
        "api_answer_ms": latency_figures([1000 * (c.answered - c.sent) for c in made]),
        "not_seen": sum(v is None for v in latencies),
        "latencies_ms": latencies,
        "calls": {
            "successful": sipp.successful if sipp else None,
            "failed": sipp.failed if sipp else None,
            "to_user": len(to_user),
            "to_gateway": len(to_gateway),
        },
        **latency_figures(seen),
    }


def _traces(directory: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in directory.glob("*_messages.log"))


# --- the workload -------------------------------------------------------------------------


def run(
    opts: Options,
    *,
    cdrs: int,
    samples: int,
    changes: int,
    change_rate: float,
    backends: list[str],
    calls: bool = True,
) -> tuple[LadderResult | None, dict[str, Any]]:
    """(a) and (c) on each backend, (b) on the first: the ladder with the API busy and every
    figure."""
    log = opts.log
    quiet_logs()
    figures: dict[str, Any] = {"users": opts.users, "cdrs": cdrs, "build": _build()}
    busy: LadderResult | None = None
    with databases(opts.work / "db", backends, log) as found:
        for index, (name, url) in enumerate(found):
            log(f"  {name}: seeding {opts.users} users and {cdrs} CDRs")
            work = opts.work / f"api-{name}"
            with api_switch(work / "switch", opts.users, cdrs, url) as switch:
                per: dict[str, Any] = {"seeding": switch.seeding}
                log(f"    seeded: {switch.seeding}")
                with switch.client() as client:
                    per["endpoints"] = measure_endpoints(client, samples, log)
                if calls and index == 0:
                    quiet, without = call_ladder(switch, opts, work / "quiet", 0.0, None)
                    delay_rate = without["invite_delay"].get("delay_at_rate")
                    busy, with_api = call_ladder(switch, opts, work / "busy", API_RATE, delay_rate)
                    per["calls"] = {
                        "without_api": {"summary": quiet.summary(), **without},
                        "with_api": {"summary": busy.summary(), **with_api},
                    }
                per["change"] = change_latency(
                    switch, work / "change", changes, change_rate, 1.0 if opts.quick else 1.5
                )
                change = per["change"]
                log(
                    f"    change applied: p50 {change['p50_ms']} ms p99 {change['p99_ms']} ms "
                    f"over {changes} changes ({change['not_seen']} not seen)"
                )
                per.update(process_figures(switch.running.pid))
            figures[name] = per
    return busy, figures


def quiet_logs() -> None:
    """The Store's events (migrations...) in this process only at warning and above: the
    bench's own lines are its output."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def _build() -> str:
    """Whether the switch's hot path runs compiled: the figures differ by a few times."""
    from softswitch.compiled import compiled_sources

    return "compiled (mypyc)" if compiled_sources() else "pure Python"


def workload(system: str, opts: Options) -> Outcome:
    """Workload 7 of the suite: the ladder row is workload 2 with the API busy; the rest of
    the figures under "api"."""
    if opts.remote_target:
        return Outcome("7", system, status="skipped", reason="needs a local switch and its store")
    busy, figures = run(
        opts,
        cdrs=opts.cdrs,
        samples=30 if opts.quick else 200,
        changes=4 if opts.quick else 20,
        change_rate=20.0 if opts.quick else API_RATE,
        backends=["sqlite", "postgresql"],
    )
    return Outcome(
        "7",
        system,
        ladder=busy,
        figures={"api": figures},
        notes=[
            f"workload 2 with {API_RATE:g} admin API requests/s alongside (lists, gets, a "
            "write a second); the same ladder without them, endpoint latencies with "
            f"{opts.users} users and {opts.cdrs} CDRs and the change-applied time are under "
            '"api"'
        ],
    )


API_WORKLOAD = Workload(
    "7", "admin API: lists, calls while busy, change applied", "CPS", ("softswitch",), workload
)


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=10_000, help="provisioned users")
    parser.add_argument("--cdrs", type=int, default=1_000_000, help="calls of history")
    parser.add_argument("--samples", type=int, default=200, help="requests per endpoint")
    parser.add_argument("--changes", type=int, default=20, help="re-pointings of the number")
    parser.add_argument("--change-rate", type=float, default=API_RATE, help="calls/s meanwhile")
    parser.add_argument(
        "--databases", type=_csv, default=["sqlite", "postgresql"], help="sqlite,postgresql"
    )
    parser.add_argument("--no-calls", action="store_true", help="skip (b), the call ladders")
    parser.add_argument("--quick", action="store_true", help="short ladders and runs")
    parser.add_argument("--duration", type=float, help="seconds of one ladder run")
    parser.add_argument("--budget", type=float, help="seconds one ladder may take")
    parser.add_argument("--max-rate", type=float, default=5000.0)
    parser.add_argument("--results", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    if args.users < 1 or args.cdrs < 0 or args.samples < 1 or args.changes < 1:
        parser.error("--users, --samples and --changes must be >= 1, --cdrs >= 0")
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"--databases: unknown {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="api-bench-"))
    opts = Options(
        work=work,
        quick=args.quick,
        users=args.users,
        duration=args.duration or (1.0 if args.quick else 5.0),
        hold=1.0,
        concurrent=1,
        max_rate=args.max_rate,
        confirm=2,
        repeats=2 if args.quick else 3,
        budget=args.budget or (60.0 if args.quick else 300.0),
        cdrs=args.cdrs,
    )
    started = dt.datetime.now(dt.UTC)
    try:
        _, figures = run(
            opts,
            cdrs=args.cdrs,
            samples=args.samples,
            changes=args.changes,
            change_rate=args.change_rate,
            backends=args.databases,
            calls=not args.no_calls,
        )
    finally:
        if os.environ.get("SOFTSWITCH_KEEP_BENCH") is None:
            shutil.rmtree(work, ignore_errors=True)
    meta = {
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_at_end": os.getloadavg()},
        "options": {k: str(v) for k, v in vars(args).items()},
    }
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"api-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({"meta": meta, "api": figures}, indent=2, default=str))
    print(f"\nwrote {path}")
    return {"json": path, "api": figures}


if __name__ == "__main__":
    main(sys.argv[1:])
