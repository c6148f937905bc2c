"""Busy lamps over the real switch process with SIPp: a BLF key subscribed to the dialog
package (RFC 4235) of 101 sees idle, early, confirmed and terminated as a SIPp call from
102 rings 101's SIPp phone, is answered and hangs up; a short subscription is refreshed
and then expires; the SUBSCRIBE is challenged like every request of the switch's users."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from peers.sipp import SippResult, run_sipp, user_rows, write_users
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.callkit import (
    BackgroundSipp,
    caller_injection,
    register_endpoint,
    wait_log,
    wait_until_listening,
)

pytestmark = pytest.mark.integration

USERS = [PhoneUser("100", "pw100"), PhoneUser("101", "pw101"), PhoneUser("102", "pw102")]


@pytest.fixture
def switch(tmp_path: Path):
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=USERS,
        extra_toml="[subscriptions]\nmin_expires = 1\n",
    )
    with SwitchProcess(config.write(), port=config.port) as process:
        yield process


class Subscriber:
    """A SIPp subscriber scenario running in a thread."""

    def __init__(self, scenario: str, port: int, workdir: Path, **keys: str) -> None:
        injection = write_users(workdir / "watcher.csv", user_rows([("100", "pbx.test", "pw100")]))
        self.result: SippResult | None = None
        self._thread = threading.Thread(
            target=self._run, args=(scenario, port, injection, keys), daemon=True
        )
        self._thread.start()

    def _run(self, scenario: str, port: int, injection: Path, keys: dict[str, str]) -> None:
        self.result = run_sipp(
            scenario,
            f"127.0.0.1:{port}",
            calls=1,
            rate=1,
            injection=injection,
            keys=keys,
            extra=["-s", "101"],
            timeout=60,
        )

    def wait(self, timeout: float = 90) -> SippResult:
        self._thread.join(timeout)
        assert self.result is not None, "SIPp did not finish"
        return self.result


def test_lamp_follows_a_call_ringing_answered_and_ended(
    switch: SwitchProcess, tmp_path: Path
) -> None:
    watcher = Subscriber("blf_watch.xml", switch.port, tmp_path)
    wait_log(switch, "] subscribed ")
    phone_port = free_port()
    register_endpoint(tmp_path / "sipp", switch.port, "101", "pw101", phone_port)
    callee = BackgroundSipp(
        "call_uas.xml", switch.port, calls=1, local_port=phone_port, extra=["-d", "1000"]
    )
    wait_until_listening()
    caller = run_sipp(
        "call_uac.xml",
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=caller_injection(tmp_path / "sipp", "102", "pw102"),
        extra=["-s", "101", "-d", "1000"],
        timeout=30,
    )
    assert caller.ok, caller.errors
    assert callee.result().ok
    result = watcher.wait()
    assert result.ok and result.successful == 1, result.errors + result.screen


def test_subscription_is_refreshed_then_expires(switch: SwitchProcess, tmp_path: Path) -> None:
    watcher = Subscriber("blf_expiry.xml", switch.port, tmp_path, expires="2")
    result = watcher.wait()
    assert result.ok and result.successful == 1, result.errors + result.screen
    log = switch.log()
    assert "] subscribed " in log


def test_unknown_extension_is_challenged_then_404(switch: SwitchProcess, tmp_path: Path) -> None:
    """An extension that does not exist is challenged like one that does (no enumeration);
    only the authenticated subscriber learns it is not there."""
    injection = write_users(tmp_path / "w.csv", user_rows([("100", "pbx.test", "pw100")]))
    scenario = tmp_path / "subscribe_404.xml"
    text = (Path(__file__).parent.parent / "sipp" / "blf_expiry.xml").read_text()
    head, _, _ = text.partition('  <recv response="200" rrs="true"/>')
    scenario.write_text(head + '  <recv response="404"/>\n</scenario>\n')
    result = run_sipp(
        scenario,
        f"127.0.0.1:{switch.port}",
        calls=1,
        rate=1,
        injection=injection,
        keys={"expires": "60"},
        extra=["-s", "999"],
        timeout=20,
    )
    assert result.ok, result.errors
