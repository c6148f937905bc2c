"""The routing rule engine wired into live calls, with SIPp as the carrier and the phone:
business hours decide where a DID's call goes, and a disaster plan switched on and off with
the CLI re-routes the next call to its forward-to number at the trunk, with no restart."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    register_endpoint,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "pw100"), PhoneUser("102", "pw102")]
DID = "+14155550100"
AFTER_HOURS = "+12125550177"
OUTAGE_FORWARD = "+12125550199"


def _config(tmp_path: Path, gateway: int, *, open_now: bool) -> SwitchConfigFile:
    """DID -> user 102 during "Open" hours, else off-net to AFTER_HOURS; one disaster plan."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    start = now - dt.timedelta(hours=1) if open_now else now + dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=3) if open_now else start + dt.timedelta(hours=1)
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    path = config.write()
    lines = [
        "[tenants.routing]",
        f'dids = [{{ number = "{DID}", treatment = "user", destination = "102" }}]',
        "[[tenants.routing.time_frames]]",
        'name = "Open"',
        'timezone = "UTC"',
        "[tenants.routing.time_frames.when]",
        'kind = "specific_dates"',
        f"periods = [{{ start = {start.isoformat()}, end = {end.isoformat()} }}]",
        "[[tenants.routing.users.102.rules]]",
        'time_frame = "Open"',
        "[tenants.routing.users.102.default_rule]",
        f'forward.always = {{ kind = "offnet", target = "{AFTER_HOURS}" }}',
        "[[tenants.routing.disaster_plans]]",
        'name = "Office outage"',
        'region = "US West"',
        'number_type = "did"',
        f'numbers = [{{ number = "{DID}", forward_to = "{OUTAGE_FORWARD}" }}]',
        "[[tenants.trunks]]",
        'name = "carrier"',
        'inbound_addresses = ["127.0.0.0/8"]',
        "[[tenants.trunks.gateways]]",
        'host = "127.0.0.1"',
        f"port = {gateway}",
    ]
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    return config


def _carrier_call(switch: SwitchProcess) -> None:
    carrier = run_sipp(
        "trunk_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        extra=["-s", DID, "-d", "200"],
        timeout=30,
    )
    assert carrier.ok, carrier.errors


def _cli(switch: SwitchProcess, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "softswitch.cli", *args, "--config", str(switch.config)],
        cwd=switch.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


@pytest.mark.parametrize("open_now", [True, False], ids=["inside-hours", "after-hours"])
def test_business_hours_decide_where_the_did_goes(tmp_path: Path, open_now: bool) -> None:
    gateway = free_port()
    config = _config(tmp_path, gateway, open_now=open_now)
    with SwitchProcess(config.directory / "switch.toml", port=config.port) as switch:
        phone_port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", phone_port)
        answering = BackgroundSipp(
            "call_uas.xml", switch.port, calls=1, local_port=phone_port if open_now else gateway
        )
        wait_until_listening()
        _carrier_call(switch)
        assert answering.result().ok
        (cdr,) = wait_cdrs(switch, 1)
        assert cdr["disposition"] == "ANSWERED"
        if open_now:
            assert cdr["destination"] == "102"
        else:
            assert AFTER_HOURS in cdr["destination"] or AFTER_HOURS in str(cdr["legs"])
            assert f"127.0.0.1:{gateway}" in cdr["legs"][-1]["contact"]


def test_disaster_plan_reroutes_the_next_call_and_revert_restores(tmp_path: Path) -> None:
    gateway = free_port()
    config = _config(tmp_path, gateway, open_now=True)
    with SwitchProcess(config.directory / "switch.toml", port=config.port) as switch:
        phone_port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", phone_port)

        _cli(switch, "disaster", "enable", "Office outage", "--by", "test")
        time.sleep(2.5)  # the switch refreshes the stored plan state every second
        trunk = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=gateway)
        wait_until_listening()
        _carrier_call(switch)
        assert trunk.result().ok  # the carrier's gateway got the forwarded call
        (cdr,) = wait_cdrs(switch, 1)
        assert OUTAGE_FORWARD in cdr["destination"] or OUTAGE_FORWARD in str(cdr["legs"])

        _cli(switch, "disaster", "disable", "Office outage", "--by", "test")
        time.sleep(2.5)
        phone = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=phone_port)
        wait_until_listening()
        _carrier_call(switch)
        assert phone.result().ok  # normal routing again: the user's phone rang
        rows = wait_cdrs(switch, 2)
        assert rows[-1]["destination"] == "102"
        assert "Office outage" in _cli(switch, "disaster", "status")
