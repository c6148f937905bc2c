"""Helpers for call tests: register SIPp endpoints, run SIPp in the background, read CDRs."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peers.sipp import SippResult, run_sipp, user_rows, write_users
from peers.switchproc import SwitchProcess


def register_endpoint(
    workdir: Path,
    switch_port: int,
    user: str,
    password: str,
    local_port: int,
    domain: str = "pbx.test",
) -> None:
    """REGISTER ``user`` with contact 127.0.0.1:``local_port`` (a SIPp UAS then listens
    there); fails the test if the registration is not accepted."""
    workdir.mkdir(parents=True, exist_ok=True)
    injection = write_users(
        workdir / f"reg-{local_port}.csv", user_rows([(user, domain, password)])
    )
    result = run_sipp(
        "register.xml",
        f"127.0.0.1:{switch_port}",
        calls=1,
        rate=1,
        injection=injection,
        local_port=local_port,
        timeout=15,
        keys={"c1": "1", "c2": "2", "expires": "3600"},
    )
    assert result.ok, result.errors


def caller_injection(workdir: Path, user: str, password: str, domain: str = "pbx.test") -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    return write_users(workdir / f"caller-{user}.csv", user_rows([(user, domain, password)]))


class BackgroundSipp:
    """One SIPp run in a thread (UAS side), joined with ``result()``."""

    def __init__(
        self,
        scenario: str,
        switch_port: int,
        *,
        calls: int,
        local_port: int,
        timeout: float = 60,
        extra: Sequence[str] = (),
    ) -> None:
        self._result: SippResult | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(scenario, switch_port, calls, local_port, timeout, list(extra)),
            daemon=True,
        )
        self._thread.start()

    def _run(
        self,
        scenario: str,
        port: int,
        calls: int,
        local_port: int,
        timeout: float,
        extra: list[str],
    ) -> None:
        self._result = run_sipp(
            scenario,
            f"127.0.0.1:{port}",
            calls=calls,
            rate=1,
            local_port=local_port,
            timeout=timeout,
            extra=extra,
        )

    def result(self, timeout: float = 120) -> SippResult:
        self._thread.join(timeout)
        assert self._result is not None, "SIPp did not finish"
        return self._result


def trunk_lines(name: str, gateways: Sequence[int], **settings: object) -> list[str]:
    """TOML for a ``[[tenants.trunks]]`` named ``name`` with gateways on 127.0.0.1 at
    ``gateways`` ports (priorities in that order) and the other trunk ``settings``."""
    lines = ["[[tenants.trunks]]", f'name = "{name}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    for priority, port in enumerate(gateways, 1):
        lines += [
            "[[tenants.trunks.gateways]]",
            'host = "127.0.0.1"',
            f"port = {port}",
            f"priority = {priority}",
        ]
    return lines


def append_lines(path: Path, lines: Sequence[str]) -> Path:
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    return path


def trace_messages(path: Path) -> list[str]:
    """SIPp options that log every message it sends and receives to ``path``."""
    return ["-trace_msg", "-message_file", str(path)]


def received_requests(path: Path, method: str) -> list[str]:
    """The ``method`` requests a SIPp run logged as received (see ``trace_messages``)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    found = []
    # Each entry: a line of dashes and a time stamp, "<transport> message received ...",
    # a blank line, the message.
    for entry in re.split(r"^-{20,} .*$", text, flags=re.MULTILINE):
        heading, _, message = entry.strip("\n").partition("\n\n")
        if "message received" in heading and message.startswith(f"{method} "):
            found.append(message)
    return found


def received_responses(path: Path, status: int) -> list[str]:
    """The responses with ``status`` a SIPp run logged as received (see ``trace_messages``)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    found = []
    for entry in re.split(r"^-{20,} .*$", text, flags=re.MULTILINE):
        heading, _, message = entry.strip("\n").partition("\n\n")
        if "message received" in heading and message.startswith(f"SIP/2.0 {status} "):
            found.append(message)
    return found


def header_values(message: str, name: str) -> list[str]:
    """Values of header ``name`` (full form) in a logged message, in order."""
    prefix = name.lower() + ":"
    return [
        line.split(":", 1)[1].strip()
        for line in message.splitlines()
        if line.lower().startswith(prefix)
    ]


def wait_until_listening(seconds: float = 0.5) -> None:
    """SIPp needs a moment to bind its socket after the thread starts."""
    time.sleep(seconds)


def call_as(
    switch: SwitchProcess, workdir: Path, user: str, number: str, hold_ms: int = 200
) -> SippResult:
    """``user`` (password ``pw<user>``) calls ``number`` once with SIPp and hangs up
    ``hold_ms`` after the answer."""
    return run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(workdir, user, f"pw{user}"),
        extra=["-s", number, "-d", str(hold_ms)],
        timeout=30,
    )


def wait_log(switch: SwitchProcess, text: str, count: int = 1, timeout: float = 20.0) -> None:
    """Until the switch's log holds ``text`` at least ``count`` times."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if switch.log().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not logged {count} time(s)")


def switch_cli(config: Path, *args: str) -> str:
    """A `softswitch` command on the switch's configuration (from its folder); its output.
    Fails the test, with the command's error output, when the command fails."""
    done = subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args, "--config", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def export_cdrs(switch: SwitchProcess, *args: str) -> list[dict[str, Any]]:
    """`softswitch cdr export` as a list of rows (the JSON columns decoded)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "softswitch.cli",
            "cdr",
            "export",
            "--config",
            str(switch.config),
            *args,
        ],
        cwd=switch.cwd,
        capture_output=True,
        timeout=60,
        check=True,
        env=switch.env,
        text=True,
    )
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    for row in rows:
        for name in ("legs", "quality", "recordings"):
            row[name] = json.loads(row[name] or "null")
    return rows


def wait_cdrs(switch: SwitchProcess, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Poll the CDRs (written in batches) until ``count`` are there."""
    deadline = time.monotonic() + timeout
    rows = export_cdrs(switch)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.3)
        rows = export_cdrs(switch)
    return rows


class HeldCaller:
    """A SIPp caller in a thread that stays on the call until the switch hangs up."""

    def __init__(self, tmp_path: Path, port: int, caller: str, callee: str) -> None:
        self.result: Any = None
        injection = caller_injection(tmp_path / f"sipp-{caller}", caller, f"pw{caller}")

        def run() -> None:
            self.result = run_sipp(
                "hungup_uac.xml",
                f"127.0.0.1:{port}",
                calls=1,
                rate=1,
                injection=injection,
                extra=["-s", callee],
                timeout=60,
            )

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def join(self) -> Any:
        self._thread.join(70)
        return self.result
