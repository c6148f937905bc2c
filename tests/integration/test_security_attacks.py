"""Password guessing, scanners and floods against real peers on loopback.

SIPVicious (Debian `sipvicious`) attacks from 127.0.0.1 while the real phones, baresip,
register and call from 127.0.0.2 and 127.0.0.3: the guesser never finds the password and
is banned within 20 attempts, the enumerator lists no extension, a slow guesser (SIPp)
below the per-source limit is stopped by the per-account window, and a 20,000-OPTIONS
flood (SIPp) leaves a call up and a registration refresh answered.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.audiokit import tone

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("svcrack") is None, reason="sipvicious not installed (`make test` does)"
    ),
]

PASSWORD = "Tr0ub4dor-3-100"
PHONE_HOST = "127.0.0.2"
CALLEE_HOST = "127.0.0.3"
# The attackers' own test: no allow list, and (for the guessing test) no User-Agent filter,
# so that SIPVicious (User-Agent "friendly-scanner") reaches the digest check.
NO_ALLOW = "allow = []"


def _wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def _config(tmp_path: Path, security_toml: str) -> SwitchConfigFile:
    users = [PhoneUser("100", PASSWORD), PhoneUser("101", "secret101")]
    return SwitchConfigFile(
        tmp_path / "switch", users=users, min_expires=10, security_toml=security_toml
    )


def _phone(
    tmp_path: Path, name: str, host: str, user: str, password: str, port: int, hz: float
) -> BaresipPhone:
    account = f"<sip:{user}@127.0.0.1:{port}>;auth_pass={password};regint=10;answermode=auto"
    source = tone(tmp_path / f"{name}.wav", hz)
    return BaresipPhone(tmp_path / name, account, host=host, audio_source=source)


def _security(config: SwitchConfigFile, *args: str) -> str:
    """`softswitch security bans ...` against the switch's database; its standard output."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "softswitch.cli",
            "security",
            "bans",
            "--config",
            str(config.directory / "switch.toml"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout


def _bans(config: SwitchConfigFile) -> list[dict[str, object]]:
    return list(json.loads(_security(config, "--json")))


def _registered_from(switch: SwitchProcess, host: str) -> dict[str, object] | None:
    for row in switch.registrations():
        if row["aor"] == "sip:100@pbx.test" and str(row["received"]).startswith(f"udp:{host}:"):
            return row
    return None


@contextmanager
def _phones(tmp_path: Path, port: int) -> Iterator[tuple[BaresipPhone, BaresipPhone]]:
    with (
        _phone(tmp_path, "phone100", PHONE_HOST, "100", PASSWORD, port, 440.0) as caller,
        _phone(tmp_path, "phone101", CALLEE_HOST, "101", "secret101", port, 1000.0) as callee,
    ):
        yield caller, callee


def _log(config: SwitchConfigFile) -> str:
    return (config.directory / "switch.log").read_text(errors="replace")


def test_svcrack_is_banned_and_the_real_phone_keeps_working(tmp_path: Path) -> None:
    config = _config(tmp_path, f"{NO_ALLOW}\nscanner_user_agents = []")
    words = tmp_path / "words.txt"
    words.write_text("".join(f"guess{n:03d}\n" for n in range(499)) + PASSWORD + "\n")
    with (
        SwitchProcess(config.write(), port=config.port) as switch,
        _phones(tmp_path, config.port) as (caller, callee),
    ):
        assert _wait_for(lambda: _registered_from(switch, PHONE_HOST) is not None), caller.output()
        attacker = subprocess.Popen(
            [
                "svcrack",
                "-u100",
                "-d",
                str(words),
                "-p",
                str(config.port),
                "-P",
                str(free_port()),
                "-b",
                "127.0.0.1",
                "--maximumtime",
                "5",
                "127.0.0.1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
        )
        try:
            # Meanwhile the real phone calls the other one and the call comes up.
            time.sleep(1.0)
            caller.command("dial", f"sip:101@127.0.0.1:{config.port}")
            caller.wait_event("CALL_ESTABLISHED", timeout=20)
            output, _ = attacker.communicate(timeout=120)
        finally:
            if attacker.poll() is None:
                attacker.kill()
                attacker.wait()
        assert PASSWORD not in output, output
        assert "found nothing" in output, output
        log = _log(config)
        assert "source_banned" in log
        attempts = log[: log.index("source_banned")].count("registration_denied")
        assert 1 <= attempts <= 20, attempts
        bans = _bans(config)
        assert [b["address"] for b in bans] == ["127.0.0.1"]
        # The phone under attack keeps registering (a refresh every few seconds) ...
        caller.poll_events(0.2)
        caller.events = [e for e in caller.events if e.get("type") != "REGISTER_OK"]
        caller.wait_event("REGISTER_OK", timeout=15)
        assert _registered_from(switch, PHONE_HOST) is not None
        # ... and its call is still up: hang it up cleanly.
        caller.command("hangup")
        callee.wait_event("CALL_CLOSED", timeout=10)
        # Lifting the ban from the command line reaches the running switch.
        assert "ban lifted" in _security(config, "--lift", "127.0.0.1")
        assert _wait_for(lambda: "ban_lifted" in _log(config), timeout=10)
    assert _bans(config) == []


def test_svwar_lists_no_extension(tmp_path: Path) -> None:
    """With the default scanner filter SIPVicious gets silence; without it, unknown and
    real extensions are challenged alike, so nothing can be told apart either way."""
    for name, security in (
        ("filter", NO_ALLOW),
        ("nofilter", f"{NO_ALLOW}\nscanner_user_agents = []"),
    ):
        config = _config(tmp_path / name, security)
        with SwitchProcess(config.write(), port=config.port):
            result = subprocess.run(
                [
                    "svwar",
                    "-e100-120",
                    "-p",
                    str(config.port),
                    "-P",
                    str(free_port()),
                    "-b",
                    "127.0.0.1",
                    "--maximumtime",
                    "5",
                    "127.0.0.1",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
            )
            output = result.stdout + result.stderr
            for extension in ("100", "101"):
                assert f"| {extension} " not in output, output
            if name == "filter":  # silence, and the scanner's address banned
                assert "source_banned" in _log(config)
            else:  # an unknown extension is challenged like a real one
                assert "authentication request for an unknown extension" in output, output


def test_a_slow_guesser_is_stopped_by_the_account_window(tmp_path: Path) -> None:
    """One wrong password every two seconds: the per-source count drains faster than
    that (10 in 2 s), but the account's (4 in an hour) fills and bans the source."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp not installed")
    security = (
        f"{NO_ALLOW}\nmax_failures = 10\nfailure_window = 2\n"
        "account_max_failures = 4\naccount_window = 3600"
    )
    config = _config(tmp_path, security)
    users = write_users(
        tmp_path / "wrong.csv", user_rows([("100", config.domain, "not-the-password")] * 6)
    )
    with SwitchProcess(config.write(), port=config.port):
        result = run_sipp(
            "register_wrong_password.xml",
            f"127.0.0.1:{config.port}",
            calls=6,
            rate=1,
            injection=users,
            keys={"c1": "1", "c2": "2"},
            extra=("-rp", "2000", "-recv_timeout", "3000"),
            timeout=60,
        )
        log = _log(config)
        assert "reason='account under attack'" in log, log[-3000:]
        assert "reason='failed authentications'" not in log
        attempts = log[: log.index("source_banned")].count("registration_denied")
        assert attempts == 4, attempts
        # The tries after the ban got no answer at all.
        assert not result.ok
        assert [b["reason"] for b in _bans(config)] == ["account under attack"]


SIPP_OPTIONS_FLOOD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS flood: one request per call, no wait for an answer">
  <send>
    <![CDATA[
      OPTIONS sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:flood@[local_ip]>;tag=[call_number]
      To: <sip:[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      User-Agent: Generic SIP client
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def test_an_options_flood_leaves_calls_and_registrations_working(tmp_path: Path) -> None:
    if shutil.which("sipp") is None:
        pytest.skip("sipp not installed")
    config = _config(tmp_path, NO_ALLOW)
    scenario = tmp_path / "options_flood.xml"
    scenario.write_text(SIPP_OPTIONS_FLOOD)
    with (
        SwitchProcess(config.write(), port=config.port) as switch,
        _phones(tmp_path, config.port) as (caller, callee),
    ):
        assert _wait_for(lambda: _registered_from(switch, PHONE_HOST) is not None)
        caller.command("dial", f"sip:101@127.0.0.1:{config.port}")
        caller.wait_event("CALL_ESTABLISHED", timeout=20)
        flood = subprocess.run(
            [
                "sipp",
                f"127.0.0.1:{config.port}",
                "-sf",
                str(scenario),
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-m",
                "20000",
                "-r",
                "4000",
                "-l",
                "20000",
                "-timeout",
                "60s",
                "-nostdin",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert flood.returncode == 0, flood.stdout[-2000:] + flood.stderr[-2000:]
        log = _log(config)
        assert "source_banned" in log and "reason=flood" in log
        # A registration refresh is answered after the flood ...
        caller.poll_events(0.2)
        caller.events = [e for e in caller.events if e.get("type") != "REGISTER_OK"]
        caller.wait_event("REGISTER_OK", timeout=15)
        # ... and the call in progress is still up: it ends when the caller hangs up.
        assert not [e for e in caller.events if e.get("type") == "CALL_CLOSED"]
        caller.command("hangup")
        callee.wait_event("CALL_CLOSED", timeout=10)


def _flood_from_many_sources(port: int, sources: int, per_source: int) -> int:
    """INVITEs without credentials from `sources` loopback addresses (127.0.1.x), as fast
    as the sockets take them; returns how many were sent."""
    import socket

    sockets = []
    for n in range(sources):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.0.1.{n + 1}", 0))
        sockets.append(sock)
    sent = 0
    try:
        for round_ in range(per_source):
            for n, sock in enumerate(sockets):
                host, local = sock.getsockname()
                sock.sendto(
                    (
                        f"INVITE sip:101@127.0.0.1:{port} SIP/2.0\r\n"
                        f"Via: SIP/2.0/UDP {host}:{local};branch=z9hG4bK{n}x{round_}\r\n"
                        "Max-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=f\r\n"
                        f"To: <sip:101@pbx.test>\r\nCall-ID: flood-{n}-{round_}\r\n"
                        f"CSeq: 1 INVITE\r\nContact: <sip:x@{host}:{local}>\r\n"
                        "Content-Length: 0\r\n\r\n"
                    ).encode(),
                    ("127.0.0.1", port),
                )
                sent += 1
    finally:
        for sock in sockets:
            sock.close()
    return sent


def test_a_flood_from_many_sources_leaves_calls_and_registrations_working(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, NO_ALLOW)
    with (
        SwitchProcess(config.write(), port=config.port) as switch,
        _phones(tmp_path, config.port) as (caller, callee),
    ):
        assert _wait_for(lambda: _registered_from(switch, PHONE_HOST) is not None)
        caller.command("dial", f"sip:101@127.0.0.1:{config.port}")
        caller.wait_event("CALL_ESTABLISHED", timeout=20)
        # 200 sources x 150 INVITEs, none over its per-source limit for long: what the
        # switch reads is challenged, or shed with 503 by overload control when it lags.
        assert _flood_from_many_sources(config.port, 200, 150) == 30_000
        caller.poll_events(0.2)
        caller.events = [e for e in caller.events if e.get("type") != "REGISTER_OK"]
        caller.wait_event("REGISTER_OK", timeout=20)
        assert not [e for e in caller.events if e.get("type") == "CALL_CLOSED"]
        caller.command("hangup")
        callee.wait_event("CALL_CLOSED", timeout=10)
    # The switch saw the flood: it challenged (407) or shed (503) thousands of INVITEs.
    stopped = _log(config)
    challenged = int(re.findall(r"'challenged': (\d+)", stopped)[-1])
    shed = int(re.findall(r"'shed': (\d+)", stopped)[-1])
    assert challenged + shed > 1000, stopped[-2000:]
