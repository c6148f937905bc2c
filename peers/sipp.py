"""Driving SIPp: write its inputs, run it bounded in count and time, read its statistics."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from peers.switchproc import free_port

# The scenarios of the checkout (the bench runs some of them too: register.xml, call_uas.xml).
SCENARIOS = Path(__file__).resolve().parent.parent / "tests" / "sipp"


class SippMissing(RuntimeError):
    """SIPp is not installed (Debian package `sip-tester`; `make test` installs it)."""


@dataclass
class SippResult:
    """What one SIPp run did."""

    returncode: int
    successful: int
    failed: int
    elapsed: float
    rate: float  # successful calls per second of the run
    stats: dict[str, str] = field(default_factory=dict)
    errors: str = ""
    screen: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0


def sipp_binary() -> str:
    found = shutil.which("sipp")
    if found is None:
        raise SippMissing("sipp not found: install Debian's sip-tester (`make test` does)")
    return found


def write_users(path: Path, rows: Iterable[Sequence[str]], mode: str = "SEQUENTIAL") -> Path:
    """A SIPp injection file: first line the read mode, then one `;`-separated row a call."""
    with path.open("w") as out:
        out.write(mode + "\n")
        for row in rows:
            out.write(";".join(row) + "\n")
    return path


def user_rows(users: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str, str]]:
    """Injection rows `user;domain;password;[authentication ...]` for the register scenarios.

    SIPp cannot nest [fieldN] inside [authentication ...], but it expands the keyword when
    it arrives through a field, so the credentials travel as field 3.
    """
    return [
        (user, domain, password, f"[authentication username={user} password={password}]")
        for user, domain, password in users
    ]


SOCKET_BUFFER = 4 * 1024 * 1024


def run_sipp(
    scenario: str | Path,
    target: str,
    *,
    calls: int,
    rate: float,
    transport: str = "udp",
    injection: Path | None = None,
    keys: Mapping[str, str] | None = None,
    call_id: str | None = None,
    limit: int | None = None,
    timeout: float = 120.0,
    local_port: int = 0,
    extra: Sequence[str] = (),
    workdir: Path | None = None,
    local_ip: str = "127.0.0.1",
) -> SippResult:
    """Run one SIPp client scenario against `target` (host:port) and wait for it.

    `call_id` is a SIPp -cid_str format (%u call number, %s local IP). Bounded by `calls`
    (-m) and `timeout` (SIPp's own -timeout plus a hard kill). A scenario
    name without a path is looked up in tests/sipp/. `local_ip` is the address SIPp binds
    and puts in Via and Contact (another than loopback when the target is remote).
    """
    return start_sipp(
        scenario, target, calls=calls, rate=rate, transport=transport, injection=injection,
        keys=keys, call_id=call_id, limit=limit, timeout=timeout, local_port=local_port,
        extra=extra, workdir=workdir, local_ip=local_ip,
    ).wait()  # fmt: skip


def start_sipp(
    scenario: str | Path,
    target: str,
    *,
    calls: int,
    rate: float,
    transport: str = "udp",
    injection: Path | None = None,
    keys: Mapping[str, str] | None = None,
    call_id: str | None = None,
    limit: int | None = None,
    timeout: float = 120.0,
    local_port: int = 0,
    extra: Sequence[str] = (),
    workdir: Path | None = None,
    local_ip: str = "127.0.0.1",
) -> SippRun:
    """Start SIPp as :func:`run_sipp` does, without waiting: the run goes on in the
    background until it ends by itself (`wait`) or is stopped by its PID (`stop`)."""
    path = Path(scenario)
    if not path.is_absolute() and not path.exists():
        path = SCENARIOS / path
    owned = workdir is None
    work = Path(tempfile.mkdtemp(prefix="sipp-")) if workdir is None else workdir
    mode = {"udp": "u1", "tcp": "t1", "tls": "l1"}[transport.lower()]
    if not local_port:
        local_port = free_port()  # SIPp's own default would be 5060
    args = [
        sipp_binary(),
        target,
        "-sf",
        str(path),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-t",
        mode,
        "-i",
        local_ip,
        "-p",
        str(local_port),
        "-timeout",
        f"{int(timeout)}s",
        "-timeout_error",
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(work / "stat.csv"),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(work / "errors.log"),
        "-trace_screen",
        "-screen_file",
        str(work / "screen.log"),
        "-recv_timeout",
        "10000",
        "-max_recv_loops",
        "10000",
        "-max_sched_loops",
        "10000",
        # SIPp's default socket buffers (64 KB) overflow while it is busy starting calls at a
        # few thousand per second: every datagram lost there is a 500 ms retransmission.
        "-buff_size",
        str(SOCKET_BUFFER),
    ]
    if call_id is not None:
        # SIPp matches responses to calls by Call-ID; a format without the pid (%p) gives
        # the same Call-ID for call N in every run, as a phone keeps it across re-REGISTERs.
        args += ["-cid_str", call_id]
    if limit is not None:
        args += ["-l", str(limit)]
    if injection is not None:
        args += ["-inf", str(injection)]
    for key, value in (keys or {}).items():
        args += ["-key", key, value]
    args += list(extra)
    return SippRun(args, work, owned, timeout)


class SippRun:
    """One SIPp process started by :func:`start_sipp`; `wait` or `stop` gives its result."""

    def __init__(self, args: list[str], work: Path, owned: bool, timeout: float) -> None:
        self.work = work
        self._owned = owned
        self._deadline = time.monotonic() + timeout + 30  # SIPp's -timeout, then a hard kill
        self._started = time.monotonic()
        self._stderr = work / "stderr.log"
        with self._stderr.open("wb") as err:
            self._proc = subprocess.Popen(
                args, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
        self.pid = self._proc.pid
        self._result: SippResult | None = None

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self) -> SippResult:
        """Wait until SIPp ends by itself (killed past its time limit)."""
        if self._result is not None:
            return self._result
        note = ""
        try:
            self._proc.wait(max(0.0, self._deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            note = "sipp killed after the hard time limit"
        return self._finish(note)

    def stop(self, grace: float = 5.0) -> SippResult:
        """End the run now: SIGUSR1 (SIPp stops placing calls and quits), SIGTERM after
        `grace` seconds, SIGKILL after as many again; the result of what it did."""
        if self._result is not None:
            return self._result
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
            if self._proc.poll() is not None:
                break
            self._proc.send_signal(sig)
            try:
                self._proc.wait(grace)
            except subprocess.TimeoutExpired:
                continue
        self._proc.wait()
        return self._finish("")

    def _finish(self, note: str) -> SippResult:
        wall = time.monotonic() - self._started
        work = self.work
        stderr = note or _read(self._stderr)
        stats = _last_stats(work / "stat.csv")
        errors = _read(work / "errors.log")
        screen = _read(work / "screen.log")
        if self._owned and os.environ.get("SOFTSWITCH_KEEP_SIPP") is None:
            shutil.rmtree(work, ignore_errors=True)
        successful = int(stats.get("SuccessfulCall(C)", 0) or 0)
        failed = int(stats.get("FailedCall(C)", 0) or 0)
        # SIPp's own elapsed time has one-second resolution: the wall time of the run is finer.
        self._result = SippResult(
            returncode=-9 if note else self._proc.returncode,
            successful=successful,
            failed=failed,
            elapsed=wall,
            rate=successful / wall if wall > 0 else 0.0,
            stats=stats,
            errors=(stderr + errors)[-4000:],
            screen=screen[-6000:],
        )
        return self._result


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _last_stats(path: Path) -> dict[str, str]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle, delimiter=";"))
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))
