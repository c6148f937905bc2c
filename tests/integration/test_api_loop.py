"""The admin API never holds up call set-up: it serves on its own thread and loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from config.models import SwitchConfig
from peers.sipp import run_sipp
from peers.switchproc import free_port
from tests.integration.apikit import TENANT_A, LiveApi, api_config
from tests.integration.callkit import BackgroundSipp, register_endpoint, wait_until_listening

pytestmark = pytest.mark.integration

DID = "+14155550100"  # acme's number, to user 100


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveApi]:
    """The switch and its API in-process; acme has a carrier trunk from loopback."""
    data = api_config(f"sqlite:///{tmp_path}/switch.db").model_dump()
    acme = next(t for t in data["tenants"] if t["name"] == TENANT_A)
    acme["trunks"] = [
        {
            "name": "carrier",
            "inbound_addresses": ["127.0.0.0/8"],
            "gateways": [{"host": "127.0.0.1", "port": free_port()}],
        }
    ]
    api = LiveApi(SwitchConfig.model_validate(data)).start()
    try:
        yield api
    finally:
        api.stop()


def test_a_call_is_set_up_while_the_api_is_busy_with_a_request(
    live: LiveApi, tmp_path: Path
) -> None:
    assert live.server is not None and live.server.ctx.api_loop is not None
    token = live.login("op", "operator")
    phone = free_port()
    register_endpoint(tmp_path / "sipp", live.sip_port, "100", "pw100", phone, "acme.test")

    # Hold the API's loop as a slow request would (a large list being encoded).
    busy, release = threading.Event(), threading.Event()

    def hold() -> None:
        busy.set()
        release.wait(60)

    live.server.ctx.api_loop.call_soon_threadsafe(hold)
    assert busy.wait(30)
    with (
        ThreadPoolExecutor(1) as pool,
        httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client,
    ):
        try:
            pending = pool.submit(client.get, f"/v1/tenants/{TENANT_A}/users")
            answering = BackgroundSipp("call_uas.xml", live.sip_port, calls=1, local_port=phone)
            wait_until_listening()
            caller = run_sipp(
                "trunk_uac.xml",
                f"127.0.0.1:{live.sip_port}",
                calls=1,
                rate=1,
                extra=["-s", DID, "-d", "200"],
                timeout=60,
            )
            assert caller.ok, caller
            assert answering.result().ok
            # The call went through while the API's request was still in hand ...
            assert not pending.done()
        finally:
            release.set()
        # ... and the request is answered once the API's loop is free again.
        answer = pending.result(60)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == 4
