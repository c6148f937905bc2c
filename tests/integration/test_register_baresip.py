"""baresip registers with qop digest over UDP and TCP and shows in `softswitch registrations`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess

pytestmark = pytest.mark.integration


def _wait_for(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_with_digest(tmp_path: Path, transport: str) -> None:
    users = [PhoneUser("100", "secret100"), PhoneUser("101", "secret101")]
    config = SwitchConfigFile(tmp_path / "switch", users=users)
    with SwitchProcess(config.write(), port=config.port) as switch:
        account = (
            f"<sip:100@127.0.0.1:{config.port};transport={transport}>"
            f";auth_pass=secret100;regint=120;answermode=manual"
        )
        with BaresipPhone(tmp_path / "phone", account) as phone:
            assert _wait_for(
                lambda: any(r["aor"] == "sip:100@pbx.test" for r in switch.registrations())
            ), phone.output()
            rows = [r for r in switch.registrations() if r["aor"] == "sip:100@pbx.test"]
            assert len(rows) == 1
            assert rows[0]["transport"] == transport.upper()
            assert str(rows[0]["received"]).startswith(f"{transport}:127.0.0.1:")
            assert "baresip" in str(rows[0]["user_agent"]).lower()
            # baresip answered a qop=auth challenge: the switch logged no denial.
            assert "registration_denied" not in (tmp_path / "switch" / "switch.log").read_text()


def test_baresip_wrong_password_is_not_registered(tmp_path: Path) -> None:
    config = SwitchConfigFile(tmp_path / "switch", users=[PhoneUser("100", "secret100")])
    with SwitchProcess(config.write(), port=config.port) as switch:
        account = f"<sip:100@127.0.0.1:{config.port}>;auth_pass=wrong;regint=120"
        with BaresipPhone(tmp_path / "phone", account):
            assert _wait_for(
                lambda: "registration_denied" in (tmp_path / "switch" / "switch.log").read_text()
            )
            assert switch.registrations() == []


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_qualify_pings_the_contact_over_its_own_connection(tmp_path: Path, transport: str) -> None:
    """OPTIONS pings reach the phone (on the TCP connection it registered over) and mark the
    binding reachable; once the phone is gone the binding is marked unreachable."""
    config = SwitchConfigFile(
        tmp_path / "switch", users=[PhoneUser("100", "secret100")], qualify_interval=1, t1=0.05
    )
    with SwitchProcess(config.write(), port=config.port) as switch:
        # baresip listens on its own port, but over TCP the switch must reuse the connection
        # the REGISTER came in on (the phone may sit behind NAT).
        account = (
            f"<sip:100@127.0.0.1:{config.port};transport={transport}>"
            f";auth_pass=secret100;regint=120"
        )
        phone = BaresipPhone(tmp_path / "phone", account).start()
        try:
            rows = switch.wait_registrations(
                lambda rows: bool(rows) and rows[0]["reachable"] is True, timeout=20
            )
            assert rows and rows[0]["reachable"] is True, phone.output()
        finally:
            phone.kill()
        rows = switch.wait_registrations(
            lambda rows: bool(rows) and rows[0]["reachable"] is False, timeout=20
        )
        assert rows and rows[0]["reachable"] is False
