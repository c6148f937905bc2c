"""Carrier trunks with SIPp playing the carrier: outbound failover between gateways, inbound
calls to a DID authenticated by source address, strangers refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peers.sipp import run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    append_lines,
    caller_injection,
    register_endpoint,
    trunk_lines,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "pw100"), PhoneUser("102", "pw102")]
DID = "+14155550100"


def _config(tmp_path: Path, inbound: str, gateways: list[int], **trunk: object) -> SwitchConfigFile:
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    append_lines(
        config.write(),
        [
            "[tenants.routing]",
            f'dids = [{{ number = "{DID}", destination = "102" }}]',
            *trunk_lines("carrier", gateways, inbound_addresses=[inbound], caller_id=DID, **trunk),
        ],
    )
    return config


def _dial_out_503_then_200(
    tmp_path: Path, path: Path, port: int, first: int, second: int
) -> dict[str, Any]:
    """User 100 dials out; the gateway at port ``first`` answers 503, the one at
    ``second`` 200. The call's CDR."""
    with SwitchProcess(path, port=port) as switch:
        down = BackgroundSipp("reject_uas.xml", switch.port, calls=1, local_port=first)
        up = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=second)
        wait_until_listening()
        uac = run_sipp(
            "call_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            injection=caller_injection(tmp_path / "sipp", "100", "pw100"),
            extra=["-s", "+16505550123", "-d", "200"],
            timeout=30,
        )
        assert uac.ok, uac.errors
        assert down.result().ok and up.result().ok
        (cdr,) = wait_cdrs(switch, 1)
    assert cdr["disposition"] == "ANSWERED"
    assert [leg["status"] for leg in cdr["legs"]] == [503, 200]
    return cdr


def test_outbound_first_gateway_503_second_answers(tmp_path: Path) -> None:
    gw1, gw2 = free_port(), free_port()
    config = _config(tmp_path, "10.99.0.0/16", [gw1, gw2])
    cdr = _dial_out_503_then_200(tmp_path, config.directory / "switch.toml", config.port, gw1, gw2)
    assert (cdr["direction"], cdr["trunk"]) == ("outbound", "carrier")
    assert f"127.0.0.1:{gw2}" in cdr["legs"][1]["contact"]  # the CDR names the second


def test_outbound_fails_over_to_the_next_trunk(tmp_path: Path) -> None:
    first, second = free_port(), free_port()
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    path = config.write()
    # The tenant's outbound route: primary, then backup (tenant keys precede its tables).
    path.write_text(
        path.read_text().replace(
            'domain = "pbx.test"\n',
            'domain = "pbx.test"\noutbound_trunks = ["primary", "backup"]\n',
        )
    )
    append_lines(
        path,
        [
            *trunk_lines("primary", [first], caller_id=DID),
            *trunk_lines("backup", [second], caller_id=DID),
        ],
    )
    cdr = _dial_out_503_then_200(tmp_path, path, config.port, first, second)
    assert cdr["trunk"] == "backup"


def test_inbound_did_from_the_trunk_rings_the_user(tmp_path: Path) -> None:
    config = _config(tmp_path, "127.0.0.0/8", [free_port()])
    with SwitchProcess(config.directory / "switch.toml", port=config.port) as switch:
        port = free_port()
        register_endpoint(tmp_path / "sipp", switch.port, "102", "pw102", port)
        phone = BackgroundSipp("call_uas.xml", switch.port, calls=1, local_port=port)
        wait_until_listening()
        carrier = run_sipp(
            "trunk_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            extra=["-s", DID, "-d", "200"],
            timeout=30,
        )
        assert carrier.ok, carrier.errors
        assert phone.result().ok
        (cdr,) = wait_cdrs(switch, 1)
        assert (cdr["disposition"], cdr["direction"], cdr["trunk"], cdr["destination"]) == (
            "ANSWERED",
            "inbound",
            "carrier",
            "102",
        )
        assert cdr["caller_number"] == "+16505550123"


def test_inbound_from_an_unlisted_address_gets_403(tmp_path: Path) -> None:
    config = _config(tmp_path, "10.99.0.0/16", [free_port()])
    with SwitchProcess(config.directory / "switch.toml", port=config.port) as switch:
        carrier = run_sipp(
            "trunk_uac.xml",
            f"127.0.0.1:{switch.port}",
            calls=1,
            rate=1,
            extra=["-s", DID],
            timeout=15,
        )
        assert not carrier.ok
        assert "403" in carrier.errors + carrier.screen
        assert wait_cdrs(switch, 1, timeout=3) == []  # past the CDR writer's 1 s batch


def test_trunk_registers_with_digest_and_refreshes(tmp_path: Path) -> None:
    carrier_port = free_port()
    config = SwitchConfigFile(tmp_path / "switch", users=USERS)
    path = append_lines(
        config.write(),
        trunk_lines(
            "carrier",
            [carrier_port],
            registration=True,
            username="trunkuser",
            password="trunkpass",
            register_domain="carrier.test",
        ),
    )
    # The carrier listens first; the switch registers as it starts.
    carrier = BackgroundSipp(
        "trunk_registrar_uas.xml", config.port, calls=1, local_port=carrier_port, timeout=30
    )
    wait_until_listening()
    with SwitchProcess(path, port=config.port):
        result = carrier.result()
    # Challenged twice, answered twice with the trunk's username: registered and refreshed.
    assert result.ok, result.errors
