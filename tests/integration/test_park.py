"""Call park over the real switch process with SIPp: 102 blind-transfers its caller 100
to orbit 7001 (REFER); a busy-lamp key of 101 watching 7001 sees it lit (confirmed) while
the call is parked and dark (terminated) once 103 retrieves it by dialling 7001, 103
then talks with 100 until 100 hangs up. A call parked with a short timeout that nobody
retrieves rings its parker back."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers.sipp import run_sipp, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_cdrs,
    wait_log,
    wait_until_listening,
)
from tests.integration.parkkit import SippThread, park_watch_scenario

pytestmark = pytest.mark.integration

USERS = [PhoneUser(ext, f"pw{ext}") for ext in ("100", "101", "102", "103")]


def park_switch(tmp_path: Path, timeout: int) -> SwitchConfigFile:
    return SwitchConfigFile(
        tmp_path / "switch",
        users=USERS,
        extra_toml="[subscriptions]\nmin_expires = 1\n",
        tenant_toml=(
            f'[tenants.park]\norbits = "7001-7002"\ntimeout = {timeout}\nring_back = 10\n'
        ),
    )


def park_by_transfer(
    switch: SwitchProcess, tmp_path: Path, orbit: str, talk_ms: int, transferor_port: int
) -> SippThread:
    """100 calls 102 (a SIPp phone on ``transferor_port``), who blind-transfers it to
    ``orbit``; the call is parked there. The caller's SIPp run (it stays ``talk_ms`` on
    the call) is returned."""
    register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", transferor_port)
    transferor = BackgroundSipp(
        "park_transferor_uas.xml",
        switch.port,
        calls=1,
        local_port=transferor_port,
        extra=["-s", orbit],
    )
    wait_until_listening()
    caller = SippThread(
        "transferee_anchored_uac.xml",
        switch.port,
        injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
        extra=["-s", "102", "-d", str(talk_ms)],
        timeout=40,
    )
    wait_log(switch, "call_parked")
    result = transferor.result()
    assert result.ok, result.errors  # 202, NOTIFYs 100 / 200, the switch's BYE
    return caller


def test_parked_call_lights_the_orbit_and_is_retrieved(tmp_path: Path) -> None:
    config = park_switch(tmp_path, timeout=30)
    with SwitchProcess(config.write(), port=config.port) as switch:
        watcher = SippThread(
            park_watch_scenario(tmp_path / "park_watch.xml"),
            switch.port,
            injection=write_users(tmp_path / "w.csv", user_rows([("101", "pbx.test", "pw101")])),
            extra=["-s", "7001"],
            timeout=60,
        )
        wait_log(switch, "] subscribed ")
        caller = park_by_transfer(switch, tmp_path, "7001", 6000, free_port())
        retriever = run_sipp(
            "hungup_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            injection=caller_injection(tmp_path / "sipp", "103", "pw103"),
            extra=["-s", "7001"],
            timeout=40,
        )
        assert retriever.ok, retriever.errors  # answered, then hung up when 100 left
        result = caller.wait()
        assert result.ok, result.errors
        result = watcher.wait()
        assert result.ok and result.successful == 1, result.errors + result.screen
        assert "call_retrieved" in switch.log()
        rows = wait_cdrs(switch, 3)
        assert ("7001", "ANSWERED") in {(r["dialled"], r["disposition"]) for r in rows}


def test_unretrieved_call_rings_the_parker_back(tmp_path: Path) -> None:
    config = park_switch(tmp_path, timeout=1)
    with SwitchProcess(config.write(), port=config.port) as switch:
        transferor_port = free_port()
        caller = park_by_transfer(switch, tmp_path, "7002", 8000, transferor_port)
        # 102's phone again: the ring-back reaches it, it answers and talks until 100 hangs up.
        parker = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=transferor_port)
        wait_until_listening()
        result = parker.result()
        assert result.ok, result.errors
        result = caller.wait()
        assert result.ok, result.errors
        assert "park_timeout" in switch.log()
