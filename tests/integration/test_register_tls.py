"""A phone registers over TLS to a switch with a configured (self-signed) certificate."""

from __future__ import annotations

from pathlib import Path

import pytest

from peers.baresip import BaresipPhone
from peers.switchproc import PhoneUser, SwitchConfigFile, SwitchProcess, free_port
from tests.integration.tlskit import self_signed

pytestmark = pytest.mark.integration


def test_baresip_registers_over_tls(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    tls_port = free_port()
    config = SwitchConfigFile(
        tmp_path / "switch",
        users=[PhoneUser("100", "secret100")],
        tls_port=tls_port,
        tls_certificate=cert,
        tls_private_key=key,
    )
    with SwitchProcess(config.write(), port=config.port) as switch:
        account = f"<sip:100@127.0.0.1:{tls_port};transport=tls>;auth_pass=secret100;regint=120"
        phone = BaresipPhone(tmp_path / "phone", account, extra_config=[f"sip_cafile {cert}"])
        with phone:
            rows = switch.wait_registrations(lambda rows: bool(rows), timeout=20)
            assert rows, phone.output()
            assert rows[0]["transport"] == "TLS"
            assert str(rows[0]["received"]).startswith("tls:127.0.0.1:")
