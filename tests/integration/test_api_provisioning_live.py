"""Provisioning over the admin API with the switch running as a process, SIPp as phones
and carrier, on SQLite and on PostgreSQL: a user created through the API registers and is
called; a number re-pointed through the API routes the next call to its new target."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from peers.sipp import SippResult, run_sipp
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    register_endpoint,
    switch_cli,
    wait_cdrs,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

DID = "+14155550100"


def _switch(tmp_path: Path, database: str) -> tuple[SwitchConfigFile, Path, int, str]:
    """Users 100 and 102, the DID to 102, a carrier trunk, [api] on a free port; an
    operator's token made with the command line."""
    api_port = free_port()
    tenant = "\n".join(
        [
            "[tenants.routing]",
            f'dids = [{{ number = "{DID}", treatment = "user", destination = "102" }}]',
            "[[tenants.trunks]]",
            'name = "carrier"',
            'inbound_addresses = ["127.0.0.0/8"]',
            "[[tenants.trunks.gateways]]",
            'host = "127.0.0.1"',
            f"port = {free_port()}",
        ]
    )
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=[PhoneUser("100", "pw100"), PhoneUser("102", "pw102")],
        database_url=database,
        extra_toml=f'[api]\nenabled = true\nhost = "127.0.0.1"\nport = {api_port}\n',
        tenant_toml=tenant + "\n",
    )
    path = config.write()

    switch_cli(path, "admin", "create", "provisioner", "--role", "operator", "--no-password")
    token = switch_cli(path, "token", "create", "provisioner", "--description", "test").strip()
    return config, path, api_port, token


def _carrier_call(port: int) -> SippResult:
    return run_sipp(
        "trunk_uac.xml",
        f"127.0.0.1:{port}",
        calls=1,
        rate=1,
        extra=["-s", DID, "-d", "200"],
        timeout=60,
    )


def test_user_created_and_number_repointed_over_the_api_take_effect(
    tmp_path: Path, store_url: str
) -> None:
    config, path, api_port, token = _switch(tmp_path, store_url)
    with (
        SwitchProcess(path, port=config.port) as switch,
        httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ) as api,
    ):
        made = api.post("/v1/tenants/test/users", json={"extension": "103", "password": "pw103"})
        assert made.status_code == 201, made.text
        # The API answers once this switch runs the change: the new user registers at once.
        phone_103 = free_port()
        register_endpoint(tmp_path / "sipp", config.port, "103", "pw103", phone_103)
        registered = api.get("/v1/tenants/test/registrations").json()["items"]
        assert any("103" in r["aor"] for r in registered), registered

        # The DID still rings 102.
        phone_102 = free_port()
        register_endpoint(tmp_path / "sipp", config.port, "102", "pw102", phone_102)
        answering = BackgroundSipp("call_uas.xml", config.port, calls=1, local_port=phone_102)
        wait_until_listening()
        assert _carrier_call(config.port).ok
        assert answering.result().ok

        # Re-pointed to the new user (If-Match from the GET): the next call rings 103.
        number = api.get(f"/v1/tenants/test/numbers/{DID}")
        moved = api.patch(
            f"/v1/tenants/test/numbers/{DID}",
            json={"destination": "103"},
            headers={"If-Match": number.headers["etag"]},
        )
        assert moved.status_code == 200, moved.text
        ringing = BackgroundSipp("call_uas.xml", config.port, calls=1, local_port=phone_103)
        wait_until_listening()
        assert _carrier_call(config.port).ok
        assert ringing.result().ok
        first, second = wait_cdrs(switch, 2)
        assert (first["disposition"], first["destination"]) == ("ANSWERED", "102")
        assert (second["disposition"], second["destination"]) == ("ANSWERED", "103")
        trail = api.get("/v1/audit", params={"actor": "api:provisioner"}).json()["items"]
        assert [(e["kind"], e["key"]) for e in trail] == [("number", DID), ("user", "103")]
