"""Call pickup over the real switch process with SIPp: 100 calls 102, whose phone rings;
103 dials the directed code ``**102`` (then, second test, the group code ``*8``: 102 and
103 share a pickup group) and takes the call: 102's phone gets CANCEL with "call
completed elsewhere", 100 is answered and talks with 103 until it hangs up, when 103 gets
the switch's BYE. The picked-up call's CDR names 103 and its cancelled leg says pickup."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_cdrs,
    wait_log,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser(ext, f"pw{ext}") for ext in ("100", "101", "102", "103")]
PICKUP = '[tenants.pickup]\n[[tenants.pickup.groups]]\nname = "desk"\nmembers = ["102", "103"]\n'


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    directory = tmp_path_factory.mktemp("pickup")
    config = SwitchConfigFile(directory / "switch", users=USERS, tenant_toml=PICKUP)
    with SwitchProcess(config.write(), port=config.port) as running:
        yield running


def wait_for_invite(trace: Path, deadline_s: float = 20.0) -> None:
    """Until the ringing phone's SIPp message trace shows the switch's INVITE."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if trace.exists() and "INVITE sip:" in trace.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise AssertionError("102's phone never rang")


def pick_up(switch: SwitchProcess, workdir: Path, code: str, picked: int) -> None:
    """100 calls 102 (ringing), 103 dials ``code``; every phone's script must pass."""
    workdir.mkdir(parents=True, exist_ok=True)
    phone_port = free_port()
    register_endpoint(workdir, switch.port, "102", "pw102", phone_port)
    trace = workdir / "ringing.log"
    phone = BackgroundSipp(
        "ring_uas.xml",
        switch.port,
        calls=1,
        local_port=phone_port,
        timeout=40,
        extra=["-trace_msg", "-message_file", str(trace)],
    )
    wait_until_listening()
    caller = BackgroundSipp(
        "call_uac.xml",
        switch.port,
        calls=1,
        local_port=free_port(),
        timeout=40,
        extra=[
            "-inf",
            str(caller_injection(workdir, "100", "pw100")),
            "-s",
            "102",
            "-d",
            "1500",
        ],
    )
    wait_for_invite(trace)
    picker = run_sipp(
        "hungup_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(workdir, "103", "pw103"),
        extra=["-s", code],
        timeout=40,
    )
    assert picker.ok, picker.errors  # answered, then the switch's BYE when 100 hung up
    result = caller.result()
    assert result.ok, result.errors  # answered after the pickup, talked, hung up
    result = phone.result()
    assert result.ok, result.errors  # rang, then CANCEL (200, 487, ACK)
    cancel = trace.read_text(errors="replace").split("CANCEL sip:")[1]
    assert "Reason: SIP;cause=200" in cancel  # completed elsewhere: no missed call shown
    wait_log(switch, "call_picked_up", picked)


def test_directed_pickup(switch: SwitchProcess, tmp_path: Path) -> None:
    pick_up(switch, tmp_path, "**102", 1)
    rows = wait_cdrs(switch, 2)
    row = next(r for r in rows if r["dialled"] == "102")
    assert (row["disposition"], row["destination"]) == ("ANSWERED", "103")
    (leg,) = row["legs"]
    assert leg["transfer"]["kind"] == "pickup" and leg["transfer"]["by"] == "103"
    assert any(r["dialled"] == "**102" and r["caller_number"] == "103" for r in rows)


def test_group_pickup(switch: SwitchProcess, tmp_path: Path) -> None:
    pick_up(switch, tmp_path, "*8", 2)
    rows = wait_cdrs(switch, 4)
    assert any(r["dialled"] == "*8" and r["disposition"] == "ANSWERED" for r in rows)
